"""`[audit] url = "postgresql://…"` (contract §5, §11): every replica appends to one chain.

A real PostgreSQL (tests/stores.py: a fresh database per test, skipped with the reason when
there is none, failing under CI=true). Replicas are AuditLog instances, processes and
gateways sharing one database; the forger works on the tables in SQL, as someone with write
access to the database would; `credit-gateway audit verify` runs as a process.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from core.audit import AuditEntry, AuditOutcome, AuditRequest, AuditUnavailable, entry_hash
from core.clock import Clock
from gateway.audit_pg import shown_url
from gateway.audit_store import AuditKey, AuditLog, load_audit_key, open_audit_log, verify_chain
from gateway.config import ConfigError, parse_config
from gateway.readiness import KEPT_S
from sandbox.model import Dataset
from tests.cli import ROOT, run_cli, write_config
from tests.conftest import TODAY, GatewayFactory
from tests.servers import GatewayServer, GraphQLClient
from tests.stores import postgres_database
from tests.test_person_audit import _call, _check_chain, _code, _log


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty database: the audit store of every replica of one test.

    Asked for before make_gateway, so the gateways stop before it is dropped.
    """
    with postgres_database() as url:
        yield url


def _make_key(directory: Path, seed: bytes = b"test") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / f"audit-{seed.decode()}.key"
    key.write_bytes(hashlib.sha256(seed).digest())
    key.chmod(0o600)
    return key


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return _make_key(tmp_path / "keys")


def _request(n: int, client: str | None = None) -> AuditRequest:
    return AuditRequest(
        at=Clock(TODAY).now(),
        client_id=client or f"bank-{n % 2}",
        role="bank",
        operation="person",
        purpose="CREDIT_LOAN",
        authorization_ref=f"L-{n}",
        target="610802********0021",
        outcome=AuditOutcome.GRANTED,
        reason=None,
    )


async def _write(url: str, count: int, key: AuditKey | None = None) -> None:
    log = AuditLog(url, key=key)
    await log.start()
    try:
        for n in range(1, count + 1):
            await log.record(_request(n))
    finally:
        await log.close()


def _sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """As someone with write access to the database, outside any gateway."""
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return list(cursor.fetchall()) if cursor.description else []


