"""The request rate limiter: a token bucket per project, in process memory or shared through Redis."""

from __future__ import annotations

import logging
import math
import threading
import time

from api.errors import RateLimited
from api.settings import Settings

log = logging.getLogger(__name__)


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
