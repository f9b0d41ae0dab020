"""Retries, circuit breaker, answer cache and stale answers, against the sandbox's fault knobs.

Every department is reached over real HTTP; the sandbox's request counters and arrival
times show what went upstream.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from adapters.base import Adapter, SourceConfig
from adapters.deadline import request_budget
from adapters.registry import build_adapter
from adapters.water import WaterAdapter
from core.clock import Clock
from core.records import PersonFacts, SubjectFacts
from core.sources import FailureKind, SourceError, SourceState
from gateway.app import create_app
from sandbox.model import Dataset
from sandbox.runner import SandboxServers, SandboxThread
from tests.conftest import TODAY, gateway_config
from tests.sandbox_support import COMPANY_A, COMPANY_C, PERSON_1, build_dataset
from tests.servers import GatewayServer, GraphQLClient

CLOCK = Clock(TODAY)
# The departments the gateway calls per lookup; water is answered from its own snapshot.
LIVE = ("courts", "market", "tax")
# Upstream calls of one uncached subject lookup: courts 失信 and 限制消费 under the USCC and
# the organisation code (one page each here), market's four lists, tax's two operations.
ONE_LOOKUP = {"courts": 4, "market": 4, "tax": 2}
# Person lookups: courts 失信 (23 records, two pages) and 限制消费; market 人员任职.
ONE_PERSON_LOOKUP = {"courts": 3, "market": 1}
MakeAdapter = Callable[..., Awaitable[Adapter]]


@pytest.fixture
async def make(
    servers: SandboxServers, session: aiohttp.ClientSession, reset_sandbox_faults: None
) -> AsyncIterator[MakeAdapter]:
    """Builds and starts an adapter as the runtime does, cache included; closes it after.

    The sandbox's knobs and counters are reset after the test (conftest.py).
    """
    made: list[Adapter] = []

    async def factory(
        name: str, timeout_s: float = 2.0, max_concurrency: int = 8, **options: object
    ) -> Adapter:
        if name == "courts":
            options.setdefault("max_rps", 10_000)
        config = SourceConfig(
            name,
            servers.urls[name],
            timeout_s=timeout_s,
            max_concurrency=max_concurrency,
            options=options,
        )
        adapter = build_adapter(config, session, CLOCK)
        made.append(adapter)
        await adapter.start()
        return adapter

    yield factory
    for adapter in made:
        await adapter.close()


def calls(servers: SandboxServers, name: str) -> int:
    """HTTP requests the department received since the counters were last reset."""
    # Arrivals rather than the counters: tax also counts each SOAP operation by name.
    return len(servers.faults[name].arrivals)


async def facts_of(adapter: Adapter, code: str = COMPANY_A) -> SubjectFacts:
    """One subject's facts; fails the test when the department's answer is an error."""
    result = (await adapter.lookup_subjects([code]))[code]
    assert isinstance(result, SubjectFacts), result
    return result


async def error_of(adapter: Adapter, code: str = COMPANY_A) -> SourceError:
    """One subject's error; fails the test when the department answered."""
    result = (await adapter.lookup_subjects([code]))[code]
    assert isinstance(result, SourceError), result
    return result


# --- retries ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LIVE)
async def test_a_burst_of_5xx_then_recovery_is_answered(
    name: str, make: MakeAdapter, servers: SandboxServers
) -> None:
    servers.faults[name].update({"error_burst": 2})
    facts = await facts_of(await make(name))
    assert facts.known and not facts.stale
    # The two failed calls were made again: two requests more than a plain lookup.
    assert calls(servers, name) == ONE_LOOKUP[name] + 2


@pytest.mark.parametrize("name", LIVE)
async def test_429_is_retried_no_earlier_than_retry_after(
    name: str, make: MakeAdapter, servers: SandboxServers
) -> None:
    servers.faults[name].update({"throttle_burst": 1, "retry_after_s": 1})
    facts = await facts_of(await make(name, timeout_s=3.0))
    assert facts.known
    arrivals = list(servers.faults[name].arrivals)
    assert len(arrivals) == ONE_LOOKUP[name] + 1
    # The first request was the one answered 429; the last is its retry, of the same call,
    # sent after the Retry-After had passed.
    (throttled_at, throttled), (retried_at, retried) = arrivals[0], arrivals[-1]
    assert retried == throttled
    assert retried_at - throttled_at >= 1.0


