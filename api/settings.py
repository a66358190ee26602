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

MiB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NAS_", extra="ignore")

    # Embedded state root: the SQLite file, local objects and the filesystem broker live here by default.
    data_dir: Path = Path("./.nas-data")
    database_url: str = ""
    storage_url: str = ""
    broker_url: str = ""
    # Isolates several deployments (or test runs) sharing one Redis; empty means no prefix.
    broker_key_prefix: str = ""

    s3_endpoint: str = ""
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    s3_secure: bool = True
    s3_region: str = "us-east-1"

    # Upload and archive limits (the zip limits map onto nas_core.data.IngestLimits).
    max_upload_bytes: int = Field(default=512 * MiB, gt=0)
    zip_max_members: int = Field(default=100_000, gt=0)
    zip_max_uncompressed_bytes: int = Field(default=2048 * MiB, gt=0)
    zip_max_compression_ratio: float = Field(default=200.0, gt=1)
    max_image_pixels: int = Field(default=40_000_000, gt=0)
    min_images_per_class: int = Field(default=5, ge=1)
    max_resolution: int = Field(default=64, ge=8)

    # Ingestion runs under a hard time limit; a dataset still `processing` well after it is retried (see reaper).
    ingest_time_limit_s: int = Field(default=1800, gt=0)
    ingest_stale_after_s: int = Field(default=3600, gt=0)
    ingest_max_attempts: int = Field(default=3, ge=1)
    reaper_interval_s: int = Field(default=300, gt=0)

    worker_device: Literal["auto", "cpu", "cuda"] | str = "auto"

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
        elif storage.scheme != "file":
            raise ValueError("NAS_STORAGE_URL must be file://DIR or s3://BUCKET")
        if self.broker_url.split("://", 1)[0] not in ("filesystem", "redis", "rediss", "memory"):
            raise ValueError("NAS_BROKER_URL must be filesystem://, redis://… or rediss://…")
        if self.ingest_stale_after_s <= self.ingest_time_limit_s:
            raise ValueError("NAS_INGEST_STALE_AFTER_S must exceed NAS_INGEST_TIME_LIMIT_S")
        return self

    @property
    def broker_dir(self) -> Path:
        """Where the filesystem transport keeps its messages (embedded mode)."""
        return self.data_dir / "broker"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def describe(self) -> dict[str, str]:
        """Where state lives, without secrets (for start-up logs)."""
        db = urlparse(self.database_url)
        safe_db = self.database_url if not db.password else self.database_url.replace(f":{db.password}@", ":***@")
        broker = urlparse(self.broker_url)
        safe_broker = self.broker_url if not broker.password else self.broker_url.replace(f":{broker.password}@", ":***@")
        return {"data_dir": str(self.data_dir), "database": safe_db, "storage": self.storage_url, "broker": safe_broker}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
