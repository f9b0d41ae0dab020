"""Fault knobs, admin endpoints, counters and the runner of the sandbox, through real HTTP."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import aiohttp
import httpx
import orjson
import pytest

from sandbox.faults import KNOBS, FaultState, parse_fault_spec
from sandbox.runner import DEPARTMENTS, SandboxServers, SandboxThread, serve_forever
from tests.sandbox_support import COMPANY_A, PERSON_1, Reply, build_dataset, fetch, quiet_faults

# One cheap, documented request per department, used to probe the knobs.
PROBES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "courts": ("GET", "/shixin/search", {"params": {"cardNum": PERSON_1}}),
    "market": ("POST", "/api/v1/entities/query", {"json": {"uniscIds": [COMPANY_A]}}),
    "tax": ("POST", "/services/TaxCreditService", {"data": b"<x/>"}),
    "water": ("GET", "/opendata/credit-grades.csv", {}),
}


# Servers, session and the fault reset come from conftest.py.
pytestmark = pytest.mark.usefixtures("reset_sandbox_faults")


async def _probe(servers: SandboxServers, session: aiohttp.ClientSession, name: str) -> Reply:
    method, path, kwargs = PROBES[name]
    return await fetch(session, method, servers.urls[name] + path, **kwargs)


async def _admin(
    servers: SandboxServers,
    session: aiohttp.ClientSession,
    name: str,
    path: str,
    body: object = None,
) -> Reply:
    url = f"{servers.urls[name]}/_admin/{path}"
    if body is None:
        return await fetch(session, "GET", url)
    return await fetch(session, "POST", url, data=orjson.dumps(body))


# --- knobs --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DEPARTMENTS)
async def test_bursts_answer_the_next_requests_then_the_department_recovers(
    servers: SandboxServers, session: aiohttp.ClientSession, name: str
) -> None:
    normal = (await _probe(servers, session, name)).status
    servers.faults[name].update({"throttle_burst": 1, "error_burst": 2, "retry_after_s": 2})
    replies = [await _probe(servers, session, name) for _ in range(4)]
    assert (replies[0].status, replies[0].headers["Retry-After"]) == (429, "2")
    assert {r.status for r in replies[1:3]} <= {500, 503}
    assert replies[3].status == normal
    assert servers.faults[name].knobs()["error_burst"] == 0


async def test_latency_with_jitter(servers: SandboxServers, session: aiohttp.ClientSession) -> None:
    servers.faults["water"].update({"latency_ms": 150, "latency_jitter_ms": 50})
    started = time.perf_counter()
    reply = await _probe(servers, session, "water")
    elapsed = time.perf_counter() - started
    assert reply.status == 200
    assert 0.15 <= elapsed < 1.0


@pytest.mark.parametrize("name", DEPARTMENTS)
async def test_error_rate_answers_500_or_503(
    servers: SandboxServers, session: aiohttp.ClientSession, name: str
) -> None:
    servers.faults[name].update({"error_rate": 1.0})
    replies = [await _probe(servers, session, name) for _ in range(8)]
    assert {r.status for r in replies} == {500, 503}
    for reply in replies:
        # Every department's 500 is an HTML page; market's 503 may be empty (market.md).
        html = reply.headers.get("Content-Type", "").startswith("text/html")
        assert html or (name == "market" and reply.status == 503 and reply.body == b"")


async def test_error_rate_is_reproducible(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    runs = []
    for _ in range(2):
        servers.faults["courts"].reset()  # reseeds the department's random.Random
        servers.faults["courts"].update({"error_rate": 0.5})
        runs.append([(await _probe(servers, session, "courts")).status for _ in range(16)])
    assert runs[0] == runs[1]
    assert {200, 500, 503} >= set(runs[0]) and 200 in runs[0] and len(set(runs[0])) > 1


@pytest.mark.parametrize("name", DEPARTMENTS)
async def test_throttle_rate_answers_429_with_retry_after(
    servers: SandboxServers, session: aiohttp.ClientSession, name: str
) -> None:
    servers.faults[name].update({"throttle_rate": 1.0, "retry_after_s": 3})
    reply = await _probe(servers, session, name)
    assert (reply.status, reply.headers["Retry-After"]) == (429, "3")


@pytest.mark.parametrize("name", DEPARTMENTS)
async def test_down_is_503_maintenance(
    servers: SandboxServers, session: aiohttp.ClientSession, name: str
) -> None:
    servers.faults[name].update({"down": True})
    replies = [await _probe(servers, session, name) for _ in range(3)]
    assert {r.status for r in replies} == {503}


async def test_hang_never_answers_and_the_server_stays_usable(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    servers.faults["market"].update({"hang": True})
    timeout = aiohttp.ClientTimeout(total=0.3)
    with pytest.raises(asyncio.TimeoutError):
        method, path, kwargs = PROBES["market"]
        await session.request(method, servers.urls["market"] + path, timeout=timeout, **kwargs)
    servers.faults["market"].update({"hang": False})
    assert (await _probe(servers, session, "market")).status == 200


async def test_garbage_is_200_in_no_documented_format(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    for name in DEPARTMENTS:
        servers.faults[name].update({"garbage": True})
    courts, market, tax, water = [await _probe(servers, session, n) for n in DEPARTMENTS]
    assert {r.status for r in (courts, market, tax, water)} == {200}
    assert courts.headers["Content-Type"].startswith("text/html")
    with pytest.raises(orjson.JSONDecodeError):
        market.json()
    assert b"Envelope" not in tax.body
    assert not water.body.startswith(b"\xef\xbb\xbf")


async def test_rate_limit_knob_on_any_department(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    servers.faults["market"].update({"rate_limit_rps": 2})
    statuses = [(await _probe(servers, session, "market")) for _ in range(3)]
    assert [r.status for r in statuses] == [200, 200, 429]
    assert int(statuses[2].headers["Retry-After"]) >= 1
    servers.faults["market"].update({"rate_limit_rps": None})
    assert (await _probe(servers, session, "market")).status == 200


# --- admin endpoints and counters ---------------------------------------------------------


async def test_admin_get_and_patch_faults(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    knobs = (await _admin(servers, session, "tax", "faults")).json()
    assert set(knobs) == set(KNOBS)
    assert knobs["rate_limit_rps"] is None
    patched = await _admin(
        servers, session, "tax", "faults", {"fhdm_error_rate": 0.25, "dtd": True}
    )
    assert patched.status == 200
    assert (patched.json()["fhdm_error_rate"], patched.json()["dtd"]) == (0.25, True)
    assert servers.faults["tax"].dtd is True


@pytest.mark.parametrize(
    "patch",
    [{"no_such_knob": 1}, {"error_rate": 2}, {"down": "yes"}, {"latency_ms": -1}, [1], "x"],
)
async def test_admin_rejects_bad_patches_whole(
    servers: SandboxServers, session: aiohttp.ClientSession, patch: object
) -> None:
    body = patch if not isinstance(patch, dict) else {"latency_ms": 5, **patch}
    reply = await _admin(servers, session, "courts", "faults", body)
    assert reply.status == 400 and "error" in reply.json()
    assert servers.faults["courts"].latency_ms == 0  # nothing of a bad patch is applied


async def test_admin_reset_restores_the_starting_knobs(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    await _admin(servers, session, "courts", "faults", {"down": True, "rate_limit_rps": 3})
    reset = await _admin(servers, session, "courts", "faults/reset", {})
    assert reset.json()["down"] is False
    assert reset.json()["rate_limit_rps"] is None  # this server started without a limit


async def test_admin_is_exempt_from_faults_and_counters(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    servers.faults["water"].update({"down": True, "hang": True})
    assert (await _admin(servers, session, "water", "faults")).status == 200
    assert (await _admin(servers, session, "water", "stats")).json() == {"requests": {}}


async def test_counters_by_method_and_path(
    servers: SandboxServers, session: aiohttp.ClientSession
) -> None:
    for _ in range(3):
        await _probe(servers, session, "market")
    await fetch(session, "GET", servers.urls["market"] + "/api/v1/persons/x/positions")
    expected = {"POST /api/v1/entities/query": 3, "GET /api/v1/persons/x/positions": 1}
    assert (await _admin(servers, session, "market", "stats")).json() == {"requests": expected}
    assert servers.request_counts("market") == expected
    arrivals = list(servers.faults["market"].arrivals)
    assert [key for _, key in arrivals] == 3 * ["POST /api/v1/entities/query"] + [
        "GET /api/v1/persons/x/positions"
    ]
    assert [at for at, _ in arrivals] == sorted(at for at, _ in arrivals)
    # The same over HTTP, for a process outside (make cluster's per-second counts).
    published = (await _admin(servers, session, "market", "arrivals")).json()["arrivals"]
    assert published == [[at, key] for at, key in arrivals]
    assert (await _admin(servers, session, "market", "stats/reset", {})).json() == {"requests": {}}
    assert servers.request_counts("market") == {}
    assert not servers.faults["market"].arrivals


# --- fault specs and states ---------------------------------------------------------------


def test_parse_fault_spec() -> None:
    assert parse_fault_spec("courts:latency_ms=200,error_rate=0.1") == (
        "courts",
        {"latency_ms": 200.0, "error_rate": 0.1},
    )
    assert parse_fault_spec("tax: dtd=true, down=0, retry_after_s=5") == (
        "tax",
        {"dtd": True, "down": False, "retry_after_s": 5},
    )
    assert parse_fault_spec("courts:rate_limit_rps=none") == ("courts", {"rate_limit_rps": None})
    assert parse_fault_spec("tax:error_burst=3") == ("tax", {"error_burst": 3})
    assert parse_fault_spec("water:") == ("water", {})


@pytest.mark.parametrize(
    "spec",
    ["police:down=true", "latency_ms=3", "courts:speed=3", "courts:down=maybe",
     "courts:error_rate=1.5", "courts:latency_ms", "courts:latency_ms=fast",
     "courts:error_burst=1.5"],
)  # fmt: skip
def test_parse_fault_spec_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_fault_spec(spec)


def test_fault_state_defaults_and_validation() -> None:
    assert FaultState.for_department("courts").rate_limit_rps == 50
    assert all(FaultState.for_department(n).rate_limit_rps is None for n in DEPARTMENTS[1:])
    with pytest.raises(ValueError):
        FaultState(error_rate=2)
    with pytest.raises(ValueError):
        FaultState.for_department("police")


# --- the runner ---------------------------------------------------------------------------


async def test_stop_department_refuses_connections_then_restarts_on_the_same_port(
    servers: SandboxServers,
) -> None:
    url = servers.urls["tax"]
    await servers.stop_department("tax")
    async with aiohttp.ClientSession() as fresh:
        with pytest.raises(aiohttp.ClientConnectorError):
            await fresh.get(url + "/services/TaxCreditService")
        assert (await _probe(servers, fresh, "courts")).status == 200  # the others stay up
        await servers.start_department("tax")
        assert servers.urls["tax"] == url
        assert (await _probe(servers, fresh, "tax")).status == 500  # a SOAP Fault for <x/>


async def test_stopping_drops_hanging_requests_at_once(servers: SandboxServers) -> None:
    servers.faults["water"].update({"hang": True})
    async with aiohttp.ClientSession() as fresh:
        hanging = asyncio.create_task(_probe(servers, fresh, "water"))
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        await servers.stop_department("water")
        assert time.perf_counter() - started < 0.3
        with pytest.raises(aiohttp.ClientError):
            await hanging
    await servers.start_department("water")


async def test_explicit_ports_are_used() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sandbox = await SandboxServers.start(build_dataset(), ports={"water": port})
    try:
        assert sandbox.urls["water"] == f"http://127.0.0.1:{port}"
        assert len(set(sandbox.urls.values())) == 4
    finally:
        await sandbox.stop()


async def test_serve_forever_prints_urls_until_cancelled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    task = asyncio.create_task(serve_forever(build_dataset(), "127.0.0.1", None, None))
    for _ in range(100):
        await asyncio.sleep(0.02)
        if capsys.readouterr().out.count("http://127.0.0.1:") == 4 or task.done():
            break
    else:
        pytest.fail("serve_forever printed no URLs")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_sandbox_thread_for_synchronous_tests() -> None:
    with SandboxThread(build_dataset(), faults=quiet_faults()) as sandbox:
        market = sandbox.urls["market"] + "/api/v1/entities/query"
        assert httpx.post(market, json={"uniscIds": [COMPANY_A]}).status_code == 200
        sandbox.set_faults("market", down=True)
        assert httpx.post(market, json={"uniscIds": [COMPANY_A]}).status_code == 503
        with pytest.raises(ValueError):
            sandbox.set_faults("market", sideways=True)
        sandbox.clear_faults()
        assert httpx.post(market, json={"uniscIds": [COMPANY_A]}).status_code == 200
        assert sandbox.request_counts("market") == {"POST /api/v1/entities/query": 3}
        sandbox.reset_counts()
        assert sandbox.request_counts("market") == {}
        sandbox.stop_department("market")
        with pytest.raises(httpx.ConnectError):
            httpx.post(market, json={"uniscIds": []})
        sandbox.start_department("market")
        assert httpx.post(market, json={"uniscIds": []}).status_code == 200
        grades = sandbox.urls["water"] + "/opendata/credit-grades.csv"
        etag = httpx.get(grades).headers["ETag"]
        dataset = build_dataset()
        dataset.water_grades.pop()
        sandbox.replace_dataset(dataset)
        assert httpx.get(grades).headers["ETag"] != etag