@pytest.mark.parametrize("name", LIVE)
async def test_a_retry_after_beyond_the_budget_is_not_waited_for(
    name: str, make: MakeAdapter, servers: SandboxServers
) -> None:
    servers.faults[name].update({"throttle_rate": 1.0, "retry_after_s": 30})
    adapter = await make(name, timeout_s=1.0)
    started = time.monotonic()
    error = await error_of(adapter)
    assert error.kind is FailureKind.RATE_LIMITED and error.retry_after_s == 30.0
    # No retry, as it could not finish in time (a call's first 429 ends the lookup, so
    # its other calls may not have gone out at all).
    sent = calls(servers, name)
    assert 1 <= sent <= ONE_LOOKUP[name]
    # Later lookups respect the department's pause without asking it again.
    assert (await error_of(adapter)).kind is FailureKind.RATE_LIMITED
    assert calls(servers, name) == sent
    assert time.monotonic() - started < 1.0 + 1.0


@pytest.mark.parametrize("name", LIVE)
async def test_a_hang_is_retried_and_still_answered_within_timeout_plus_one_second(
    name: str, make: MakeAdapter, servers: SandboxServers
) -> None:
    servers.faults[name].update({"hang": True})
    adapter = await make(name, timeout_s=0.6, attempt_timeout_s=0.2, retries=3)
    started = time.monotonic()
    error = await error_of(adapter)
    assert time.monotonic() - started < 0.6 + 1.0
    assert error.kind is FailureKind.TIMEOUT
    # Each call timed out after 0.2 s and went out again within the budget.
    assert calls(servers, name) > ONE_LOOKUP[name]


@pytest.mark.parametrize("name", LIVE)
async def test_a_definite_answer_is_not_retried_and_keeps_the_breaker_closed(
    name: str, make: MakeAdapter, servers: SandboxServers
) -> None:
    servers.faults[name].update({"garbage": True})
    adapter = await make(name, breaker_failures=1, cache_ttl_s=0)
    for _ in range(2):
        servers.reset_counts()
        assert (await error_of(adapter)).kind is FailureKind.BAD_PAYLOAD
        # At most one request per call, and the second lookup still went out: an answer
        # that is not what was asked for would come back the same, and the department is up.
        assert 1 <= calls(servers, name) <= ONE_LOOKUP[name]


async def test_tax_errors_inside_http_200_are_not_retried(
    make: MakeAdapter, servers: SandboxServers
) -> None:
    servers.faults["tax"].update({"fhdm_error_rate": 1.0})
    error = await error_of(await make("tax"))
    assert "fhdm" in error.message
    assert 1 <= calls(servers, "tax") <= ONE_LOOKUP["tax"]


@pytest.mark.parametrize("name", LIVE)
async def test_the_concurrency_bound_holds_for_retries_and_health_probes(
    name: str, make: MakeAdapter, servers: SandboxServers
) -> None:
    servers.faults[name].update({"latency_ms": 100, "error_burst": 2})
    adapter = await make(name, timeout_s=5.0, max_concurrency=1)
    lookup, health = await asyncio.gather(adapter.lookup_subjects([COMPANY_A]), adapter.health())
    assert isinstance(lookup[COMPANY_A], SubjectFacts) and health.state is SourceState.OK
    arrivals = [at for at, _ in servers.faults[name].arrivals]
    assert len(arrivals) == ONE_LOOKUP[name] + 1 + 2
    # One slot: every request, retries and the probe included, went out only after the
    # previous one was answered (each answer takes the 100 ms latency).
    assert all(later - earlier >= 0.09 for earlier, later in itertools.pairwise(arrivals))


# --- circuit breaker ----------------------------------------------------------------------


