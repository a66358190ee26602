"""Projects and API keys: create a key (shown once), authenticate a bearer token, revoke."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from api import security
from api.db import utcnow
from api.errors import Unauthorized
from api.orm import ApiKey, Project
from api.repositories import projects as repository

# Recording every request's time would turn each read into a write; once a minute is enough to spot unused keys.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    project_id: str
    project_name: str
    key_id: str
    key: str  # the only time the clear key exists


def create_api_key(*, session: Session, project_name: str) -> CreatedKey:
    """Create ``project_name`` if needed and a new key for it; only the key's hash is stored."""
    project = repository.get_project_by_name(session, project_name)
    if project is None:
        project = Project(name=project_name)
        repository.add(session, project)
    key = security.generate_api_key()
    api_key = ApiKey(project_id=project.id, prefix=security.key_prefix(key), key_hash=security.hash_api_key(key))
    repository.add(session, api_key)
    return CreatedKey(project_id=project.id, project_name=project.name, key_id=api_key.id, key=key)


def authenticate(*, session: Session, key: str) -> Project:
    """The project a bearer key belongs to; :class:`Unauthorized` for malformed, unknown or revoked keys."""
    if not security.is_well_formed(key):
        raise Unauthorized("malformed API key")
    api_key = repository.get_api_key_by_prefix(session, security.key_prefix(key))
    if api_key is None or not security.key_matches(key, api_key.key_hash) or api_key.revoked_at is not None:
        raise Unauthorized("unknown or revoked API key")
    now = utcnow()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        api_key.last_used_at = now
    return api_key.project


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What may be shown of a key: never the key or its hash."""

    key_id: str
    project_name: str
    prefix: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


def list_api_keys(*, session: Session, project_name: str | None = None) -> list[KeyInfo]:
    """Every key (of ``project_name`` when given), oldest first, as :class:`KeyInfo`."""
    def iso(value) -> str | None:
        return value.isoformat() if value is not None else None

    return [KeyInfo(key_id=key.id, project_name=key.project.name, prefix=key.prefix, created_at=iso(key.created_at),
                    last_used_at=iso(key.last_used_at), revoked_at=iso(key.revoked_at))
            for key in repository.api_keys(session, project_name=project_name)]


def revoke_api_key(*, session: Session, key_id: str) -> None:
    api_key = repository.get_api_key(session, key_id)
    if api_key is not None and api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
