"""The relational schema (SQLAlchemy ORM tables): projects and their API keys, datasets, experiments, trials with
their attempts and epochs, final models, idempotency keys. Status columns hold the vocabularies of ``api.statuses``
(their CHECK constraints list its values) and refuse, on assignment, a move its transition tables do not allow.

Named ``orm`` rather than ``models``: a "model" in this service is a trained network (``api.services.models``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint,
                        event)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.orm.base import NEVER_SET, NO_VALUE

from api.db import Base, UTCDateTime, new_id, utcnow
from api.statuses import (AttemptStatus, DatasetStatus, ExperimentStatus, ModelStatus, Status, TrialStatus,
                          check_status, check_transition, values)

DATASET_STATUSES = values(DatasetStatus)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    api_keys: Mapped[list[ApiKey]] = relationship(back_populates="project", passive_deletes=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    # The first characters of the key, stored in clear so a lookup needs no scan; the rest only as a hash.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    project: Mapped[Project] = relationship(back_populates="api_keys")


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (
        CheckConstraint(f"status IN {DATASET_STATUSES}", name="status"),
        Index("ix_datasets_project_id_created_at", "project_id", "created_at"),
        Index("ix_datasets_status_updated_at", "status", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=DatasetStatus.PROCESSING.value)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # Every object of the dataset lives under this prefix: the upload, tensor shards and manifest.json.
    storage_prefix: Mapped[str] = mapped_column(String(200))
    num_images: Mapped[int | None] = mapped_column(Integer)
    classes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    image: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    splits: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    detail: Mapped[str | None] = mapped_column(String(2000))
    ingest_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


EXPERIMENT_STATUSES = values(ExperimentStatus)
TRIAL_STATUSES = values(TrialStatus)
ATTEMPT_STATUSES = values(AttemptStatus)
MODEL_STATUSES = values(ModelStatus)


class Experiment(Base):
    """A search: what to search (dataset, space, strategy), how much (budget), and where it stands."""

    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint(f"status IN {EXPERIMENT_STATUSES}", name="status"),
        Index("ix_experiments_project_id_created_at", "project_id", "created_at"),
        Index("ix_experiments_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    # A dataset cannot be deleted while an experiment is active; afterwards the experiment keeps its record.
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=ExperimentStatus.QUEUED.value)
    strategy: Mapped[str] = mapped_column(String(32))
    strategy_settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    budget: Mapped[dict[str, Any]] = mapped_column(JSON)
    concurrency: Mapped[int] = mapped_column(Integer, default=1)
    constraints: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    search_space: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pruner: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seed: Mapped[int] = mapped_column(BigInteger)
    auto_model: Mapped[bool] = mapped_column(default=True)
    reproducibility: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The whole objective as asked ({"metric": ..., "constraints": ...}); constraints are also kept on their own.
    objective: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Candidates screened out before they became trials: {"total", "by_reason": {reason: n}, "smallest": {...}}.
    screened: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The most recent screened-out decisions with their reason, so strategies learn the infeasible region.
    screened_points: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # A warm start: the source experiment ids, the counts, and the seeded trials as history records (a snapshot
    # taken at creation, so the seed stays what it was when a source is resumed or deleted); None for a cold start.
    warm_start: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Trial numbers are taken from this counter under the experiment's row lock: unique and never reused.
    trials_created: Mapped[int] = mapped_column(Integer, default=0)
    # Search time spent in earlier running periods (before a cancel), so max_minutes spans resumes.
    elapsed_s: Mapped[float] = mapped_column(default=0.0)
    running_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    detail: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def metric(self) -> str:
        """What the search maximises: ``accuracy`` (default) or ``balanced_accuracy`` (mean per-class recall)."""
        return (self.objective or {}).get("metric") or "accuracy"

    @property
    def minimize(self) -> tuple[str, ...]:
        """What a Pareto search (objective mode ``pareto``) minimises next to its metric (``latency_ms``,
        ``params``); empty for a single-objective search (mode ``accuracy``, the default)."""
        objective = self.objective or {}
        if objective.get("mode") != "pareto":
            return ()
        return tuple(objective.get("minimize") or ("latency_ms",))

    @property
    def latency_target_ms(self) -> float | None:
        """The soft latency target of a single-objective search (MnasNet's reward), if it has one."""
        objective = self.objective or {}
        return None if objective.get("mode") == "pareto" else objective.get("latency_target_ms")

    @property
    def latency_batch(self) -> int | None:
        """The batch at which trials also measure their per-image latency (recorded only), if one was asked for."""
        return (self.objective or {}).get("latency_batch")

    def epochs_of(self, trial: Trial | None) -> int:
        """The epochs ``trial`` trains for in full: its own length (a time-bound search lengthens its trials while
        none has learned), else, for a trial stored before lengths varied or for none, the budget's epochs per
        trial."""
        planned = trial.planned_epochs if trial is not None else None
        return int(planned or (self.budget or {}).get("epochs_per_trial") or 1)


class Trial(Base):
    """One candidate of an experiment; its executions are attempts (a crashed attempt is followed by another)."""

    __tablename__ = "trials"
    __table_args__ = (
        CheckConstraint(f"status IN {TRIAL_STATUSES}", name="status"),
        UniqueConstraint("experiment_id", "number", name="uq_trials_experiment_id_number"),
        Index("ix_trials_experiment_id_status", "experiment_id", "status"),
        Index("ix_trials_status_heartbeat_at", "status", "heartbeat_at"),
        # Covers the leaderboard (rank order, leader, Pareto points, "did anything finish?") without reading the
        # wide JSON rows: a polled leaderboard of a 10,000-trial experiment stays a few index pages.
        Index("ix_trials_ranking", "experiment_id", "status", "feasible", "val_accuracy", "params", "number",
              "latency_ms", "finished_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=TrialStatus.PENDING.value)
    decisions: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The decoded candidate: {"arch": ArchSpec dict, "train": TrainSpec dict}.
    arch: Mapped[dict[str, Any]] = mapped_column(JSON)
    arch_hash: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(BigInteger)
    val_accuracy: Mapped[float | None] = mapped_column()
    val_loss: Mapped[float | None] = mapped_column()
    val_balanced_accuracy: Mapped[float | None] = mapped_column()
    val_recall: Mapped[list[float | None] | None] = mapped_column(JSON)  # per class (index order), last epoch
    # The trained network's balanced accuracy on the validation images mirrored left to right (is the data set
    # mirror-symmetric?) and flipped top to bottom (are its images orientation-free?)
    val_mirrored_balanced_accuracy: Mapped[float | None] = mapped_column()
    val_upside_down_balanced_accuracy: Mapped[float | None] = mapped_column()
    # The epochs it trains for in full: the experiment's epochs_per_trial, or a multiple of it once a time-bound
    # search has lengthened its trials (nas_core.fidelity); null on trials stored before lengths varied.
    planned_epochs: Mapped[int | None] = mapped_column(Integer)
    # Whether it trains one of the space's hand-designed reference networks with its recipe (flips aside): when no
    # trial has learned, the final model's trial is chosen among these (null on trials stored before).
    reference_design: Mapped[bool | None] = mapped_column()
    # The number of the trial whose kept weights this one started from: a trial promoted to a longer length trains on
    # from its shorter run (nas_core.fidelity) where those weights were kept; null: from its seed's random weights.
    started_from_trial: Mapped[int | None] = mapped_column(Integer)
    # Seconds per epoch predicted before training (cost model) and measured (median of the trial's epochs).
    predicted_epoch_s: Mapped[float | None] = mapped_column()
    measured_epoch_s: Mapped[float | None] = mapped_column()
    bf16: Mapped[bool | None] = mapped_column()  # trained under bf16 autocast (decided once, before training)
    params: Mapped[int | None] = mapped_column(BigInteger)
    flops: Mapped[int | None] = mapped_column(BigInteger)
    # onnxruntime CPU, per image at batch 1: latency_ms the median (what everything ranks on), latency_p90_ms the 90th
    # percentile of the same runs; latency_batch_ms the median per image at the objective's latency_batch (if any).
    latency_ms: Mapped[float | None] = mapped_column()
    latency_p90_ms: Mapped[float | None] = mapped_column()
    latency_batch_ms: Mapped[float | None] = mapped_column()
    feasible: Mapped[bool] = mapped_column(default=True)
    error: Mapped[str | None] = mapped_column(String(4000))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When a user asked this trial to stop: its heartbeat ends the running attempt at the next batch, and a trial
    # pending (or handed back by the reaper) never starts another attempt.
    stop_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The lease of the attempt allowed to write; a write carrying another token is refused.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_s: Mapped[float | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    epochs: Mapped[list[TrialEpoch]] = relationship(order_by="TrialEpoch.epoch", passive_deletes=True,
                                                    lazy="selectin")


class TrialAttempt(Base):
    """One execution of a trial by one worker, identified by its lease token."""

    __tablename__ = "trial_attempts"
    __table_args__ = (
        CheckConstraint(f"status IN {ATTEMPT_STATUSES}", name="status"),
        UniqueConstraint("trial_id", "number", name="uq_trial_attempts_trial_id_number"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    trial_id: Mapped[str] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    lease_token: Mapped[str] = mapped_column(String(32), unique=True)
    worker: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=AttemptStatus.RUNNING.value)
    error: Mapped[str | None] = mapped_column(String(4000))
    # The epoch of the checkpoint this attempt continued from (None: it started the trial from scratch).
    resumed_from_epoch: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TrialEpoch(Base):
    """Per-epoch metrics of a trial's current attempt (a new attempt starts its curve afresh)."""

    __tablename__ = "trial_epochs"

    trial_id: Mapped[str] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    val_accuracy: Mapped[float] = mapped_column()
    val_loss: Mapped[float] = mapped_column()
    val_balanced_accuracy: Mapped[float | None] = mapped_column()
    train_loss: Mapped[float] = mapped_column()
    seconds: Mapped[float] = mapped_column()


class Model(Base):
    """A final model: a trial's architecture retrained on train+val, tested on held-out data and exported."""

    __tablename__ = "models"
    __table_args__ = (
        CheckConstraint(f"status IN {MODEL_STATUSES}", name="status"),
        Index("ix_models_project_id_created_at", "project_id", "created_at"),
        Index("ix_models_status_heartbeat_at", "status", "heartbeat_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    trial_id: Mapped[str] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=ModelStatus.QUEUED.value)
    epochs: Mapped[int] = mapped_column(Integer)
    # Retraining time predicted from the winner's measured epoch time, announced before the job starts.
    estimated_seconds: Mapped[float | None] = mapped_column()
    # A time budget for the epochs (null: they are fixed): the job refits the epochs to its device's step time.
    train_seconds: Mapped[float | None] = mapped_column()
    seed: Mapped[int] = mapped_column(BigInteger)
    test_accuracy: Mapped[float | None] = mapped_column()
    # {"per_class": [{"name", "precision", "recall", "support"}], "test_images": N, "onnx_max_abs_diff": ...}
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    confusion_matrix: Mapped[list[list[int]] | None] = mapped_column(JSON)
    params: Mapped[int | None] = mapped_column(BigInteger)
    flops: Mapped[int | None] = mapped_column(BigInteger)
    latency_ms: Mapped[float | None] = mapped_column()
    # [{"format", "object", "size", "sha256"}]; set only together with status "ready".
    artifacts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    storage_prefix: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(String(4000))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IdempotencyKey(Base):
    """The first response to a POST sent with an ``Idempotency-Key``; a replay of the same request returns it."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        # Inserted in the resource's transaction: of two concurrent duplicates only one can commit.
        UniqueConstraint("project_id", "key", "method", "path", name="uq_idempotency_keys_project_id_key"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    # sha256 of the canonical request body (of the uploaded file and form fields for a multipart upload).
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


def _guard_status(table: type[Base], vocabulary: type[Status]) -> None:
    """Refuse, on assignment, any ``status`` the vocabulary's transition table does not allow after the current one.

    ``active_history`` loads the current value of an expired row first, so a write after a commit is checked too. A
    new row may start in any status (fixtures, imports); the value kept is the plain string the database stores.
    Bulk UPDATEs bypass this: the repositories check theirs (``api.statuses.check_update``).
    """

    def on_set(target: Any, value: Any, old: Any, initiator: Any) -> Any:
        if value is None:
            return value  # left to the NOT NULL constraint
        new = check_status(vocabulary, value)
        if old not in (None, NO_VALUE, NEVER_SET):
            check_transition(vocabulary, old, new)
        return new.value

    event.listen(table.status, "set", on_set, retval=True, active_history=True)


for _table, _vocabulary in ((Dataset, DatasetStatus), (Experiment, ExperimentStatus), (Trial, TrialStatus),
                            (TrialAttempt, AttemptStatus), (Model, ModelStatus)):
    _guard_status(_table, _vocabulary)