@pytest.mark.parametrize("name", LIVE)
async def test_the_breaker_opens_fails_fast_probes_and_closes(
    name: str, make: MakeAdapter, servers: SandboxServers
) -> None:
    # health_ttl_s 0: each health() below is a probe of its own, to watch the breaker.
    adapter = await make(
        name, retries=0, breaker_failures=2, breaker_cooldown_s=0.2, health_ttl_s=0
    )
    servers.faults[name].update({"down": True})
    # Every lookup fails at least one call (the first failure ends it), so two calls have
    # failed in a row by the second lookup: the breaker is open for the third.
    messages = [(await error_of(adapter)).message for _ in range(3)]
    assert messages[0] == "HTTP 503"
    assert messages[2].startswith("circuit breaker open since ")
    # Nothing goes upstream while it is open, lookups and health alike, and the state is
    # visible to operators.
    servers.reset_counts()
    fast = await error_of(adapter, COMPANY_C)
    assert fast.kind is FailureKind.UNAVAILABLE
    assert fast.message.startswith("circuit breaker open since ")
    assert fast.message.endswith("last failure: HTTP 503")
    health = await adapter.health()
    assert health.state is SourceState.UNAVAILABLE
    assert health.message is not None and health.message.startswith("circuit breaker open")
    assert calls(servers, name) == 0
    # After the cool-down one probe goes out; the department is still down: open again.
    await asyncio.sleep(0.25)
    assert (await error_of(adapter)).kind is FailureKind.UNAVAILABLE
    assert calls(servers, name) == 1
    assert (await error_of(adapter)).message.startswith("circuit breaker open since ")
    assert calls(servers, name) == 1
    # The department is back: after the cool-down the probe succeeds and the breaker closes.
    servers.faults[name].update({"down": False})
    await asyncio.sleep(0.25)
    assert (await facts_of(adapter)).known
    assert (await adapter.health()).state is SourceState.OK


@pytest.mark.parametrize("name", LIVE)
async def test_a_connection_refused_department_opens_the_breaker(
    name: str, make: MakeAdapter, servers: SandboxServers
) -> None:
    await servers.stop_department(name)
    try:
        adapter = await make(name, breaker_failures=3)
        messages = [(await error_of(adapter)).message for _ in range(4)]
        assert messages[0] == "connection failed"
        assert messages[3].startswith("circuit breaker open since ")
    finally:
        await servers.start_department(name)


# --- cache and single flight --------------------------------------------------------------


@pytest.mark.parametrize("name", LIVE)
async def test_concurrent_identical_lookups_make_one_upstream_lookup(
    name: str, make: MakeAdapter, servers: SandboxServers
) -> None:
    servers.faults[name].update({"latency_ms": 100})
    adapter = await make(name)
    results = await asyncio.gather(*(adapter.lookup_subjects([COMPANY_A]) for _ in range(20)))
    assert calls(servers, name) == ONE_LOOKUP[name]
    facts = {id(r[COMPANY_A]) for r in results}
    assert len(facts) == 1 and isinstance(results[0][COMPANY_A], SubjectFacts)


@pytest.mark.parametrize("name", LIVE)
async def test_a_repeated_lookup_within_the_ttl_makes_no_upstream_call(
    name: str, make: MakeAdapter, servers: SandboxServers
) -> None:
    adapter = await make(name)
    first = await facts_of(adapter)
    servers.reset_counts()
    again = await facts_of(adapter)
    assert again == first  # the same answer, with the as_of of when it was fetched
    assert calls(servers, name) == 0
    # A batch: the cached code from the cache, only the other one asked upstream.
    results = await adapter.lookup_subjects([COMPANY_A, COMPANY_C])
    assert results[COMPANY_A] == first and isinstance(results[COMPANY_C], SubjectFacts)
    assert calls(servers, name) == ONE_LOOKUP[name]


@pytest.mark.parametrize("name", LIVE)
async def test_an_error_is_never_cached(
    name: str, make: MakeAdapter, servers: SandboxServers
) -> None:
    adapter = await make(name, retries=0)
    servers.faults[name].update({"down": True})
    await error_of(adapter)
    servers.faults[name].update({"down": False})
    assert (await facts_of(adapter)).known  # asked again at once, not after a TTL