def _rows(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        cursor = conn.execute("SELECT * FROM audit_log ORDER BY id")
        names = [column.name for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _verify(tmp_path: Path, url: str, key: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = f'key_file = "{key}"\n' if key is not None else ""
    return run_cli(
        "audit", "verify", "--config", str(write_config(tmp_path / "v.toml", url, extra=extra))
    )


def _forge(url: str, first_id: int, **changes: Any) -> None:
    """Alter entry `first_id` and recompute every hash from it on, as a forger without the
    key can: links and hashes are all valid again."""
    assignments = ", ".join(f"{name} = %s" for name in changes)
    _sql(url, f"UPDATE audit_log SET {assignments} WHERE id = %s", (*changes.values(), first_id))
    rows = _rows(url)
    prev_hash = rows[first_id - 2]["hash"] if first_id > 1 else "0" * 64
    for row in rows[first_id - 1 :]:
        values = {k: v for k, v in row.items() if k not in ("hash", "seal")}
        values["prev_hash"] = prev_hash
        prev_hash = entry_hash(**values)
        _sql(
            url,
            "UPDATE audit_log SET prev_hash = %s, hash = %s WHERE id = %s",
            (values["prev_hash"], prev_hash, row["id"]),
        )


async def _refused(log: AuditLog, n: int = 99) -> str:
    with pytest.raises(AuditUnavailable) as refused:
        await log.record(_request(n))
    return str(refused.value)


# --- several replicas, one chain ---------------------------------------------------------------


@pytest.mark.parametrize("keyed", [False, True], ids=["unkeyed", "keyed"])
async def test_two_replicas_appending_concurrently_form_one_gap_free_chain(
    pg_url: str, key_file: Path, keyed: bool
) -> None:
    key = load_audit_key(key_file) if keyed else None
    replicas = [open_audit_log(pg_url, 2.0, key), open_audit_log(pg_url, 2.0, key)]
    await asyncio.gather(*(replica.start() for replica in replicas))

    async def call(n: int) -> AuditEntry:
        # Arriving in 20 waves, half through each replica: many in flight at once, so
        # both writers commit batch after batch, contending for the head.
        await asyncio.sleep(n % 20 * 0.002)
        return await replicas[n % 2].record(_request(n, f"replica-{n % 2}"))

    try:
        entries = await asyncio.gather(*(call(n) for n in range(200)))
    finally:
        await asyncio.gather(*(replica.close() for replica in replicas))
    assert sorted(e.id for e in entries) == list(range(1, 201))
    # Each replica committed several transactions of many entries (group commit), and
    # both appended while the other did.
    commits = [replica.commits for replica in replicas]
    assert min(commits) >= 2 and sum(commits) < 200, commits
    rows = _rows(pg_url)
    assert [r["id"] for r in rows] == list(range(1, 201))
    assert {r["client_id"] for r in rows[:100]} == {"replica-0", "replica-1"}
    by_id = {e.id: e for e in entries}
    assert all(by_id[r["id"]].hash == r["hash"] for r in rows)
    result = verify_chain(pg_url, key)
    assert result.ok, result.problem
    assert result.entries == 200
    if keyed:
        assert (result.sealed, result.unsealed, result.head_id) == (200, 0, 200)


_REPLICA = textwrap.dedent(
    """
    import asyncio, sys
    from tests.test_audit_postgres import _request
    from gateway.audit_store import open_audit_log

    async def main(url, name):
        log = open_audit_log(url)
        await log.start()
        try:
            await asyncio.gather(*(log.record(_request(n, name)) for n in range(100)))
        finally:
            await log.close()
        print(log.commits)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def test_replicas_in_separate_processes_append_to_one_chain(pg_url: str, tmp_path: Path) -> None:
    # Both processes create the tables of the empty database, and append, at the same time.
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _REPLICA, pg_url, f"process-{n}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert int(out) >= 1
    rows = _rows(pg_url)
    assert [r["id"] for r in rows] == list(range(1, 201))
    assert sorted({r["client_id"] for r in rows}) == ["process-0", "process-1"]
    result = _verify(tmp_path, pg_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["audit chain intact: 200 entries"]
    assert "not detected" in result.stderr  # no key: said on every run


def test_two_gateways_log_concurrent_person_queries_in_one_chain(
    pg_url: str, make_gateway: GatewayFactory, dataset: Dataset, tmp_path: Path
) -> None:
    # Two replicas sharing the audit store and the state store, as contract §11 has them.
    gateways = [
        make_gateway(audit={"url": pg_url}, tables={"store": {"url": pg_url}}) for _ in range(2)
    ]
    clients = [GraphQLClient(gateway.url) for gateway in gateways]
    person = dataset.examples["person.restricted"]
    refs = [f"LOAN-{n:03d}" for n in range(200)]

    def call(n: int) -> Any:
        return _call(clients[n % 2], person, "CREDIT_LOAN", refs[n], "bank")

    with ThreadPoolExecutor(max_workers=32) as pool:
        bodies = list(pool.map(call, range(200)))
    assert [_code(body) for body in bodies] == [None] * 200
    result = _verify(tmp_path, pg_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["audit chain intact: 200 entries"]
    # auditLog pages the shared chain, newest first, whichever replica is asked.
    first = _log(clients[0], 150)
    second = _log(clients[1], 150, after=first["pageInfo"]["endCursor"])
    assert first["pageInfo"]["hasNextPage"] and not second["pageInfo"]["hasNextPage"]
    entries = [edge["node"] for page in (first, second) for edge in page["edges"]]
    assert [int(e["id"]) for e in entries] == list(range(200, 0, -1))
    assert sorted(e["authorizationRef"] for e in entries) == refs
    _check_chain(entries)
    mine = _log(clients[1], 500, client_id="bank-test")["edges"]
    assert len(mine) == 200
    assert _log(clients[1], 500, client_id="partner-test")["edges"] == []


async def test_page_reads_newest_first_and_by_client(pg_url: str) -> None:
    log = AuditLog(pg_url)
    await log.start()
    try:
        written = [await log.record(_request(n, "a" if n % 3 else "b")) for n in range(1, 8)]
        page, more = await log.page(3, None, None)
        assert [e.id for e in page] == [7, 6, 5] and more
        page, more = await log.page(3, 5, None)
        assert [e.id for e in page] == [4, 3, 2] and more
        page, more = await log.page(10, None, "b")
        assert page == [written[5], written[2]] and not more  # read back as written
    finally:
        await log.close()


# --- what verify and the gateway detect --------------------------------------------------------


async def test_an_entry_changed_in_sql_is_named_by_verify(pg_url: str, tmp_path: Path) -> None:
    await _write(pg_url, 5)
    assert _verify(tmp_path, pg_url).returncode == 0
    _sql(pg_url, "UPDATE audit_log SET target = '110101********0000' WHERE id = 3")
    result = _verify(tmp_path, pg_url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith(
        "audit chain broken at entry 3: hash does not match its fields (entry altered)"
    )
    assert "Traceback" not in result.stderr


async def test_a_chain_recomputed_without_the_key_is_caught(
    pg_url: str, tmp_path: Path, key_file: Path
) -> None:
    await _write(pg_url, 4, load_audit_key(key_file))
    _forge(pg_url, 2, client_id="someone-else")
    unkeyed = _verify(tmp_path, pg_url)
    assert unkeyed.returncode == 0, unkeyed.stderr  # without the key it looks intact
    result = _verify(tmp_path, pg_url, key_file)
    assert result.returncode == 1
    assert result.stderr.startswith("audit chain broken at entry 2: seal does not match")
    _sql(pg_url, "UPDATE audit_log SET seal = NULL")
    stripped = _verify(tmp_path, pg_url, key_file)
    assert stripped.returncode == 1
    assert stripped.stderr.startswith("audit chain broken at entry 1: no seal where entries")


async def test_newest_entries_deleted_are_reported_as_cut_and_not_appended_to(
    pg_url: str, tmp_path: Path, key_file: Path
) -> None:
    key = load_audit_key(key_file)
    running = AuditLog(pg_url, key=key)
    await running.start()
    try:
        for n in range(1, 6):
            await running.record(_request(n))
        intact = _verify(tmp_path, pg_url, key_file)
        assert intact.returncode == 0, intact.stderr
        assert intact.stdout.splitlines() == [
            "audit chain intact: 5 entries",
            "sealed with [audit] key_file: 5; unsealed, written before the key: 0; "
            "sealed head: entry 5",
        ]
        _sql(pg_url, "DELETE FROM audit_log WHERE id > 3")
        result = _verify(tmp_path, pg_url, key_file)
        assert result.returncode == 1
        assert result.stderr.startswith(
            "audit chain broken at entry 4: entries 4-5 are missing: the sealed head says the "
            "chain reached entry 5 (the newest entries were cut off)"
        )
        # The running replica notices its own last entry gone, and a new one the head.
        assert "entry 5, committed by this gateway, is no longer in" in await _refused(running)
    finally:
        await running.close()
    restarted = AuditLog(pg_url, key=key)
    await restarted.start()
    try:
        assert "does not hold entry 5 as the sealed head" in await _refused(restarted)
    finally:
        await restarted.close()
    assert [r["id"] for r in _rows(pg_url)] == [1, 2, 3]


async def test_a_head_row_moved_back_or_deleted_is_caught(
    pg_url: str, tmp_path: Path, key_file: Path
) -> None:
    key = load_audit_key(key_file)
    await _write(pg_url, 3, key)
    rows = _rows(pg_url)
    # The forger cuts entry 3 and moves the head back to entry 2, keeping its seal.
    _sql(pg_url, "DELETE FROM audit_log WHERE id = 3")
    _sql(pg_url, "UPDATE audit_head SET id = 2, hash = %s", (rows[1]["hash"],))
    result = _verify(tmp_path, pg_url, key_file)
    assert result.returncode == 1
    assert "the sealed head in audit_head of postgresql://" in result.stderr
    assert "does not match the key" in result.stderr
    log = AuditLog(pg_url, key=key)
    await log.start()
    try:
        assert "does not match the key" in await _refused(log)
        # Deleting the head row does not help either.
        _sql(pg_url, "DELETE FROM audit_head")
        assert "is missing while the store holds sealed entries" in await _refused(log)
    finally:
        await log.close()
    gone = _verify(tmp_path, pg_url, key_file)
    assert gone.returncode == 1
    assert "is missing: the newest entries may have been cut off" in gone.stderr


async def test_a_wrong_key_or_no_key_is_refused(
    pg_url: str, tmp_path: Path, key_file: Path
) -> None:
    await _write(pg_url, 2, load_audit_key(key_file))
    other = _make_key(tmp_path / "other", b"other")
    result = _verify(tmp_path, pg_url, other)
    assert result.returncode == 1
    assert result.stderr.startswith("audit chain cannot be verified: the sealed head in audit_head")
    assert "does not match the key" in result.stderr
    for key in (load_audit_key(other), None):
        log = AuditLog(pg_url, key=key)
        await log.start()
        try:
            problem = await _refused(log)
        finally:
            await log.close()
        expected = "is not sealed with [audit] key_file" if key else "is sealed; start the"
        assert expected in problem
    assert [r["id"] for r in _rows(pg_url)] == [1, 2]
    assert _verify(tmp_path, pg_url, key_file).returncode == 0


async def test_a_key_added_later_seals_from_then_on(
    pg_url: str, tmp_path: Path, key_file: Path
) -> None:
    await _write(pg_url, 2)
    await _write(pg_url, 3, load_audit_key(key_file))
    assert [r["seal"] is None for r in _rows(pg_url)] == [True, True, False, False, False]
    result = _verify(tmp_path, pg_url, key_file)
    assert result.returncode == 0, result.stderr
    assert "sealed with [audit] key_file: 3; unsealed, written before the key: 2; " in result.stdout


# --- start, readiness, config, verify's own failures -------------------------------------------


def test_an_unkeyed_replica_warns_at_start_naming_the_database(
    pg_url: str, make_gateway: GatewayFactory, key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.runtime"):
        make_gateway(audit={"url": pg_url}).stop()
    assert f"the audit chain of {shown_url(pg_url)} is unkeyed" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gateway.runtime"):
        make_gateway(audit={"url": pg_url, "key_file": str(key_file)}).stop()
    assert "unkeyed" not in caplog.text


def _readyz(server: GatewayServer) -> httpx.Response:
    time.sleep(KEPT_S + 0.05)  # a report made now, not the shared one
    return httpx.get(f"{server.url}/readyz", timeout=10)


def test_ready_unless_the_head_is_locked_past_the_bound(
    pg_url: str, make_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_gateway(audit={"url": pg_url})
    response = _readyz(server)
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["audit"] == "ok"
    assert _rows(pg_url) == []  # the probe appends nothing
    with (
        psycopg.connect(pg_url) as holder,
        caplog.at_level(logging.WARNING, logger="gateway.readiness"),
    ):
        holder.execute("SELECT * FROM audit_head FOR UPDATE")  # a writer stuck mid-append
        started = time.monotonic()
        response = _readyz(server)
        # Bounded: the probe waits for the head a quarter of a second, not [audit] timeout_s.
        assert time.monotonic() - started < KEPT_S + 1.5
        assert response.status_code == 503
        assert "stayed locked by another writer for 0.25 s" in caplog.text
        holder.rollback()
    assert _readyz(server).status_code == 200


def _cut_connections(url: str) -> None:
    """The gateways' connections to the database end, as when it restarts or fails over."""
    _sql(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'credit-gateway audit'",
    )


async def test_a_read_only_database_is_refused_and_lost_connections_are_replaced(
    pg_url: str,
) -> None:
    log = AuditLog(pg_url)
    await log.start()
    name = pg_url.rsplit("/", 1)[1]
    try:
        await log.record(_request(1))
        await log.check_writable(0.25)
        # A failover to a standby: connections cut, the database now read-only.
        _sql(pg_url, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        _cut_connections(pg_url)
        with pytest.raises(OSError, match="is read-only"):
            await log.check_writable(0.25)
        assert "read-only transaction" in await _refused(log, 2)
        with psycopg.connect(
            pg_url, autocommit=True, options="-c default_transaction_read_only=off"
        ) as admin:
            admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        assert (await log.record(_request(3))).id == 2
        # Connections ended while idle (a restart): replaced, no call denied for it.
        _cut_connections(pg_url)
        assert (await log.record(_request(4))).id == 3
        _cut_connections(pg_url)
        await log.check_writable(0.25)
    finally:
        await log.close()
    assert verify_chain(pg_url).entries == 3


async def test_an_unreachable_database_denies_and_verify_says_why(tmp_path: Path) -> None:
    url = "postgresql://nobody@127.0.0.1:9/audit"  # nothing listens on the discard port
    log = AuditLog(url, timeout_s=0.5)
    await log.start()  # logged, never raised
    try:
        await _refused(log)
        with pytest.raises(AuditUnavailable):
            await log.page(10, None, None)
    finally:
        await log.close()
    result = _verify(tmp_path, url)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "audit chain cannot be verified: audit database postgresql://nobody@127.0.0.1:9/audit "
        "cannot be opened"
    )
    assert "Traceback" not in result.stderr


def test_config_takes_postgresql_urls_and_refuses_malformed_ones(tmp_path: Path) -> None:
    sources = {name: {"url": "http://127.0.0.1:9"} for name in ("courts", "market", "tax", "water")}
    config = parse_config({"sources": sources, "audit": {"url": "postgresql://gw@db/credit"}})
    assert config.audit.url == "postgresql://gw@db/credit"
    assert config.store_url == "postgresql://gw@db/credit"  # [store] defaults to the same
    with pytest.raises(ConfigError, match=r"\[audit\] url is not a valid PostgreSQL URL"):
        parse_config({"sources": sources, "audit": {"url": "postgresql://a b/c"}})
    bad = run_cli(
        "audit", "verify", "--config", str(write_config(tmp_path / "c.toml", "postgresql://a b/c"))
    )
    assert bad.returncode == 2
    assert "[audit] url is not a valid PostgreSQL URL" in bad.stderr


def test_a_password_never_appears_in_messages() -> None:
    assert shown_url("postgresql://gw:s3cret@db.internal:5433/credit?sslmode=require") == (
        "postgresql://gw@db.internal:5433/credit"
    )
