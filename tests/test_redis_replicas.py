"""Several replicas sharing [cache] url (contract §11), end to end over real HTTP and Redis.

Two gateways (two apps, as two replicas would be) over the session sandbox share one Redis
under a key prefix of the test's own: answers and single flight, the courts' 50 requests/s,
clients' rate limits. The sandbox counts what reached the departments. With Redis gone, at
start or in the middle, every query is still answered, and /readyz and /metrics say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from gateway.readiness import KEPT_S
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.conftest import GatewayFactory
from tests.redis_support import TcpProxy, cache_table, closed_port, redis_keys, redis_prefix
from tests.servers import KEYS, GatewayServer, GraphQLClient
from tests.test_metrics import Samples, scrape, value

LIVE = ("courts", "market", "tax")
# The answer cache on (the other modules' gateways switch it off), no breaker carried over.
CACHED = {"cache_ttl_s": 60, "stale_ttl_s": 3600, "health_ttl_s": 0, "breaker_failures": 0}
SUBJECT = """
query($uscc: String!) {
  subject(uscc: $uscc) {
    name
    records { id kind department }
    jointPunishment { status complete missingSources }
    sources { department state asOf message }
  }
}"""
BATCH = """
query($usccs: [String!]!) {
  subjects(usccs: $usccs) {
    uscc
    subject { jointPunishment { status complete missingSources } }
    error { code }
  }
}"""
CHEAP = "{ measures { code } }"
DEGRADED = "unreachable, in-process fallback"


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_prefix() as name:
        yield name


def _pair(
    make_gateway: GatewayFactory,
    cache: dict[str, Any],
    sources: dict[str, dict[str, Any]] | None = None,
    **overrides: Any,
) -> tuple[GatewayServer, GatewayServer]:
    """Two replicas sharing `cache`; the live departments cached unless `sources` says."""
    knobs = {name: {**CACHED, **(sources or {}).get(name, {})} for name in LIVE}
    return (
        make_gateway(tables={"cache": cache}, **knobs, **overrides),
        make_gateway(tables={"cache": cache}, **knobs, **overrides),
    )


def _calls(sandbox: SandboxThread) -> dict[str, int]:
    return {name: len(sandbox.request_arrivals(name)) for name in LIVE}


def _subject(server: GatewayServer, uscc: str) -> Any:
    body = GraphQLClient(server.url).query(SUBJECT, {"uscc": uscc})
    assert "data" in body and body["data"]["subject"] is not None, body
    return body


def _live(subject: Any) -> Any:
    """What two replicas must answer alike: water is each one's own snapshot."""
    sources = [s for s in subject["sources"] if s["department"] != "WATER"]
    return {**subject, "sources": sources}


def _states(subject: Any) -> dict[str, dict[str, Any]]:
    return {s["department"]: s for s in subject["sources"]}


def _complete(body: Any) -> None:
    assert "errors" not in body, body["errors"]
    point = body["data"]["subject"]["jointPunishment"]
    assert point["complete"] is True and point["missingSources"] == [], point


def _readyz(server: GatewayServer) -> httpx.Response:
    time.sleep(KEPT_S + 0.05)  # a report made now, not the one kept
    return httpx.get(f"{server.url}/readyz", timeout=10)


def _until(condition: Callable[[], bool], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.1)


def _fallbacks(samples: Samples, what: str) -> float:
    return value(samples, "credit_gateway_cache_fallbacks_total", what=what)


# --- answers and single flight -------------------------------------------------------------


def test_a_subject_asked_on_both_replicas_is_fetched_once(
    make_gateway: GatewayFactory, sandbox: SandboxThread, dataset: Dataset, prefix: str
) -> None:
    one, other = _pair(make_gateway, cache_table(prefix, timeout_s=1.0))
    uscc = dataset.examples["stitched.all_departments"]
    sandbox.reset_counts()
    first = _subject(one, uscc)
    _complete(first)
    once = _calls(sandbox)
    assert all(once[name] > 0 for name in LIVE), once
    second = _subject(other, uscc)
    # Within cache_ttl_s the other replica asks no department: it serves the first's answer.
    assert _calls(sandbox) == once
    assert _live(second["data"]["subject"]) == _live(first["data"]["subject"])
    # And the first replica again, from its own memory or Redis: no call either.
    _subject(one, uscc)
    assert _calls(sandbox) == once
    keys = redis_keys(prefix)
    for part in ("COURTS:COURTS", "MARKET:MARKET_ENTITIES", "TAX:TAX_GRADES"):
        assert f"{prefix}answer:{part}:{uscc}:fresh" in keys
        assert f"{prefix}answer:{part}:{uscc}:good" in keys
    # Claims are released once the answer is in; persons never reach Redis.
    assert not [k for k in keys if k.endswith(":flight")]
    assert all(":answer:" not in k or uscc in k for k in keys)