@pytest.mark.parametrize("name", ["courts", "market"])
async def test_person_lookups_are_cached_by_id_number(
    name: str, make: MakeAdapter, servers: SandboxServers
) -> None:
    adapter = await make(name)
    results = await asyncio.gather(*(adapter.lookup_persons([PERSON_1]) for _ in range(5)))
    assert all(isinstance(r[PERSON_1], PersonFacts) for r in results)
    await adapter.lookup_persons([PERSON_1])
    assert calls(servers, name) == ONE_PERSON_LOOKUP[name]


# --- the last good answer -----------------------------------------------------------------


@pytest.mark.parametrize("name", LIVE)
async def test_the_last_good_answer_is_served_stale_when_a_refresh_fails(
    name: str, make: MakeAdapter, servers: SandboxServers
) -> None:
    # No breaker here: the department's return below must be seen at once.
    adapter = await make(name, cache_ttl_s=0.2, stale_ttl_s=30, breaker_failures=0)
    fresh = await facts_of(adapter)
    servers.faults[name].update({"down": True})
    await asyncio.sleep(0.3)  # past the TTL: the next lookup asks the department
    stale = await facts_of(adapter)
    assert calls(servers, name) > ONE_LOOKUP[name]
    # The department's own earlier answer, with its own as_of, marked stale.
    assert stale.stale and stale == replace(fresh, stale=True, refresh_failed=True)
    # A code never answered before has no last good answer: the failure stands.
    assert (await error_of(adapter, COMPANY_C)).kind is FailureKind.UNAVAILABLE
    # Back up: a fresh answer again.
    servers.faults[name].update({"down": False})
    assert not (await facts_of(adapter)).stale


async def test_without_a_stale_store_a_failed_refresh_is_an_error(
    make: MakeAdapter, servers: SandboxServers
) -> None:
    adapter = await make("market", cache_ttl_s=0.2, stale_ttl_s=0)
    await facts_of(adapter)
    servers.faults["market"].update({"down": True})
    await asyncio.sleep(0.3)
    assert (await error_of(adapter)).kind is FailureKind.UNAVAILABLE


def test_stale_ttl_shorter_than_the_cache_ttl_is_refused(session: aiohttp.ClientSession) -> None:
    config = SourceConfig(
        "market", "http://127.0.0.1:9", options={"cache_ttl_s": 60, "stale_ttl_s": 10}
    )
    with pytest.raises(ValueError, match="stale_ttl_s"):
        build_adapter(config, session, CLOCK)


async def test_water_is_answered_from_its_snapshot_never_from_a_cache(
    make: MakeAdapter, servers: SandboxServers
) -> None:
    water = await make("water", cache_ttl_s=3600)
    assert isinstance(water, WaterAdapter)
    assert (await facts_of(water)).water_grade is not None
    dataset = build_dataset()
    dataset.water_grades = [g for g in dataset.water_grades if g.uscc != COMPANY_A]
    servers.replace_dataset(dataset)
    try:
        await water.sync_now()
        # The new snapshot answers at once: no cache in front of it.
        assert (await facts_of(water)).water_grade is None
        # A failed re-sync keeps the snapshot, marked stale by water itself.
        servers.faults["water"].update({"rebuilding": True})
        await water.sync_now()
        stale = await facts_of(water)
        assert stale.stale and stale.water_grade is None
    finally:
        servers.replace_dataset(build_dataset())


# --- through the gateway ------------------------------------------------------------------

SUBJECT = """
query($uscc: String!) {
  subject(uscc: $uscc) {
    records { kind department }
    jointPunishment { status complete missingSources }
    sources { department state asOf message }
  }
}"""
SOURCES = "{ sources { department state asOf message } }"


def _gateway(sandbox: SandboxThread, **sources: dict[str, Any]) -> GatewayServer:
    return GatewayServer(create_app(gateway_config(sandbox.urls, **sources), Clock(TODAY))).start()


def _states(subject: Any) -> dict[str, dict[str, Any]]:
    return {s["department"]: s for s in subject["sources"]}


