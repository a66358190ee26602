"""Every query on datasets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from api.db import utcnow
from api.orm import Dataset
from api.statuses import DatasetStatus, check_update


def add(session: Session, dataset: Dataset) -> None:
    session.add(dataset)
    session.flush()


def get_for_project(session: Session, *, project_id: str, dataset_id: str) -> Dataset | None:
    return session.scalar(select(Dataset).where(Dataset.id == dataset_id, Dataset.project_id == project_id))


def get(session: Session, dataset_id: str, *, for_update: bool = False) -> Dataset | None:
    query = select(Dataset).where(Dataset.id == dataset_id)
    return session.scalar(query.with_for_update() if for_update else query)


def list_for_project(session: Session, *, project_id: str, limit: int, offset: int) -> tuple[list[Dataset], int]:
    where = Dataset.project_id == project_id
    total = session.scalar(select(func.count()).select_from(Dataset).where(where)) or 0
    rows = session.scalars(select(Dataset).where(where).order_by(Dataset.created_at.desc(), Dataset.id)
                           .limit(limit).offset(offset)).all()
    return list(rows), total


def delete(session: Session, dataset: Dataset) -> None:
    session.delete(dataset)
    session.flush()


def update_if_processing(session: Session, dataset_id: str, **values: Any) -> bool:
    """Set ``values`` only while the dataset is still ``processing``; False if it was finished or deleted meanwhile.

    The guard makes a duplicate or late ingest (re-delivery, reaper) unable to overwrite a finished dataset.
    """
    check_update(DatasetStatus, [DatasetStatus.PROCESSING], values)
    result = session.execute(update(Dataset).where(Dataset.id == dataset_id,
                                                   Dataset.status == DatasetStatus.PROCESSING)
                             .values(updated_at=utcnow(), **values))
    return result.rowcount == 1


def stale_processing_ids(session: Session, *, older_than: datetime) -> list[str]:
    return list(session.scalars(select(Dataset.id).where(Dataset.status == "processing",
                                                         Dataset.updated_at < older_than)))


def touch_if_stale(session: Session, dataset_id: str, *, older_than: datetime) -> bool:
    """Bump ``updated_at`` of a dataset still ``processing`` and untouched since ``older_than``; False when another
    sweep (or the ingest) touched it first. On PostgreSQL a second UPDATE waits for the first one's commit and then
    sees the new time, on SQLite writers take turns: of concurrent reapers exactly one wins."""
    result = session.execute(update(Dataset).where(Dataset.id == dataset_id,
                                                   Dataset.status == DatasetStatus.PROCESSING,
                                                   Dataset.updated_at < older_than)
                             .values(updated_at=utcnow()))
    return result.rowcount == 1
