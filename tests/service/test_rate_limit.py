"""The rate limiter's token buckets: in process memory, and shared between API processes through Redis."""

from __future__ import annotations

import secrets
import time

import pytest

from api.services.rate_limit import RateLimiter, SharedRateLimiter, make_rate_limiter
from api.settings import Settings
from tests.service.helpers import REDIS_URL, free_port


def _shared(per_minute: int, prefix: str, url: str = f"{REDIS_URL}/0") -> SharedRateLimiter:
    return SharedRateLimiter(per_minute, redis_url=url, key_prefix=prefix)


def test_processes_with_the_same_redis_draw_from_one_bucket_per_project():
    prefix = f"nas-test-{secrets.token_hex(4)}:"
    first, second = _shared(60, prefix), _shared(60, prefix)  # a burst of 60, then one a second
    waits = [(first if i % 2 else second).acquire("p1") for i in range(60)]
    assert waits == [0.0] * 60
    assert 0.9 < first.acquire("p1") <= 1.0 and 0.9 < second.acquire("p1") <= 1.0  # refilled at 1/s, not 2/s
    assert first.acquire("p2") == 0.0  # per project
    assert _shared(60, f"other-{prefix}").acquire("p1") == 0.0  # another deployment's prefix is another bucket
    assert _shared(0, prefix).acquire("p1") == 0.0  # 0 = unlimited


def test_an_unreachable_redis_falls_back_to_this_processs_bucket():
    limiter = _shared(3, "nas-test:", url=f"redis://127.0.0.1:{free_port()}/0")
    assert [limiter.acquire("p") for _ in range(3)] == [0.0] * 3
    assert limiter.acquire("p") > 0


def test_the_limiter_is_shared_only_with_a_redis_broker_and_when_asked():
    redis_broker = {"broker_url": f"{REDIS_URL}/0", "data_dir": "unused"}
    assert type(make_rate_limiter(Settings(**redis_broker))) is SharedRateLimiter
    assert type(make_rate_limiter(Settings(**redis_broker, rate_limit_shared=False))) is RateLimiter
    assert type(make_rate_limiter(Settings(broker_url="filesystem://", data_dir="unused"))) is RateLimiter


@pytest.mark.parametrize("per_minute", [1, 7, 60])
def test_the_shared_bucket_refills_like_the_in_process_one(per_minute):
    prefix = f"nas-test-{secrets.token_hex(4)}:"
    shared, local = _shared(per_minute, prefix), RateLimiter(per_minute)
    started = time.monotonic()
    for _ in range(per_minute):
        assert shared.acquire("p") == local.acquire("p") == 0.0
    expected = local.acquire("p")
    # The buckets refill while the loop runs (60 Redis round trips on a loaded machine take tens of ms): the wait
    # is one token's time less what has refilled since, and the shared bucket's, asked just after, agrees with it.
    refilled = time.monotonic() - started
    assert 60 / per_minute - refilled - 0.005 <= expected <= 60 / per_minute
    assert shared.acquire("p") == pytest.approx(expected, rel=0.01, abs=refilled + 0.005)