def test_a_stale_source_keeps_its_as_of_and_its_listing(
    faults: SandboxThread, dataset: Dataset
) -> None:
    server = _gateway(faults, market={"cache_ttl_s": 0.3, "stale_ttl_s": 60})
    try:
        client = GraphQLClient(server.url)
        punished = dataset.examples["serious_illegal.active"]
        before = client.query(SUBJECT, {"uscc": punished})["data"]["subject"]
        assert _states(before)["MARKET"]["state"] == "OK"
        was_clear = dataset.examples["clean.plain"]
        clear_before = client.query(SUBJECT, {"uscc": was_clear})["data"]["subject"]
        assert clear_before["jointPunishment"]["status"] == "CLEAR"
        faults.set_faults("market", down=True)
        time.sleep(0.4)
        body = client.query(SUBJECT, {"uscc": punished})
        after = body["data"]["subject"]
        market = _states(after)["MARKET"]
        assert market["state"] == "STALE"
        assert market["asOf"] == _states(before)["MARKET"]["asOf"]
        # contract §6: a STALE source always says why, in our own words.
        assert market["message"] == (
            "not answered now: the last good answer is shown, "
            "and it does not count as an answer of today"
        )
        # Its listing is market's: still known from the last good answer, still PUNISHED;
        # but market did not answer now, so the answer is incomplete (contract §3).
        assert {"kind": "SERIOUS_ILLEGAL", "department": "MARKET"} in after["records"]
        assert after["jointPunishment"] == {
            "status": "PUNISHED",
            "complete": False,
            "missingSources": ["MARKET"],
        }
        assert [e["extensions"].get("department") for e in body["errors"]] == ["MARKET"]
        # A clear subject served from market's last good answer: shown STALE, yet never
        # CLEAR, since a listing made meanwhile would be missing.
        kept = client.query(SUBJECT, {"uscc": was_clear})["data"]["subject"]
        assert _states(kept)["MARKET"]["state"] == "STALE"
        assert kept["jointPunishment"] == {
            "status": "INCOMPLETE",
            "complete": False,
            "missingSources": ["MARKET"],
        }
        # A subject market never answered for: missing, never CLEAR.
        clear = client.query(SUBJECT, {"uscc": dataset.examples["clean.with_grade_a"]})
        subject = clear["data"]["subject"]
        assert _states(subject)["MARKET"]["state"] == "UNAVAILABLE"
        assert subject["jointPunishment"]["status"] == "INCOMPLETE"
        assert subject["jointPunishment"]["missingSources"] == ["MARKET"]
        assert [e["extensions"].get("department") for e in clear["errors"]] == ["MARKET"]
    finally:
        server.stop()


def test_an_open_breaker_is_shown_in_sources_and_closes_when_the_department_is_back(
    faults: SandboxThread, dataset: Dataset
) -> None:
    market_knobs = {"retries": 0, "breaker_failures": 2, "breaker_cooldown_s": 1.0}
    server = _gateway(faults, market=market_knobs)
    try:
        client = GraphQLClient(server.url)
        uscc = dataset.examples["clean.plain"]
        faults.set_faults("market", down=True)
        # Each query fails at least one market call: open by the third query.
        for _ in range(3):
            subject = client.query(SUBJECT, {"uscc": uscc})["data"]["subject"]
        assert _states(subject)["MARKET"]["message"].startswith("UNAVAILABLE: circuit breaker")
        faults.reset_counts()
        subject = client.query(SUBJECT, {"uscc": uscc})["data"]["subject"]
        assert _states(subject)["MARKET"]["state"] == "UNAVAILABLE"
        market = _states(client.query(SOURCES)["data"])["MARKET"]
        assert market["state"] == "UNAVAILABLE"
        assert market["message"].startswith("circuit breaker open since ")
        assert faults.request_counts("market") == {}
        faults.clear_faults("market")
        time.sleep(1.1)
        subject = client.query(SUBJECT, {"uscc": uscc})["data"]["subject"]
        assert _states(subject)["MARKET"]["state"] == "OK"
        assert _states(client.query(SOURCES)["data"])["MARKET"]["message"] is None
    finally:
        server.stop()


