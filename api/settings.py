"""One place for configuration: ``NAS_*`` environment variables, validated once at start-up.

>>> Settings(data_dir="/srv/nas").database_url
'sqlite:////srv/nas/nas.db'
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nas_core.options import MAX_TRIALS

MiB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NAS_", extra="ignore")

    # Embedded state root: the SQLite file, local objects and the filesystem broker live here by default.
    data_dir: Path = Path("./.nas-data")
    database_url: str = ""
    # Connections each process keeps open; more are opened for bursts (up to 4x) and closed after. An API process
    # serves up to 40 requests at once (its thread pool); a connection opened per request costs more than the query.
    database_pool_size: int = Field(default=10, ge=1)
    storage_url: str = ""
    broker_url: str = ""
    # Isolates several deployments (or test runs) sharing one Redis; empty means no prefix.
    broker_key_prefix: str = ""

    s3_endpoint: str = ""
    # The endpoint presigned download URLs are signed for: where clients outside the services' network reach the
    # store (``host:port``, or a URL whose scheme overrides s3_secure). Empty means s3_endpoint.
    s3_public_endpoint: str = ""
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    s3_secure: bool = True
    s3_region: str = "us-east-1"

    # Upload and archive limits (the zip limits map onto nas_core.images.IngestLimits). A JSON body is capped at
    # max_json_bytes, and read only once the request's key is known good; a request line and headers together at
    # max_header_bytes (api.http_protocol).
    max_upload_bytes: int = Field(default=512 * MiB, gt=0)
    max_json_bytes: int = Field(default=1 * MiB, gt=0)
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    zip_max_members: int = Field(default=100_000, gt=0)
    zip_max_uncompressed_bytes: int = Field(default=2048 * MiB, gt=0)
    zip_max_compression_ratio: float = Field(default=200.0, gt=1)
    max_image_pixels: int = Field(default=40_000_000, gt=0)
    # All images of one dataset together, read from their headers before anything is decoded (decoding time follows
    # pixels, not bytes: a 22 kB zip can declare billions).
    max_dataset_pixels: int = Field(default=2_000_000_000, gt=0)
    min_images_per_class: int = Field(default=5, ge=1)
    max_resolution: int = Field(default=128, ge=8)

    # Ingestion runs under a hard time limit; a dataset still `processing` well after it is retried (see reaper).
    ingest_time_limit_s: int = Field(default=1800, gt=0)
    ingest_stale_after_s: int = Field(default=3600, gt=0)
    ingest_max_attempts: int = Field(default=3, ge=1)
    reaper_interval_s: int = Field(default=300, gt=0)

    worker_device: Literal["auto", "cpu", "cuda"] | str = "auto"
    # One JSON object per log line (request / trial ids included), or plain text for reading in a terminal.
    log_format: Literal["json", "text"] = "json"
    # How long an API thread may hold the GIL before another (the event loop) gets it; CPython's default is 5 ms.
    api_switch_interval_ms: float = Field(default=0.5, gt=0, le=100)

    # Experiments. A running trial's worker writes a heartbeat every trial_heartbeat_s; an attempt silent for
    # trial_stale_after_s is presumed dead (SIGKILL, power loss) and the trial runs again, at most
    # trial_max_attempts times in all. The grace must cover a slow DB write, not a whole epoch.
    trial_heartbeat_s: float = Field(default=10.0, gt=0)
    trial_stale_after_s: float = Field(default=120.0, gt=0)
    trial_max_attempts: int = Field(default=3, ge=1)
    trial_time_limit_s: int = Field(default=6 * 3600, gt=0)
    # A running trial stores a checkpoint (weights, optimizer, schedule, RNG) at the first epoch end this long after
    # the last one (0: every epoch); a new attempt after a crash continues from it. Deleted when the trial ends.
    trial_checkpoint_s: float = Field(default=300.0, ge=0)
    trial_reaper_interval_s: float = Field(default=15.0, gt=0)
    max_concurrency: int = Field(default=16, ge=1, le=MAX_TRIALS)
    max_trials: int = Field(default=10_000, ge=1, le=MAX_TRIALS)

    # Final models (retrain the winner, test, export). Default epochs = search epochs × model_epochs_multiplier.
    # A model job heartbeats every model_heartbeat_s; one silent for model_stale_after_s is presumed dead and runs
    # again (at most model_max_attempts times); a model `queued` for model_queued_stale_after_s without a worker
    # taking it is re-enqueued (lost message). model_time_limit_s is the task's hard limit. An attempt interrupted by
    # an object-store or database outage runs again after model_retry_backoff_s × 2^(attempt-1).
    auto_model: bool = True
    model_epochs_multiplier: int = Field(default=3, ge=1)
    model_max_epochs: int = Field(default=1000, ge=1)
    model_heartbeat_s: float = Field(default=10.0, gt=0)
    model_stale_after_s: float = Field(default=120.0, gt=0)
    model_queued_stale_after_s: float = Field(default=900.0, gt=0)
    model_max_attempts: int = Field(default=3, ge=1)
    model_retry_backoff_s: float = Field(default=30.0, ge=0)
    model_time_limit_s: int = Field(default=12 * 3600, gt=0)
    model_latency_repeats: int = Field(default=50, ge=1)
    # onnxruntime intra-op threads of each trial's latency measurement (batch 1; what latency_ms means).
    latency_threads: int = Field(default=1, ge=1, le=256)
    model_download_url_ttl_s: int = Field(default=300, ge=1, le=7 * 24 * 3600)
    # An int8 ONNX file whose test accuracy is more than this below the float32 file's is kept but flagged.
    int8_max_accuracy_drop: float = Field(default=0.01, ge=0, le=1)
    # TensorFlow SavedModel and TFLite artifacts, converted from the verified ONNX file and checked on the test split
    # (needs the tf extra where models are built; without it the model is ready and says why those two are missing).
    tf_export: bool = True

    # Predictions (POST /v1/models/{id}/predict), answered by onnxruntime inside the API process: at most
    # predict_max_images images and predict_max_bytes of body per request (each image also under max_image_pixels),
    # and the ONNX sessions of at most predict_max_sessions models kept loaded (least recently used ones go first).
    predict_max_images: int = Field(default=32, ge=1, le=1024)
    predict_max_bytes: int = Field(default=32 * MiB, gt=0)
    predict_max_sessions: int = Field(default=8, ge=1)

    # Per-project quotas and rate limit; 0 means unlimited. Active experiments are queued|running|canceling; active
    # trial slots are the concurrency reserved by a project's active experiments (the scheduler never runs more);
    # stored bytes are dataset uploads plus model artifacts. Requests per minute are counted in the broker's Redis
    # for all API processes together (rate_limit_shared), per API process otherwise.
    # A POST's Idempotency-Key is remembered for idempotency_ttl_s.
    project_max_active_experiments: int = Field(default=20, ge=0)
    project_max_active_trials: int = Field(default=64, ge=0)
    project_max_storage_bytes: int = Field(default=0, ge=0)
    rate_limit_per_minute: int = Field(default=1200, ge=0)
    rate_limit_shared: bool = True
    idempotency_ttl_s: int = Field(default=24 * 3600, gt=0)

    @model_validator(mode="after")
    def _fill_defaults_and_validate(self) -> "Settings":
        data_dir = self.data_dir.expanduser().absolute()
        object.__setattr__(self, "data_dir", data_dir)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{data_dir / 'nas.db'}")
        if not self.storage_url:
            object.__setattr__(self, "storage_url", f"file://{data_dir / 'objects'}")
        if not self.broker_url:
            object.__setattr__(self, "broker_url", "filesystem://")

        db_scheme = self.database_url.split("://", 1)[0]
        if db_scheme not in ("sqlite", "postgresql+psycopg"):
            raise ValueError("NAS_DATABASE_URL must be sqlite:///… or postgresql+psycopg://…")
        storage = urlparse(self.storage_url)
        if storage.scheme == "s3":
            if not storage.netloc:
                raise ValueError("NAS_STORAGE_URL s3://BUCKET needs a bucket name")
            # Outside embedded mode nothing secret has a default: S3 needs explicit credentials and endpoint.
            missing = [name for name, value in (("NAS_S3_ENDPOINT", self.s3_endpoint),
                                                ("NAS_S3_ACCESS_KEY", self.s3_access_key),
                                                ("NAS_S3_SECRET_KEY", self.s3_secret_key)) if not value]
            if missing:
                raise ValueError(f"NAS_STORAGE_URL is s3:// but {', '.join(missing)} is not set")
            if not self.s3_public_endpoint:
                object.__setattr__(self, "s3_public_endpoint", self.s3_endpoint)
            elif self.s3_public_endpoint != self.s3_endpoint and not self.s3_region:
                # Signing for the public endpoint happens offline, which needs the region (no lookup through it).
                raise ValueError("NAS_S3_PUBLIC_ENDPOINT needs NAS_S3_REGION")
        elif storage.scheme != "file":
            raise ValueError("NAS_STORAGE_URL must be file://DIR or s3://BUCKET")
        if self.broker_url.split("://", 1)[0] not in ("filesystem", "redis", "rediss", "memory"):
            raise ValueError("NAS_BROKER_URL must be filesystem://, redis://… or rediss://…")
        if self.trial_stale_after_s <= 2 * self.trial_heartbeat_s:
            raise ValueError("NAS_TRIAL_STALE_AFTER_S must exceed twice NAS_TRIAL_HEARTBEAT_S")
        if self.model_stale_after_s <= 2 * self.model_heartbeat_s:
            raise ValueError("NAS_MODEL_STALE_AFTER_S must exceed twice NAS_MODEL_HEARTBEAT_S")
        if self.ingest_stale_after_s <= self.ingest_time_limit_s:
            raise ValueError("NAS_INGEST_STALE_AFTER_S must exceed NAS_INGEST_TIME_LIMIT_S")
        return self

    @property
    def broker_dir(self) -> Path:
        """Where the filesystem transport keeps its messages (embedded mode)."""
        return self.data_dir / "broker"

    @property
    def upload_tmp_dir(self) -> Path:
        """Where uploads are received before they go to the store; stale files are swept when an API starts."""
        return self.data_dir / "tmp" / "uploads"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def describe(self) -> dict[str, str]:
        """Where state lives, without secrets (for start-up logs)."""
        db = urlparse(self.database_url)
        safe_db = self.database_url if not db.password else self.database_url.replace(f":{db.password}@", ":***@")
        broker = urlparse(self.broker_url)
        safe_broker = (self.broker_url if not broker.password
                       else self.broker_url.replace(f":{broker.password}@", ":***@"))
        return {"data_dir": str(self.data_dir), "database": safe_db, "storage": self.storage_url, "broker": safe_broker}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