def test_concurrent_identical_lookups_on_both_replicas_make_one_upstream_call(
    make_gateway: GatewayFactory, faults: SandboxThread, dataset: Dataset, prefix: str
) -> None:
    one, other = _pair(make_gateway, cache_table(prefix, timeout_s=1.0))
    reference = dataset.examples["clean.with_grade_a"]
    uscc = dataset.examples["clean.plain"]
    # What one lookup of such a subject costs, asked alone.
    faults.reset_counts()
    _complete(_subject(one, reference))
    alone = _calls(faults)
    for name in LIVE:
        faults.set_faults(name, latency_ms=400)  # long enough for all requests to overlap
    faults.reset_counts()
    servers = [one, other] * 4
    with ThreadPoolExecutor(len(servers)) as pool:
        bodies = list(pool.map(lambda server: _subject(server, uscc), servers))
    assert _calls(faults) == alone
    for body in bodies:
        _complete(body)
        assert _live(body["data"]["subject"]) == _live(bodies[0]["data"]["subject"])


def test_the_last_good_answer_of_any_replica_stands_in_and_is_never_clear(
    make_gateway: GatewayFactory, faults: SandboxThread, dataset: Dataset, prefix: str
) -> None:
    market = {"cache_ttl_s": 0.5, "stale_ttl_s": 60, "retries": 0}
    one, other = _pair(make_gateway, cache_table(prefix, timeout_s=1.0), {"market": market})
    punished = dataset.examples["serious_illegal.active"]
    clear = dataset.examples["clean.plain"]
    before = _subject(one, punished)["data"]["subject"]
    assert _subject(one, clear)["data"]["subject"]["jointPunishment"]["status"] == "CLEAR"
    time.sleep(0.6)  # past cache_ttl_s: the next lookup asks market again
    faults.set_faults("market", down=True)
    # The other replica never asked market about these: it stands in with the first's.
    after = _subject(other, punished)["data"]["subject"]
    assert _states(after)["MARKET"]["state"] == "STALE"
    assert _states(after)["MARKET"]["asOf"] == _states(before)["MARKET"]["asOf"]
    # Its listing is still known from the last good answer: still PUNISHED, incomplete.
    assert any(r["kind"] == "SERIOUS_ILLEGAL" for r in after["records"]), after["records"]
    assert after["jointPunishment"] == {
        "status": "PUNISHED",
        "complete": False,
        "missingSources": ["MARKET"],
    }
    kept = _subject(other, clear)["data"]["subject"]
    assert _states(kept)["MARKET"]["state"] == "STALE"
    # contract §3: a stand-in is no answer of today, whichever replica kept it.
    assert kept["jointPunishment"] == {
        "status": "INCOMPLETE",
        "complete": False,
        "missingSources": ["MARKET"],
    }


# --- budgets -----------------------------------------------------------------------------


def _busiest(times: list[float], window: float = 1.0) -> int:
    ordered = sorted(times)
    return max(sum(1 for t in ordered if start <= t < start + window) for start in ordered)


def test_the_courts_rate_holds_for_both_replicas_together(
    make_gateway: GatewayFactory, faults: SandboxThread, dataset: Dataset, prefix: str
) -> None:
    # The courts' documented 50 requests/s, for the sandbox and for each gateway; no retry
    # could hide a 429.
    faults.set_faults("courts", rate_limit_rps=50)
    courts = {"max_rps": 50, "timeout_s": 10.0, "retries": 0}
    one, other = _pair(make_gateway, cache_table(prefix, timeout_s=1.0), {"courts": courts})
    codes = [company.uscc for company in dataset.companies[:40]]
    faults.reset_counts()

    def batch(job: tuple[GatewayServer, list[str]]) -> Any:
        server, usccs = job
        return GraphQLClient(server.url, KEYS["partner"]).query(
            BATCH, {"usccs": usccs}, timeout_s=60
        )

    with ThreadPoolExecutor(2) as pool:
        bodies = list(pool.map(batch, [(one, codes[:20]), (other, codes[20:])]))
    for body in bodies:
        assert "errors" not in body, body["errors"]
        for item in body["data"]["subjects"]:
            assert item["error"] is None, item
            assert item["subject"]["jointPunishment"]["complete"] is True, item
    sent = [at for at, _ in faults.request_arrivals("courts")]
    assert len(sent) >= 4 * len(codes)
    # Each replica alone would have sent up to 50 a second: together they kept to 50.
    assert _busiest(sent) <= 50, _busiest(sent)
    assert max(sent) - min(sent) >= len(sent) / 50 - 1.1


