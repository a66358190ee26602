"""Per-project quotas, the request rate limiter and stored responses of idempotent POSTs.

Quotas are checked inside the request's transaction with the project row locked (see
:func:`api.repositories.limits.lock_project`), so two concurrent requests can never both take the last slot.
Settings of 0 mean unlimited.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from api.db import utcnow
from api.errors import QuotaExceeded, RateLimited, StorageQuotaExceeded, ValidationFailed
from api.orm import IdempotencyKey
from api.repositories import limits as repository
from api.settings import Settings

UNLIMITED = 2**31 - 1
log = logging.getLogger(__name__)


def check_experiment_quotas(*, session: Session, settings: Settings, project_id: str, concurrency: int,
                            exclude_experiment_id: str | None = None) -> None:
    """Refuse (429 ``quota-exceeded``) an experiment that would start beyond the project's active-experiment or
    trial-slot quota. ``exclude_experiment_id``: the experiment being resumed. Locks the project row."""
    max_experiments, max_trials = settings.project_max_active_experiments, settings.project_max_active_trials
    if not max_experiments and not max_trials:
        return
    repository.lock_project(session, project_id)
    active = repository.active_experiments(session, project_id, exclude=exclude_experiment_id)
    if max_experiments and len(active) >= max_experiments:
        raise QuotaExceeded(f"the project already has {len(active)} active experiments; the quota "
                              f"project_max_active_experiments is {max_experiments}")
    # Reserved, not merely running: a queued experiment will use its concurrency as soon as it is scheduled.
    reserved = sum(experiment.concurrency for experiment in active)
    if max_trials and reserved + concurrency > max_trials:
        raise QuotaExceeded(f"concurrency {concurrency} does not fit: active experiments reserve {reserved} of "
                              f"the {max_trials} trial slots of the quota project_max_active_trials")


def trial_slots_left(*, session: Session, settings: Settings, project_id: str) -> int:
    """How many more trials the project may have pending or running now (the scheduler's cap)."""
    if not settings.project_max_active_trials:
        return UNLIMITED
    return settings.project_max_active_trials - repository.active_trial_count(session, project_id)


def check_storage_quota(*, session: Session, settings: Settings, project_id: str, adding_bytes: int) -> None:
    """Refuse (413 ``storage-quota-exceeded``) storing ``adding_bytes`` more for the project. Locks the project."""
    quota = settings.project_max_storage_bytes
    if not quota:
        return
    repository.lock_project(session, project_id)
    used = repository.stored_bytes(session, project_id)
    if used + adding_bytes > quota:
        raise StorageQuotaExceeded(f"storing {adding_bytes} more bytes would exceed the quota "
                                   f"project_max_storage_bytes of {quota} bytes ({used} bytes used); delete datasets "
                                   "to free space")


# ---------------------------------------------------------------------------------------------------------------
# Rate limit


class RateLimiter:
    """A token bucket per project: ``per_minute`` requests of burst, refilled at ``per_minute / 60`` a second.

    This one lives in process memory: a check is a dict lookup under a lock, but each API process counts on its own.
    :class:`SharedRateLimiter` keeps the buckets in Redis for deployments with several API replicas.
    """

    def __init__(self, per_minute: int, *, clock=time.monotonic) -> None:
        self.capacity, self.rate = float(per_minute), per_minute / 60.0
        self._clock, self._lock = clock, threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # project id -> (tokens, updated at)

    def acquire(self, project_id: str) -> float:
        """Take one token; returns 0 when allowed, else the seconds until a token is available."""
        if not self.capacity:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, updated = self._buckets.get(project_id, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - updated) * self.rate)
            if tokens >= 1.0:
                self._buckets[project_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[project_id] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def check(self, project_id: str) -> None:
        """Raise 429 ``rate-limited`` with ``Retry-After`` (whole seconds) once the project's bucket is empty."""
        wait_s = self.acquire(project_id)
        if wait_s:
            raise RateLimited(f"more than {int(self.capacity)} requests per minute; retry later",
                              retry_after_s=max(1, math.ceil(wait_s)))


# The same bucket as RateLimiter.acquire, atomic in Redis on the server's clock; returns the wait as a string
# (a Lua number would come back truncated to an integer).
_TOKEN_BUCKET = """
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens, updated = tonumber(state[1]) or capacity, tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return tostring(wait)
"""


class SharedRateLimiter(RateLimiter):
    """The token buckets in Redis, so every API replica draws from one bucket per project (one round trip each).

    While Redis cannot be reached, each process falls back to its own in-memory bucket rather than refuse or wave
    through every request; readiness already reports the broker's outage.
    """

    def __init__(self, per_minute: int, *, redis_url: str, key_prefix: str = "") -> None:
        import redis

        super().__init__(per_minute)
        self._errors = redis.RedisError
        client = redis.Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script = client.register_script(_TOKEN_BUCKET)
        self._prefix = f"{key_prefix}nas:rate-limit:"

    def acquire(self, project_id: str) -> float:
        if not self.capacity:
            return 0.0
        try:
            return float(self._script(keys=[self._prefix + project_id], args=[self.capacity, self.rate]))
        except self._errors as error:
            log.warning("shared rate limit unavailable (%s); counting in this process", error)
            return super().acquire(project_id)


def make_rate_limiter(settings: Settings) -> RateLimiter:
    """Shared through the broker's Redis when there is one and ``rate_limit_shared`` is on, else per process."""
    if settings.rate_limit_shared and settings.broker_url.startswith(("redis://", "rediss://")):
        return SharedRateLimiter(settings.rate_limit_per_minute, redis_url=settings.broker_url,
                                 key_prefix=settings.broker_key_prefix)
    return RateLimiter(settings.rate_limit_per_minute)


# ---------------------------------------------------------------------------------------------------------------
# Idempotent POSTs


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
