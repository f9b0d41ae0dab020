"""The audit store itself (contract §5/§6): group commit, the hash chain, pages, verify, CLI.

Every test writes a real SQLite file under tmp_path; the gateway around it is tested in
tests/test_person_audit.py.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditOutcome,
    AuditRequest,
    AuditUnavailable,
    entry_hash,
)
from gateway.audit_store import AuditLog, verify_chain
from store.database_url import sqlite_path
from tests.cli import run_cli, write_config

CST = timezone(timedelta(hours=8))
AT = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=CST)


def _request(n: int, client_id: str = "bank-a", granted: bool = True) -> AuditRequest:
    return AuditRequest(
        at=AT + timedelta(seconds=n),
        client_id=client_id,
        role="bank",
        operation="person",
        purpose="CREDIT_LOAN",
        authorization_ref=f"贷-2026-{n}" if granted else None,
        target="610802********0021",
        outcome=AuditOutcome.GRANTED if granted else AuditOutcome.DENIED,
        reason=None if granted else "AUTHORIZATION_REQUIRED",
    )


def _url(path: Path) -> str:
    return f"sqlite://{path}"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AuditLog]:
    """A started log on a fresh file, closed after the test."""
    audit = AuditLog(_url(tmp_path / "logs" / "audit.db"))
    await audit.start()
    yield audit
    await audit.close()


def _recomputed(entry: AuditEntry) -> str:
    return entry_hash(
        id=entry.id,
        at=entry.at,
        client_id=entry.client_id,
        role=entry.role,
        operation=entry.operation,
        purpose=entry.purpose,
        authorization_ref=entry.authorization_ref,
        target=entry.target,
        outcome=entry.outcome,
        reason=entry.reason,
        prev_hash=entry.prev_hash,
    )


def _assert_chain(oldest_first: list[AuditEntry]) -> None:
    assert [e.id for e in oldest_first] == list(range(1, len(oldest_first) + 1))
    prev = GENESIS_HASH
    for entry in oldest_first:
        assert entry.prev_hash == prev
        assert entry.hash == _recomputed(entry)
        prev = entry.hash


async def _all(audit: AuditLog) -> list[AuditEntry]:
    entries, has_next = await audit.page(10_000, None, None)
    assert not has_next
    return entries


# --- writing -----------------------------------------------------------------------------------


async def test_entries_form_a_hash_chain(store: AuditLog) -> None:
    written = [await store.record(_request(n, granted=n % 2 == 0)) for n in range(5)]
    _assert_chain(written)
    assert (
        written[1].outcome is AuditOutcome.DENIED and written[1].reason == "AUTHORIZATION_REQUIRED"
    )
    # What is read back is exactly what was written, `at` with its offset.
    assert list(reversed(await _all(store))) == written
    with sqlite3.connect(store.path) as db:
        (at_text,) = db.execute("SELECT at FROM audit_log WHERE id = 1").fetchone()
    db.close()
    assert at_text == "2026-03-02T09:30:15.123456+08:00"
    assert verify_chain(_url(store.path)).entries == 5


async def test_concurrent_records_share_transactions(store: AuditLog) -> None:
    written = await asyncio.gather(*(store.record(_request(n)) for n in range(200)))
    assert sorted(e.id for e in written) == list(range(1, 201))
    # Group commit: 200 callers, far fewer transactions.
    assert 1 <= store.commits < 200
    stored = list(reversed(await _all(store)))
    _assert_chain(stored)
    assert sorted(written, key=lambda e: e.id) == stored
    assert verify_chain(_url(store.path)).ok


async def test_two_gateways_on_one_file_keep_one_chain(store: AuditLog) -> None:
    other = AuditLog(_url(store.path))
    await other.start()
    try:
        calls = [(store if n % 2 else other).record(_request(n, f"c{n % 2}")) for n in range(60)]
        await asyncio.gather(*calls)
    finally:
        await other.close()
    result = verify_chain(_url(store.path))
    assert result.ok and result.entries == 60


async def test_close_commits_what_is_queued_and_refuses_more(tmp_path: Path) -> None:
    audit = AuditLog(_url(tmp_path / "audit.db"))
    await audit.start()
    pending = [asyncio.create_task(audit.record(_request(n))) for n in range(20)]
    await asyncio.sleep(0)  # let them queue
    await audit.close()
    assert sorted(t.result().id for t in pending) == list(range(1, 21))
    with pytest.raises(AuditUnavailable):
        await audit.record(_request(99))
    assert verify_chain(_url(tmp_path / "audit.db")).entries == 20


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        AuditRequest(
            datetime(2026, 3, 2), "c", "bank", "person", None, None, "*", AuditOutcome.DENIED, None
        )


# --- when the store cannot be written ----------------------------------------------------------


async def test_store_that_cannot_be_created(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file where the directory should be\n")
    audit = AuditLog(_url(blocker / "audit.db"))
    with caplog.at_level(logging.WARNING, logger="gateway.audit_store"):
        await audit.start()  # never raises: subject queries keep working
    assert "cannot be opened" in caplog.text
    try:
        with pytest.raises(AuditUnavailable):
            await audit.record(_request(1))
        with pytest.raises(AuditUnavailable):
            await audit.page(10, None, None)
        # Opening is retried: once the directory can be made, entries are written.
        blocker.unlink()
        entry = await audit.record(_request(2))
    finally:
        await audit.close()
    assert entry.id == 1 and entry.prev_hash == GENESIS_HASH
    assert audit.commits == 1 and audit.failures == 1


async def test_locked_store_denies_until_released(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    audit = AuditLog(_url(path), timeout_s=0.2)
    await audit.start()
    try:
        await audit.record(_request(1))
        lock = sqlite3.connect(path, isolation_level=None, timeout=5)
        try:
            lock.execute("BEGIN EXCLUSIVE")
            started = time.monotonic()
            with pytest.raises(AuditUnavailable):
                await audit.record(_request(2))
            assert time.monotonic() - started < 2.0  # the store's timeout decided
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        after = await audit.record(_request(3))
        entries = list(reversed(await _all(audit)))
    finally:
        await audit.close()
    # Nothing of the failed batch was written; the chain goes on from entry 1.
    assert after.id == 2 and after.authorization_ref == "贷-2026-3"
    _assert_chain(entries)
    assert verify_chain(_url(path)).entries == 2


# --- reading pages -----------------------------------------------------------------------------


async def test_pages_newest_first_without_repeats_or_gaps(store: AuditLog) -> None:
    assert await store.page(5, None, None) == ([], False)
    for n in range(7):
        await store.record(_request(n, client_id="bank-b" if n in (1, 4, 5) else "bank-a"))
    seen: list[int] = []
    after: int | None = None
    pages = []
    while True:
        entries, has_next = await store.page(3, after, None)
        seen += [e.id for e in entries]
        pages.append((len(entries), has_next))
        if not has_next:
            break
        after = entries[-1].id
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    assert pages == [(3, True), (3, True), (1, False)]

    first, more = await store.page(2, None, "bank-b")
    assert [e.id for e in first] == [6, 5] and more
    rest, more = await store.page(2, first[-1].id, "bank-b")
    assert [e.id for e in rest] == [2] and not more
    # Exactly as many as asked for: no next page.
    assert (await store.page(3, None, "bank-b"))[1] is False
    assert await store.page(3, None, "nobody") == ([], False)


# --- verify ------------------------------------------------------------------------------------


async def _written(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "audit.db"
    audit = AuditLog(_url(path))
    await audit.start()
    try:
        for n in range(count):
            await audit.record(_request(n))
    finally:
        await audit.close()
    return path


def _tamper(path: Path, sql: str, *params: object) -> None:
    with sqlite3.connect(path) as db:
        db.execute(sql, params)
    db.close()


async def test_verify_finds_an_altered_entry(tmp_path: Path) -> None:
    path = await _written(tmp_path, 6)
    assert verify_chain(_url(path)).ok
    _tamper(path, "UPDATE audit_log SET target = ? WHERE id = 4", "110101********0011")
    result = verify_chain(_url(path))
    assert not result.ok and result.broken_id == 4 and result.entries == 3
    assert result.problem is not None and "hash does not match" in result.problem


async def test_verify_finds_a_rehashed_entry_by_the_next_link(tmp_path: Path) -> None:
    path = await _written(tmp_path, 5)
    # A forger who also recomputes the altered entry's hash breaks the next entry's link.
    _tamper(path, "UPDATE audit_log SET outcome = 'DENIED', reason = 'FORBIDDEN' WHERE id = 2")
    with sqlite3.connect(path) as db:
        names = [d[0] for d in db.execute("SELECT * FROM audit_log WHERE id = 2").description]
        row = dict(
            zip(names, db.execute("SELECT * FROM audit_log WHERE id = 2").fetchone(), strict=True)
        )
        del row["hash"], row["seal"]  # the seal column is not hashed (contract §5)
        db.execute("UPDATE audit_log SET hash = ? WHERE id = 2", (entry_hash(**row),))
    db.close()
    result = verify_chain(_url(path))
    assert result.broken_id == 3
    assert result.problem is not None and "prev_hash" in result.problem


async def test_verify_finds_a_removed_entry(tmp_path: Path) -> None:
    path = await _written(tmp_path, 6)
    _tamper(path, "DELETE FROM audit_log WHERE id = 3")
    result = verify_chain(_url(path))
    assert result.broken_id == 4 and result.entries == 2
    assert result.problem is not None and "entry 3 is missing" in result.problem


async def test_verify_of_an_empty_log_is_intact(tmp_path: Path) -> None:
    result = verify_chain(_url(await _written(tmp_path, 0)))
    assert result.ok and result.entries == 0


def test_verify_without_a_log_fails(tmp_path: Path) -> None:
    missing = verify_chain(_url(tmp_path / "missing.db"))
    assert not missing.ok and missing.broken_id is None
    assert missing.problem is not None and "does not exist" in missing.problem
    assert not (tmp_path / "missing.db").exists()
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    no_table = verify_chain(_url(other))
    assert not no_table.ok and no_table.problem is not None and "no audit_log" in no_table.problem


# --- URLs --------------------------------------------------------------------------------------


def test_sqlite_urls() -> None:
    assert sqlite_path("sqlite:///var/lib/credit-gateway/audit.db") == Path(
        "/var/lib/credit-gateway/audit.db"
    )
    assert sqlite_path("sqlite://audit.db") == Path("audit.db")
    assert AuditLog("sqlite://logs/audit.db").path == Path.cwd() / "logs" / "audit.db"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://db/audit", "sqlite://"),
        ("/var/lib/audit.db", "sqlite://"),
        ("sqlite://", "name a file"),
        ("sqlite:///var/lib/", "name a file"),
        ("sqlite://:memory:", "not durable"),
        ("sqlite:///:memory:", "not durable"),
        ("sqlite:///x.db?mode=memory", "plain file path"),
    ],
)
def test_unsupported_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sqlite_path(url)


# --- credit-gateway audit verify, as a process -------------------------------------------------


def _config(tmp_path: Path, audit_url: str) -> Path:
    return write_config(tmp_path / "config.toml", audit_url)


def _verify(config: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("audit", "verify", "--config", str(config))


@pytest.fixture
async def three_entries(tmp_path: Path) -> Path:
    """An audit file with three entries."""
    return await _written(tmp_path, 3)


def test_cli_verify_intact_then_tampered(tmp_path: Path, three_entries: Path) -> None:
    config = _config(tmp_path, _url(three_entries))
    intact = _verify(config)
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.strip() == "audit chain intact: 3 entries"

    _tamper(three_entries, "UPDATE audit_log SET client_id = 'someone-else' WHERE id = 2")
    broken = _verify(config)
    assert broken.returncode == 1
    assert broken.stderr.startswith("audit chain broken at entry 2: hash does not match")
    assert "Traceback" not in broken.stderr


def test_cli_verify_refuses_a_bad_url_and_a_missing_store(tmp_path: Path) -> None:
    bad = _verify(_config(tmp_path, "sqlite://:memory:"))
    assert bad.returncode == 2
    assert "[audit] url" in bad.stderr and "Traceback" not in bad.stderr
    missing = _verify(_config(tmp_path, _url(tmp_path / "nowhere.db")))
    assert missing.returncode == 1
    assert "cannot be verified" in missing.stderr and "does not exist" in missing.stderr