def test_a_hung_department_never_holds_the_answer_past_timeout_plus_one_second(
    faults: SandboxThread, dataset: Dataset
) -> None:
    server = _gateway(faults, tax={"timeout_s": 0.5})
    try:
        faults.set_faults("tax", hang=True)
        started = time.monotonic()
        body = GraphQLClient(server.url).query(SUBJECT, {"uscc": dataset.examples["clean.plain"]})
        assert time.monotonic() - started < 0.5 + 1.0
        tax = _states(body["data"]["subject"])["TAX"]
        assert tax["state"] == "UNAVAILABLE" and "TIMEOUT" in tax["message"]
    finally:
        server.stop()


def test_a_stale_water_snapshot_says_why(faults: SandboxThread, dataset: Dataset) -> None:
    server = _gateway(faults, water={"sync_interval_s": 0.2})
    try:
        client = GraphQLClient(server.url)
        faults.set_faults("water", rebuilding=True)  # 503 while the files are rebuilt
        time.sleep(0.8)
        body = client.query(SUBJECT, {"uscc": dataset.examples["water.grade_aaa"]})
        water = _states(body["data"]["subject"])["WATER"]
        assert water["state"] == "STALE"
        # contract §6: a STALE source always says why, in our own words.
        assert water["message"] == "the latest sync failed: an earlier snapshot is served"
    finally:
        server.stop()


def test_a_water_snapshot_older_than_max_age_counts_as_missing(
    sandbox: SandboxThread, dataset: Dataset
) -> None:
    # contract §6 (2026-11-30): the files are rebuilt daily; a snapshot older than
    # max_age_s may miss a listing made since, so it is no answer of today.
    server = _gateway(sandbox, water={"max_age_s": 0.5, "sync_interval_s": 3600})
    try:
        client = GraphQLClient(server.url)
        clean = dataset.examples["clean.plain"]
        fresh = client.query(SUBJECT, {"uscc": clean})["data"]["subject"]
        assert fresh["jointPunishment"]["status"] == "CLEAR"
        time.sleep(1.0)
        body = client.query(SUBJECT, {"uscc": clean})
        old = body["data"]["subject"]
        assert old["jointPunishment"] == {
            "status": "INCOMPLETE",
            "complete": False,
            "missingSources": ["WATER"],
        }
        water = _states(old)["WATER"]
        assert water["state"] == "STALE" and water["message"]
        assert [e["extensions"] for e in body["errors"]] == [
            {"code": "SOURCE_UNAVAILABLE", "department": "WATER"}
        ]
        # A listing the old snapshot holds still punishes, with the answer incomplete.
        listed = client.query(SUBJECT, {"uscc": dataset.examples["water.blacklist_active"]})
        assert listed["data"]["subject"]["jointPunishment"] == {
            "status": "PUNISHED",
            "complete": False,
            "missingSources": ["WATER"],
        }
        health = client.query(SOURCES)["data"]["sources"]
        assert _states({"sources": health})["WATER"]["state"] == "STALE"
        assert "older than max_age_s" in _states({"sources": health})["WATER"]["message"]
    finally:
        server.stop()


async def test_a_lookup_joining_another_requests_fetch_keeps_its_own_deadline(
    make: MakeAdapter, servers: SandboxServers
) -> None:
    # contract §6: one deadline per request. A request that joins a fetch another,
    # later request started must not wait on that request's longer budget.
    adapter = await make("market", timeout_s=2.0, stale_ttl_s=0, cache_ttl_s=60)
    servers.faults["market"].update({"hang": True})
    loop = asyncio.get_running_loop()

    async def lookup(started: float) -> tuple[float, SourceError | SubjectFacts]:
        with request_budget(started):
            result = (await adapter.lookup_subjects([COMPANY_A]))[COMPANY_A]
        return loop.time(), result

    fresh = asyncio.create_task(lookup(loop.time()))  # starts the fetch, budget 2 s
    await asyncio.sleep(0.05)
    began = loop.time()
    ended, result = await lookup(began - 1.5)  # joins it with 0.5 s of its budget left
    assert isinstance(result, SourceError) and result.kind is FailureKind.TIMEOUT
    assert ended - began < 0.5 + 0.4
    assert not fresh.done()  # the other request still waits on its own budget
    later, other = await fresh
    assert isinstance(other, SourceError) and later - began > 1.5