def test_a_clients_rate_limit_holds_across_replicas(
    make_gateway: GatewayFactory, prefix: str
) -> None:
    one, other = _pair(
        make_gateway, cache_table(prefix, timeout_s=1.0), limits={"rate_per_s": 0.01, "burst": 4}
    )

    def post(server: GatewayServer, key: str | None = None) -> int:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = httpx.post(
            f"{server.url}/graphql", json={"query": CHEAP}, headers=headers, timeout=30
        )
        return response.status_code

    # A bucket of 4 for the partner: 4 requests in all, wherever they land.
    partner = [post((one, other)[i % 2], KEYS["partner"]) for i in range(6)]
    assert partner == [200, 200, 200, 200, 429, 429]
    # Anonymous callers are counted by address across replicas too; other clients are not
    # affected.
    anonymous = [post((other, one)[i % 2]) for i in range(5)]
    assert anonymous == [200, 200, 200, 200, 429]
    assert post(one, KEYS["bank"]) == 200


# --- Redis unreachable -------------------------------------------------------------------


def test_with_redis_unreachable_from_the_start_queries_are_answered_in_process(
    make_gateway: GatewayFactory, dataset: Dataset, prefix: str
) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    server = make_gateway(
        tables={"cache": cache_table(prefix, url=url)}, **{name: CACHED for name in LIVE}
    )
    started = time.monotonic()
    for code in ("clean.plain", "stitched.all_departments", "clean.plain"):
        _complete(_subject(server, dataset.examples[code]))
    assert time.monotonic() - started < 5
    ready = _readyz(server)
    # Ready (200): the replica serves; the body says the cache is degraded.
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["cache"] == DEGRADED
    _, samples = scrape(server)
    assert value(samples, "credit_gateway_cache_backend_up") == 0.0
    for what in ("answers", "pace", "rate_limit"):
        assert _fallbacks(samples, what) > 0, what


def test_redis_stopping_mid_test_never_fails_a_query_and_is_reported(
    make_gateway: GatewayFactory, sandbox: SandboxThread, dataset: Dataset, prefix: str
) -> None:
    proxy = TcpProxy()
    try:
        one, other = _pair(make_gateway, cache_table(prefix, url=proxy.url, timeout_s=0.2))
        first, second, third = (
            dataset.examples[c] for c in ("clean.plain", "clean.with_grade_a", "dishonest.active")
        )
        _complete(_subject(one, first))
        ready = _readyz(one)
        assert ready.status_code == 200 and ready.json()["checks"]["cache"] == "ok"
        assert value(scrape(one)[1], "credit_gateway_cache_backend_up") == 1.0

        proxy.pause()  # Redis stops answering: every operation hangs
        for server, code in ((other, first), (one, second), (other, third)):
            started = time.monotonic()
            body = _subject(server, code)
            assert "errors" not in body, body["errors"]
            assert body["data"]["subject"]["jointPunishment"]["complete"] is True
            assert time.monotonic() - started < 3.0  # timeout_s 2 of the departments + 1
        for server in (one, other):
            ready = _readyz(server)
            assert ready.status_code == 200 and ready.json()["checks"]["cache"] == DEGRADED
            _, samples = scrape(server)
            assert value(samples, "credit_gateway_cache_backend_up") == 0.0
            assert _fallbacks(samples, "answers") > 0
            assert _fallbacks(samples, "rate_limit") > 0

        proxy.resume()  # back: within a second or two the replicas share again
        _until(lambda: _readyz(one).json()["checks"]["cache"] == "ok")
        sandbox.reset_counts()
        _complete(_subject(one, dataset.examples["tax.several_years"]))
        once = _calls(sandbox)
        _complete(_subject(other, dataset.examples["tax.several_years"]))
        assert _calls(sandbox) == once
        assert value(scrape(other)[1], "credit_gateway_cache_backend_up") == 1.0

        proxy.close()  # gone for good: connections refused
        _complete(_subject(other, dataset.examples["water.grade_aaa"]))
        assert _readyz(other).json()["checks"]["cache"] == DEGRADED
    finally:
        proxy.close()
