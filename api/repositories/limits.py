"""Queries behind per-project quotas and stored idempotent responses."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from api.orm import (
    Dataset,
    Experiment,
    IdempotencyKey,
    Model,
    Project,
    Trial,
)
from api.statuses import ACTIVE_EXPERIMENT_STATUSES, ACTIVE_TRIAL_STATUSES


def lock_project(session: Session, project_id: str) -> None:
    """Serialize quota checks of one project for the rest of this transaction.

    The no-op UPDATE comes first on purpose: on SQLite it takes the database's write lock before anything is
    counted; on PostgreSQL the ``SELECT … FOR UPDATE`` (and the UPDATE) hold the project's row lock.
    """
    session.execute(update(Project).where(Project.id == project_id).values(name=Project.name))
    session.execute(select(Project.id).where(Project.id == project_id).with_for_update())


def active_experiments(session: Session, project_id: str, *, exclude: str | None = None) -> list[Experiment]:
    where = [Experiment.project_id == project_id, Experiment.status.in_(ACTIVE_EXPERIMENT_STATUSES)]
    if exclude is not None:
        where.append(Experiment.id != exclude)
    return list(session.scalars(select(Experiment).where(*where)))


def active_trial_count(session: Session, project_id: str) -> int:
    """Pending and running trials over all of the project's experiments."""
    return session.scalar(select(func.count()).select_from(Trial).join(Experiment, Trial.experiment_id == Experiment.id)
                          .where(Experiment.project_id == project_id,
                                 Trial.status.in_(ACTIVE_TRIAL_STATUSES))) or 0


def stored_bytes(session: Session, project_id: str) -> int:
    """Bytes a project keeps in the object store: dataset uploads (failed ones are deleted) and model artifacts."""
    uploads = session.scalar(select(func.coalesce(func.sum(Dataset.size_bytes), 0))
                             .where(Dataset.project_id == project_id, Dataset.status != "failed")) or 0
    artifacts = session.scalars(select(Model.artifacts).where(Model.project_id == project_id,
                                                              Model.status == "ready"))
    return int(uploads) + sum(int(a.get("size") or 0) for listed in artifacts for a in (listed or []))


def get_idempotency_key(session: Session, *, project_id: str, key: str, method: str, path: str
                        ) -> IdempotencyKey | None:
    return session.scalar(select(IdempotencyKey).where(IdempotencyKey.project_id == project_id,
                                                       IdempotencyKey.key == key, IdempotencyKey.method == method,
                                                       IdempotencyKey.path == path))


def add_idempotency_key(session: Session, row: IdempotencyKey) -> None:
    session.add(row)
    session.flush()  # the unique constraint speaks now, inside the resource's transaction


def delete_expired_idempotency_keys(session: Session, *, now: datetime, project_id: str | None = None) -> int:
    where = [IdempotencyKey.expires_at < now]
    if project_id is not None:
        where.append(IdempotencyKey.project_id == project_id)
    return session.execute(delete(IdempotencyKey).where(*where)).rowcount or 0
