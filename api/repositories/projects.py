"""Queries on projects and their API keys (the auth aggregate)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from api.orm import ApiKey, Project


def get_project_by_name(session: Session, name: str) -> Project | None:
    return session.scalar(select(Project).where(Project.name == name))


def add(session: Session, entity: Project | ApiKey) -> None:
    session.add(entity)
    session.flush()


def get_api_key_by_prefix(session: Session, prefix: str) -> ApiKey | None:
    """The key with its project, in one query (every authenticated request runs this)."""
    return session.scalar(select(ApiKey).options(joinedload(ApiKey.project)).where(ApiKey.prefix == prefix))


def get_api_key(session: Session, key_id: str) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def api_keys(session: Session, *, project_name: str | None = None) -> list[ApiKey]:
    """Every key with its project (of one project when named), oldest first."""
    query = select(ApiKey).options(joinedload(ApiKey.project)).order_by(ApiKey.created_at, ApiKey.id)
    if project_name is not None:
        query = query.join(Project).where(Project.name == project_name)
    return list(session.scalars(query))
