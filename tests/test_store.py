"""The state store on both engines: migrations, leases, and one result per code whoever works it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from store.bulk import QUEUED, BulkStore, CheckRow, Item, Outcome
from store.database import Database, open_database
from store.migrate import migrate, migrations
from tests.stores import BACKENDS, store_url


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    with store_url(request.param, str(tmp_path / "state.db")) as url:
        database = open_database(url)
        try:
            yield database
        finally:
            await database.close()


def _check(check_id: str, total: int, seq: int = 1) -> CheckRow:
    return CheckRow(
        check_id, "bank-test", None, None, QUEUED, total, "2026-05-20T09:00:00+08:00", seq, None
    )


async def test_migrations_apply_once_and_a_newer_store_is_refused(db: Database) -> None:
    versions = [m.version for m in migrations()]
    assert versions == sorted(set(versions)) and versions[0] == 1
    assert await migrate(db) == versions
    assert await migrate(db) == []
    async with db.transaction() as tx:
        await tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (versions[-1] + 1, "from_the_future", "2026-05-20T00:00:00+00:00"),
        )
    with pytest.raises(RuntimeError, match="newer than this gateway's"):
        await migrate(db)


async def test_a_failed_migration_leaves_nothing_behind(db: Database) -> None:
    await migrate(db)
    with pytest.raises(Exception):  # noqa: B017 - each engine has its own error class
        async with db.transaction() as tx:
            await tx.execute("CREATE TABLE half_done (x INTEGER)")
            await tx.execute("INSERT INTO no_such_table VALUES (1)")
    async with db.transaction() as tx:
        # The transaction took its CREATE TABLE with it (PostgreSQL and SQLite alike).
        await tx.execute("CREATE TABLE half_done (x INTEGER)")


async def test_two_workers_never_hold_the_same_code(db: Database) -> None:
    await migrate(db)
    store = BulkStore(db)
    codes = [f"CODE{i:04d}" for i in range(250)]
    await store.create(_check("c1", len(codes)), [Item(c, c) for c in codes], time.time())
    now = time.time()
    claims = await asyncio.gather(*(store.claim(f"worker-{n}", now, 30, 100) for n in range(4)))
    held = [code for claim in claims if claim is not None for code in claim.codes]
    assert len(held) == len(set(held)) == 250
    assert await store.claim("worker-5", now, 30, 100) is None


async def test_a_lease_run_out_is_taken_over_and_the_old_holder_writes_nothing(
    db: Database,
) -> None:
    await migrate(db)
    store = BulkStore(db)
    await store.create(_check("c1", 2), [Item("A", "A"), Item("B", "B")], time.time())
    first = await store.claim("dead", time.time(), 5, 100)
    assert first is not None and first.codes == ["A", "B"]
    assert await store.claim("alive", time.time(), 5, 100) is None
    # Five seconds on, the lease has run out: another worker takes the codes.
    later = time.time() + 6
    second = await store.claim("alive", later, 5, 100)
    assert second is not None and second.codes == ["A", "B"]
    stale = [Outcome("A", "CLEAR", {"checkedAt": "x"})]
    assert await store.settle("dead", "c1", stale, later, "2026-05-20T09:00:06+08:00") == 0
    fresh = [Outcome(c, "WATCH", {"checkedAt": "y"}) for c in ("A", "B")]
    assert await store.settle("alive", "c1", fresh, later, "2026-05-20T09:00:06+08:00") == 2
    check = await store.get("c1")
    assert check is not None and check.state == "DONE"
    results, total = await store.results("c1", -1, 10, None)
    assert total == 2 and [r.status for r in results] == ["WATCH", "WATCH"]


async def test_a_retry_waits_until_due_and_a_cancelled_check_takes_no_result(
    db: Database,
) -> None:
    await migrate(db)
    store = BulkStore(db)
    await store.create(_check("c1", 1), [Item("A", "A")], time.time())
    now = time.time()
    claim = await store.claim("w", now, 30, 100)
    assert claim is not None
    await store.settle("w", "c1", [Outcome("A", retry_at=now + 60)], now, "t")
    assert await store.claim("w", now, 30, 100) is None
    assert (await store.first_failures("c1", ["A"]))["A"] == pytest.approx(now)
    assert await store.claim("w", now + 61, 30, 100) is not None
    await store.cancel("c1", "2026-05-20T09:01:00+08:00")
    done = [Outcome("A", "CLEAR", {"checkedAt": "z"})]
    assert await store.settle("w", "c1", done, now + 61, "t") == 0
    check = await store.get("c1")
    assert check is not None and check.state == "CANCELLED"
    assert await store.counts("c1") == {}
