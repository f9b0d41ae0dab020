"""The answer cache shared through Redis (contract §11), one AnswerCache per "replica".

Two caches over two Redis clients stand for two replicas; `fetch` stands for the department
and counts what reached it. The rules are the in-process cache's, across replicas: one
fetch for concurrent identical lookups, errors never kept, the last good answer standing
in marked refresh_failed (never an answer of today), and Redis failing costs no answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import datetime

import pytest
import redis

from adapters.answer_cache import AnswerCache, CacheSettings
from core.clock import CST
from core.records import Department, SubjectFacts
from core.sources import FailureKind, SourceError
from gateway.config_state import CacheConfig
from gateway.redis_cache import RedisAnswers, RedisBackend
from tests.redis_support import SERVER, closed_port, redis_prefix

CODE = "91110000MA01B2C34B"
OTHER = "91310115MA1K3YJ22L"
SETTINGS = CacheSettings(ttl_s=60, stale_ttl_s=3600)
NAMESPACE = "MARKET:MARKET_ENTITIES"


class FakeDepartment:
    """The department behind `fetch`: answers after `delay_s`, or fails, and counts."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []
        self.delay_s = 0.0
        self.failing: FailureKind | None = None
        self.name = "甲公司"

    async def fetch(self, codes: list[str]) -> Mapping[str, SubjectFacts | SourceError]:
        self.asked.append(codes)
        await asyncio.sleep(self.delay_s)
        if self.failing is not None:
            return {c: SourceError(Department.MARKET, self.failing, "down") for c in codes}
        now = datetime.now(CST)
        return {c: SubjectFacts(Department.MARKET, c, now, True, name=self.name) for c in codes}


@pytest.fixture
async def backends() -> AsyncIterator[tuple[RedisBackend, RedisBackend, str]]:
    with redis_prefix() as prefix:
        config = CacheConfig(SERVER, timeout_s=0.5, key_prefix=prefix)
        one, other = RedisBackend(config), RedisBackend(config)
        yield one, other, prefix
        await one.close()
        await other.close()


def _cache(backend: RedisBackend, settings: CacheSettings = SETTINGS) -> AnswerCache[SubjectFacts]:
    return AnswerCache[SubjectFacts](
        Department.MARKET,
        settings,
        timeout_s=2.0,
        shared=RedisAnswers(backend),
        namespace=NAMESPACE,
        kind=SubjectFacts,
    )


async def test_concurrent_lookups_on_two_replicas_fetch_once(
    backends: tuple[RedisBackend, RedisBackend, str],
) -> None:
    one, other, _ = backends
    department = FakeDepartment()
    department.delay_s = 0.3
    caches = [_cache(one), _cache(other)]
    results = await asyncio.gather(
        *(caches[i % 2].lookup([CODE, OTHER], department.fetch) for i in range(6))
    )
    assert len(department.asked) == 1
    for result in results:
        assert all(isinstance(v, SubjectFacts) and not v.stale for v in result.values())
        assert result[CODE] == results[0][CODE]
    # Later lookups on either replica: served, nothing asked.
    await caches[1].lookup([CODE], department.fetch)
    assert len(department.asked) == 1


async def test_a_failure_is_told_to_the_waiters_and_never_kept(
    backends: tuple[RedisBackend, RedisBackend, str],
) -> None:
    one, other, _ = backends
    department = FakeDepartment()
    department.delay_s = 0.2
    department.failing = FailureKind.RATE_LIMITED
    first, second = _cache(one), _cache(other)
    started = asyncio.get_running_loop().time()
    a, b = await asyncio.gather(
        first.lookup([CODE], department.fetch), second.lookup([CODE], department.fetch)
    )
    assert len(department.asked) == 1
    for result in (a, b):
        error = result[CODE]
        assert isinstance(error, SourceError) and error.kind is FailureKind.RATE_LIMITED
    # The waiter heard at once, not at its deadline.
    assert asyncio.get_running_loop().time() - started < 1.0
    # Nothing kept: the next lookup asks again.
    department.failing = None
    answer = (await second.lookup([CODE], department.fetch))[CODE]
    assert isinstance(answer, SubjectFacts)
    assert len(department.asked) == 2


async def test_another_replicas_last_good_answer_stands_in_marked_refresh_failed(
    backends: tuple[RedisBackend, RedisBackend, str],
) -> None:
    one, other, _ = backends
    department = FakeDepartment()
    short = CacheSettings(ttl_s=0.2, stale_ttl_s=60)
    good = (await _cache(one, short).lookup([CODE], department.fetch))[CODE]
    assert isinstance(good, SubjectFacts)
    await asyncio.sleep(0.3)
    department.failing = FailureKind.UNAVAILABLE
    stand_in = (await _cache(other, short).lookup([CODE], department.fetch))[CODE]
    assert isinstance(stand_in, SubjectFacts)
    # Shown as the department's earlier answer, but no answer of today (contract §3).
    assert stand_in.stale and stand_in.refresh_failed
    assert stand_in.as_of == good.as_of and stand_in.name == good.name


async def test_a_claim_left_by_a_stopped_replica_is_taken_over(
    backends: tuple[RedisBackend, RedisBackend, str],
) -> None:
    one, _, prefix = backends
    with redis.Redis.from_url(SERVER) as client:
        # A replica claimed the key and stopped: its claim runs out in 0.3 s.
        client.set(f"{prefix}answer:{NAMESPACE}:{CODE}:flight", "gone-replica", px=300)
    department = FakeDepartment()
    started = asyncio.get_running_loop().time()
    answer = (await _cache(one).lookup([CODE], department.fetch))[CODE]
    assert isinstance(answer, SubjectFacts)
    assert len(department.asked) == 1
    assert asyncio.get_running_loop().time() - started < 1.5


async def test_an_unreadable_entry_is_a_miss_and_is_overwritten(
    backends: tuple[RedisBackend, RedisBackend, str],
) -> None:
    one, other, prefix = backends
    key = f"{prefix}answer:{NAMESPACE}:{CODE}:fresh"
    with redis.Redis.from_url(SERVER) as client:
        client.set(key, b'{"v": 999}', px=60_000)
    department = FakeDepartment()
    answer = (await _cache(one).lookup([CODE], department.fetch))[CODE]
    assert isinstance(answer, SubjectFacts) and len(department.asked) == 1
    again = (await _cache(other).lookup([CODE], department.fetch))[CODE]
    assert again == answer and len(department.asked) == 1


async def test_redis_unreachable_costs_no_answer() -> None:
    with redis_prefix() as prefix:
        config = CacheConfig(f"redis://127.0.0.1:{closed_port()}/0", key_prefix=prefix)
        backend = RedisBackend(config)
        fell_back: list[str] = []
        backend.on_fallback = fell_back.append
        cache = _cache(backend)
        department = FakeDepartment()
        answer = (await cache.lookup([CODE], department.fetch))[CODE]
        assert isinstance(answer, SubjectFacts)
        # In-process from here: its own cache serves, its own single flight holds.
        assert (await cache.lookup([CODE], department.fetch))[CODE] == answer
        assert len(department.asked) == 1
        assert fell_back and set(fell_back) == {"answers"}
        await backend.close()
