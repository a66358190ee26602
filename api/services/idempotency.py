"""Stored responses of idempotent POSTs: a request repeated with its ``Idempotency-Key`` gets the first answer
again; the same key with another body is refused."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from api.db import utcnow
from api.errors import ValidationFailed
from api.orm import IdempotencyKey
from api.repositories import limits as repository
from api.settings import Settings


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """A POST sent with an ``Idempotency-Key``; ``fingerprint`` is None until the body is known (uploads)."""

    project_id: str
    key: str
    method: str
    path: str
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    media_type: str
    body: str


class IdempotentReplay(Exception):
    """The request was already answered: send ``response`` again (with ``Idempotent-Replayed: true``)."""

    def __init__(self, response: StoredResponse) -> None:
        super().__init__("idempotent replay")
        self.response = response


def body_fingerprint(body: bytes) -> str:
    """sha256 of a JSON body in canonical form (key order and spacing do not matter), else of the raw bytes."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    except ValueError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def upload_fingerprint(*, file_sha256: str, fields: dict[str, str]) -> str:
    """The fingerprint of a multipart upload: the file's sha256 (computed while streaming) and the form fields."""
    return body_fingerprint(json.dumps({"file": file_sha256, "fields": fields}).encode())


def find_replay(*, session: Session, request: IdempotentRequest) -> None:
    """Raise :class:`IdempotentReplay` when ``request`` was answered already, 422 ``idempotency-key-reused`` when
    its key was used with another body. An expired entry is deleted and the request runs anew."""
    row = repository.get_idempotency_key(session, project_id=request.project_id, key=request.key,
                                         method=request.method, path=request.path)
    if row is None:
        return
    if row.expires_at <= utcnow():
        session.delete(row)
        session.flush()
        return
    if row.fingerprint != request.fingerprint:
        raise ValidationFailed([{"field": "header.Idempotency-Key", "error": "already used with a different request "
                                 "body"}], f"Idempotency-Key {request.key!r} was already used with a different "
                               "request body", type="idempotency-key-reused")
    raise IdempotentReplay(StoredResponse(status_code=row.status_code, media_type=row.media_type, body=row.body))


def remember(*, session: Session, settings: Settings, request: IdempotentRequest, response: StoredResponse) -> None:
    """Store ``response`` for ``request`` in the current transaction (with the resource it created).

    A concurrent duplicate that committed first makes this raise ``IntegrityError``: the caller rolls back and
    replays the stored response. Expired entries of the project are cleaned up on the way.
    """
    now = utcnow()
    repository.delete_expired_idempotency_keys(session, now=now, project_id=request.project_id)
    repository.add_idempotency_key(session, IdempotencyKey(
        project_id=request.project_id, key=request.key, method=request.method, path=request.path,
        fingerprint=request.fingerprint, status_code=response.status_code, media_type=response.media_type,
        body=response.body, created_at=now, expires_at=now + timedelta(seconds=settings.idempotency_ttl_s)))
