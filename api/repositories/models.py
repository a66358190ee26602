"""Every query on final models (experiments, trials and datasets are read through their own repositories)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from api.db import utcnow
from api.orm import Model
from api.statuses import ModelStatus, check_update


def add(session: Session, model: Model) -> None:
    session.add(model)
    session.flush()


def get(session: Session, model_id: str, *, for_update: bool = False) -> Model | None:
    query = select(Model).where(Model.id == model_id)
    return session.scalar(query.with_for_update() if for_update else query)


def get_for_project(session: Session, *, project_id: str, model_id: str) -> Model | None:
    return session.scalar(select(Model).where(Model.id == model_id, Model.project_id == project_id))


def list_for_project(session: Session, *, project_id: str, experiment_id: str | None = None, limit: int,
                     offset: int) -> tuple[list[Model], int]:
    where = [Model.project_id == project_id]
    if experiment_id is not None:
        where.append(Model.experiment_id == experiment_id)
    total = session.scalar(select(func.count()).select_from(Model).where(*where)) or 0
    rows = session.scalars(select(Model).where(*where).order_by(Model.created_at.desc(), Model.id)
                           .limit(limit).offset(offset)).all()
    return list(rows), total


def claim(session: Session, model_id: str, *, seen_attempts: int, lease_token: str,
          stale_before: datetime) -> bool:
    """Start an attempt: ``queued`` (or ``running`` with a dead heartbeat) → ``running`` under a new lease.

    A conditional UPDATE rather than read-then-write: SQLite has no row locks, and of two workers racing for the
    same row only the one that still sees ``seen_attempts`` wins.
    """
    now = utcnow()
    values = {"status": ModelStatus.RUNNING.value, "lease_token": lease_token, "attempts": seen_attempts + 1,
              "heartbeat_at": now, "detail": None, "updated_at": now}
    check_update(ModelStatus, [ModelStatus.QUEUED, ModelStatus.RUNNING], values)
    result = session.execute(
        update(Model).where(Model.id == model_id, Model.attempts == seen_attempts,
                            or_(Model.status == ModelStatus.QUEUED,
                                (Model.status == ModelStatus.RUNNING) & (Model.heartbeat_at < stale_before)))
        .values(**values))
    return result.rowcount == 1


def update_with_lease(session: Session, model_id: str, lease_token: str, /, **values: Any) -> bool:
    """Write ``values`` only while ``lease_token`` still holds the running model; False means the lease was lost."""
    check_update(ModelStatus, [ModelStatus.RUNNING], values)
    result = session.execute(update(Model).where(Model.id == model_id, Model.status == ModelStatus.RUNNING,
                                                 Model.lease_token == lease_token)
                             .values(updated_at=utcnow(), **values))
    return result.rowcount == 1


def update_status(session: Session, model_id: str, *, expected_status: str, **values: Any) -> bool:
    """Write ``values`` only while the model is in ``expected_status`` (used by the claim's give-up path)."""
    check_update(ModelStatus, [expected_status], values)
    result = session.execute(update(Model).where(Model.id == model_id, Model.status == expected_status)
                             .values(updated_at=utcnow(), **values))
    return result.rowcount == 1


def requeue_if_stale(session: Session, model_id: str, *, stale_before: datetime, **values: Any) -> bool:
    """Move a running model whose heartbeat is older than ``stale_before`` (guard against a late heartbeat)."""
    check_update(ModelStatus, [ModelStatus.RUNNING], values)
    result = session.execute(update(Model).where(Model.id == model_id, Model.status == ModelStatus.RUNNING,
                                                 Model.heartbeat_at < stale_before)
                             .values(updated_at=utcnow(), **values))
    return result.rowcount == 1


def stale_running(session: Session, *, stale_before: datetime) -> list[tuple[str, int]]:
    """``(id, attempts)`` of running models whose heartbeat stopped before ``stale_before``."""
    rows = session.execute(select(Model.id, Model.attempts).where(Model.status == "running",
                                                                  Model.heartbeat_at < stale_before))
    return [(row.id, row.attempts) for row in rows]


def stale_queued_ids(session: Session, *, untouched_since: datetime) -> list[str]:
    return list(session.scalars(select(Model.id).where(Model.status == "queued",
                                                       Model.updated_at < untouched_since)))


def touch_if_queued_since(session: Session, model_id: str, *, untouched_since: datetime) -> bool:
    """Bump ``updated_at`` of a model still ``queued`` and untouched since ``untouched_since``; False when another
    sweep (or a claim) touched it first, so of concurrent reapers exactly one re-enqueues it."""
    result = session.execute(update(Model).where(Model.id == model_id, Model.status == ModelStatus.QUEUED,
                                                 Model.updated_at < untouched_since)
                             .values(updated_at=utcnow()))
    return result.rowcount == 1
