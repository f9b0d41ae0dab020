"""/readyz (contract §10): the audit store writable and every file source with a snapshot."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from gateway.readiness import KEPT_S
from sandbox.runner import SandboxThread
from tests.conftest import GatewayFactory, audit_url
from tests.servers import GatewayServer, GraphQLClient

LIVE = ("courts", "market", "tax")


def _readyz(server: GatewayServer) -> httpx.Response:
    return httpx.get(f"{server.url}/readyz", timeout=10)


def _fresh_readyz(server: GatewayServer) -> httpx.Response:
    """A report made now: the one before is shared for KEPT_S."""
    time.sleep(KEPT_S + 0.05)
    return _readyz(server)


def _until(condition: Callable[[], bool], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.1)


def _audit_rows(url: str) -> int:
    with sqlite3.connect(url.removeprefix("sqlite://")) as conn:
        (count,) = conn.execute("SELECT count(*) FROM audit_log").fetchone()
    return int(count)


def test_ready_over_the_sandbox_without_writing_or_calling_anyone(
    make_gateway: GatewayFactory, sandbox: SandboxThread
) -> None:
    audit = audit_url()
    server = make_gateway(audit={"url": audit})
    sandbox.reset_counts()
    for _ in range(3):
        response = _fresh_readyz(server)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "status": "ready",
            "checks": {"audit": "ok", "store": "ok", "water": "ok"},
        }
        assert response.headers["cache-control"] == "no-store"
    # The audit probe takes the write lock and rolls back: no entry is ever appended, and
    # no department is asked anything.
    assert _audit_rows(audit) == 0
    assert all(sandbox.request_counts(name) == {} for name in LIVE)


def test_not_ready_until_water_has_its_first_snapshot(
    make_gateway: GatewayFactory, faults: SandboxThread
) -> None:
    faults.set_faults("water", down=True)
    server = make_gateway(water={"sync_interval_s": 0.2})
    response = _readyz(server)
    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "checks": {"audit": "ok", "store": "ok", "water": "no snapshot yet"},
    }
    # The gateway itself serves all the while: only its readiness waits for the files.
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
    faults.clear_faults("water")
    _until(lambda: _readyz(server).status_code == 200)
    assert _readyz(server).json()["checks"]["water"] == "ok"


def test_a_snapshot_older_than_max_age_is_still_a_snapshot(make_gateway: GatewayFactory) -> None:
    server = make_gateway(water={"max_age_s": 0.5, "sync_interval_s": 3600})
    time.sleep(0.6)
    response = _fresh_readyz(server)
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["water"] == "stale snapshot, served"


def test_not_ready_while_the_audit_store_cannot_be_written(
    make_gateway: GatewayFactory, tmp_path: Path, sandbox: SandboxThread
) -> None:
    # A path under a regular file cannot be created, not even by root.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file\n", encoding="utf-8")
    server = make_gateway(audit={"url": f"sqlite://{blocker}/audit.db"})
    response = _readyz(server)
    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "checks": {"audit": "cannot be opened or written", "store": "ok", "water": "ok"},
    }
    # Nothing of the cause (paths, SQLite's words) is shown to whoever asks.
    assert str(tmp_path) not in response.text
    # Subjects are still served: readiness is about what this replica can promise.
    body = GraphQLClient(server.url).query("{ sources { department } }")
    assert len(body["data"]["sources"]) == 4


def test_not_ready_while_another_process_holds_the_write_lock(
    make_gateway: GatewayFactory,
) -> None:
    audit = audit_url()
    server = make_gateway(audit={"url": audit})
    assert _readyz(server).status_code == 200
    holder = sqlite3.connect(audit.removeprefix("sqlite://"), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another gateway, or a tool, mid-write for ever
        time.sleep(KEPT_S + 0.05)
        started = time.monotonic()
        response = _readyz(server)
        # Bounded: the probe waits for the lock a quarter of a second, not [audit] timeout_s.
        assert time.monotonic() - started < 1.5
        assert response.status_code == 503
        assert response.json()["checks"]["audit"] == "locked by another writer"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _fresh_readyz(server).status_code == 200


def test_not_ready_while_the_state_store_cannot_be_written(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    server = make_gateway(tables={"store": {"url": f"sqlite://{state}"}})
    assert _readyz(server).status_code == 200
    holder = sqlite3.connect(state, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # a backup tool, say, holding the write lock
        time.sleep(KEPT_S + 0.05)
        response = _readyz(server)
        assert response.status_code == 503
        assert response.json()["checks"]["store"] == "no answer within 1 s"
        assert response.json()["checks"]["audit"] == "ok"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    deadline = time.monotonic() + 10
    while _fresh_readyz(server).status_code != 200:
        assert time.monotonic() < deadline, "the store did not come back"
        time.sleep(0.2)


def test_readyz_is_answered_past_the_rate_limit(make_gateway: GatewayFactory) -> None:
    server = make_gateway(limits={"rate_per_s": 0.01, "burst": 1})
    client = GraphQLClient(server.url)
    assert client.post("{ measures { code } }").status_code == 200
    assert client.post("{ measures { code } }").status_code == 429
    # Like /healthz, polled every few seconds and answered while the gateway is busy.
    assert all(_readyz(server).status_code == 200 for _ in range(20))
