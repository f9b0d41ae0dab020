"""The state store's two engines behind one async interface: SQLite (embedded) and PostgreSQL.

Repositories write their SQL once, with `?` placeholders and portable types, and run it in a
transaction: `async with db.transaction() as tx: await tx.fetch_all(sql, params)`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from store.database_url import sqlite_path

Row = tuple[Any, ...]
# PostgreSQL: the longest wait for a pooled connection (the database down or all in use).
CONNECTION_WAIT_S = 5.0
# Leases given back when the gateway stops: a moment at most, the database may be gone.
RELEASE_WAIT_S = 2.0
Params = Sequence[Any]


class Transaction(Protocol):
    """One open transaction; committed when its block ends, rolled back on an exception."""

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Runs one statement; the number of rows it changed."""
        ...

    async def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        """Runs one statement for each row of parameters."""
        ...

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        """The rows of a query."""
        ...

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of a query, or None."""
        ...


class Database(Protocol):
    """What the repositories use: transactions, and a readiness check."""

    dialect: str

    def transaction(self) -> Any:
        """An async context manager yielding a Transaction (writes take the write lock)."""
        ...

    async def check_writable(self) -> None:
        """Used by /readyz: raises when a write could not be made now."""
        ...

    async def close(self) -> None:
        """Used when the gateway stops."""
        ...


def open_database(url: str) -> Database:
    """The engine a [store] url names; nothing is connected until first used."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url)
    return SqliteDatabase(sqlite_path(url))


class SqliteDatabase:
    """One connection on one thread: SQLite has one writer anyway, and WAL lets readers in."""

    dialect = "sqlite"

    def __init__(self, path: Path, busy_timeout_s: float = 5.0) -> None:
        self.path = path.absolute()
        self._busy_ms = round(busy_timeout_s * 1000)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-store")
        self._conn: sqlite3.Connection | None = None
        # Transactions of this process, one at a time, in the order asked.
        self._lock = asyncio.Lock()

    async def _run(self, work: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are begun and ended by the statements below.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            # A commit survives a power cut once it returned: what a result promises.
            conn.execute("PRAGMA synchronous = FULL")
            self._conn = conn
        return self._conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """BEGIN IMMEDIATE: the write lock from the start, so no transaction has to retry."""
        async with self._lock:
            await self._run(lambda: self._connection().execute("BEGIN IMMEDIATE"))
            try:
                yield _SqliteTransaction(self)
            except BaseException:
                await self._run(lambda: self._connection().execute("ROLLBACK"))
                raise
            await self._run(lambda: self._connection().execute("COMMIT"))

    async def check_writable(self) -> None:
        """Takes the write lock and gives it back."""
        async with self.transaction():
            pass

    async def close(self) -> None:
        """Closes the connection on its own thread, then the thread."""
        async with self._lock:
            if self._conn is not None:
                await self._run(self._conn.close)
                self._conn = None
        self._executor.shutdown(wait=True)


class _SqliteTransaction:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def execute(self, sql: str, params: Params = ()) -> int:
        def run() -> int:
            return self._db._connection().execute(sql, tuple(params)).rowcount

        result: int = await self._db._run(run)
        return result

    async def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        def run() -> None:
            self._db._connection().executemany(sql, [tuple(r) for r in rows])

        await self._db._run(run)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        def run() -> list[Row]:
            return list(self._db._connection().execute(sql, tuple(params)).fetchall())

        result: list[Row] = await self._db._run(run)
        return result

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None


class PostgresDatabase:
    """A small connection pool; several replicas share the database (contract §11)."""

    dialect = "postgresql"

    def __init__(self, url: str, max_connections: int = 8) -> None:
        from psycopg_pool import AsyncConnectionPool

        self.url = url
        # Opened on first use (on the running loop), never at import or construction.
        self._pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            open=False,
            kwargs={"autocommit": True},
            # How long a transaction waits for a connection: a database gone away fails the
            # work (taken up again later) instead of holding it for psycopg's 30 s.
            timeout=CONNECTION_WAIT_S,
        )
        self._opened = False
        self._opening = asyncio.Lock()

    async def _open(self) -> None:
        async with self._opening:
            if not self._opened:
                await self._pool.open(wait=True, timeout=10)
                self._opened = True

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One pooled connection in one transaction (READ COMMITTED, row locks where asked)."""
        await self._open()
        async with self._pool.connection() as conn, conn.transaction():
            yield _PostgresTransaction(conn)

    async def check_writable(self) -> None:
        """A transaction that is allowed to write (not a read-only standby)."""
        async with self.transaction() as tx:
            row = await tx.fetch_one("SHOW transaction_read_only")
            if row is not None and row[0] == "on":
                raise RuntimeError("the state store's database is read-only")

    async def close(self) -> None:
        """Closes the pool's connections."""
        if self._opened:
            # Bounded: a database gone away must not hold the gateway's stop for long.
            await self._pool.close(timeout=5.0)
            self._opened = False


class _PostgresTransaction:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        cursor = await self._conn.execute(_pg(sql), tuple(params))
        return int(cursor.rowcount)

    async def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        async with self._conn.cursor() as cursor:
            await cursor.executemany(_pg(sql), [tuple(r) for r in rows])

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        cursor = await self._conn.execute(_pg(sql), tuple(params))
        return [tuple(r) for r in await cursor.fetchall()]

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        cursor = await self._conn.execute(_pg(sql), tuple(params))
        row = await cursor.fetchone()
        return tuple(row) if row is not None else None


def _pg(sql: str) -> str:
    """The repositories' `?` placeholders as psycopg's `%s` (our SQL holds no other ? or %)."""
    return sql.replace("%", "%%").replace("?", "%s")
