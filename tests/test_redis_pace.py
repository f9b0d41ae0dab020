"""The departments' paces shared through Redis ([cache] url, contract §7 and §11).

Two backends in one process stand for two replicas: every booking is an atomic Lua script
on the real Redis, so whatever the interleaving, all of them together never book more than
the rate in any one-second window. With Redis unreachable a booking falls back to this
replica's share of the rate, and never fails.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import pytest

from adapters.http import Pace
from adapters.shared import SharedUnavailable
from gateway.config import RateConfig
from gateway.config_state import CacheConfig
from gateway.redis_budget import WINDOW_S, RedisPace, RedisRates
from gateway.redis_cache import PACE, RATE_LIMIT, RedisBackend
from tests.redis_support import SERVER, closed_port, redis_keys, redis_prefix


def _busiest(times: list[float], window: float = 1.0) -> int:
    """The most send times in any window of this length (starting at a send)."""
    ordered = sorted(times)
    return max(sum(1 for t in ordered if start <= t < start + window) for start in ordered)


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[RedisBackend, RedisBackend]]:
    with redis_prefix() as prefix:
        config = CacheConfig(SERVER, replicas=2, timeout_s=0.5, key_prefix=prefix)
        backends = (RedisBackend(config), RedisBackend(config))
        yield backends
        for backend in backends:
            await backend.close()


async def test_two_replicas_book_no_second_with_more_than_the_rate(
    replicas: tuple[RedisBackend, RedisBackend],
) -> None:
    paces = [Pace("courts", 50, 4, RedisPace(backend)) for backend in replicas]

    async def lookups(pace: Pace, count: int) -> list[float]:
        sent: list[float] = []
        for _ in range(count):
            sent += await pace.book(4, math.inf) or []
        return sent

    # 2 × 25 lookups of four calls each, interleaved: 200 calls.
    both = await asyncio.gather(lookups(paces[0], 25), lookups(paces[1], 25))
    sent = both[0] + both[1]
    assert len(sent) == 200
    assert _busiest(sent) <= 50
    # The rate is used, not wasted: 200 calls within about 4 windows.
    assert max(sent) - min(sent) < 4 * WINDOW_S + 0.2
    # A lookup's four calls still leave together: the first lookup booked, of either replica
    # (the burst is the deployment's, so the other replica's first lookup may come after it).
    first = sorted(sent)[:4]
    assert first[3] - first[0] < 0.01


async def test_a_booking_past_the_deadline_is_refused_and_takes_nothing(
    replicas: tuple[RedisBackend, RedisBackend],
) -> None:
    one, other = (Pace("courts", 50, 4, RedisPace(backend)) for backend in replicas)
    now = asyncio.get_running_loop().time()
    assert len(await one.book(50, math.inf) or []) == 50  # this second is taken
    # 4 more cannot go out within half a second: refused, on either replica...
    assert await other.book(4, now + 0.5) is None
    assert await one.book(4, now + 0.5) is None
    # ...and the refusals booked nothing: the next second is still free.
    later = await other.book(50, now + 2.5)
    assert later is not None and len(later) == 50
    assert min(later) >= now + 0.9


async def test_background_work_has_its_own_deployment_wide_share(
    replicas: tuple[RedisBackend, RedisBackend],
) -> None:
    # [background] share 0.5 of 50/s: 25 a second for both replicas together.
    paces = [Pace("courts:background", 25, 1, RedisPace(backend)) for backend in replicas]
    sent: list[float] = []
    for _ in range(30):
        for pace in paces:
            sent += await pace.book(1, math.inf) or []
    assert _busiest(sent) <= 25


async def test_unreachable_redis_falls_back_to_this_replicas_share() -> None:
    with redis_prefix() as prefix:
        url = f"redis://127.0.0.1:{closed_port()}/0"
        backend = RedisBackend(CacheConfig(url, replicas=2, key_prefix=prefix))
        fell_back: list[str] = []
        backend.on_fallback = fell_back.append
        shared = RedisPace(backend)
        with pytest.raises(SharedUnavailable):
            await shared.book("courts", 50, 4, 4, math.inf)
        pace = Pace("courts", 50, 4, shared)
        started = asyncio.get_running_loop().time()
        sent: list[float] = []
        for _ in range(15):
            sent += await pace.book(4, math.inf) or []
        # 60 calls at 25/s (50 / 2 replicas): never more than 25 in a second, no error.
        assert len(sent) == 60
        assert _busiest(sent) <= 25
        assert asyncio.get_running_loop().time() - started < 1.0  # never waited on Redis
        assert fell_back and set(fell_back) == {PACE}
        assert not backend.up
        assert redis_keys(prefix) == []
        await backend.close()


async def test_client_buckets_are_one_for_all_replicas(
    replicas: tuple[RedisBackend, RedisBackend],
) -> None:
    rates = [RedisRates(backend) for backend in replicas]
    rate = RateConfig(rate_per_s=0.01, burst=3)
    waits = [await rates[i % 2].wait_s("client:bank", rate) for i in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert all(w > 1 for w in waits[3:])
    assert await rates[0].wait_s("client:partner", rate) == 0.0


async def test_an_unreachable_bucket_is_a_counted_fallback() -> None:
    with redis_prefix() as prefix:
        url = f"redis://127.0.0.1:{closed_port()}/0"
        backend = RedisBackend(CacheConfig(url, key_prefix=prefix))
        fell_back: list[str] = []
        backend.on_fallback = fell_back.append
        with pytest.raises(SharedUnavailable):
            await RedisRates(backend).wait_s("client:bank", RateConfig())
        # Skipped while down: the next call falls back at once, without a connection.
        with pytest.raises(SharedUnavailable):
            await RedisRates(backend).wait_s("client:bank", RateConfig())
        assert fell_back == [RATE_LIMIT, RATE_LIMIT]
        assert await backend.probe() is False
        await backend.close()
