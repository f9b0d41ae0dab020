"""The durable, hash-chained log of personal-information queries (contract §5), in SQLite."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from core.audit import (
    GENESIS_HASH,
    STORED_FIELDS,
    AuditEntry,
    AuditRequest,
    AuditUnavailable,
    chain,
    entry_from_row,
    entry_hash,
    stored_row,
)
from gateway.database_url import sqlite_path

log = logging.getLogger(__name__)

# Bounds one transaction; a longer queue is simply committed in several.
MAX_BATCH = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    client_id TEXT NOT NULL,
    role TEXT NOT NULL,
    operation TEXT NOT NULL,
    purpose TEXT,
    authorization_ref TEXT,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_client ON audit_log (client_id, id);
"""
_COLUMNS = ", ".join(STORED_FIELDS)
_INSERT = f"INSERT INTO audit_log ({_COLUMNS}) VALUES ({', '.join('?' * len(STORED_FIELDS))})"


@dataclass(frozen=True)
class VerifyResult:
    """What `credit-gateway audit verify` reports: entries checked and the first broken one."""

    entries: int
    broken_id: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when the whole chain checked out (an existing, empty log is intact)."""
        return self.problem is None


class AuditLog:
    """The gateway's audit store; entries queued together are committed in one transaction."""

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        # Absolute now, so a later change of working directory cannot split the log.
        self.path = sqlite_path(url).absolute()
        self.timeout_s = timeout_s
        self._conn: sqlite3.Connection | None = None  # touched only by the writer thread
        # One thread owns the write connection; the event loop never waits on disk.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-writer")
        self._queue: asyncio.Queue[_Pending | None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self._commits = 0
        self._failures = 0

    @property
    def commits(self) -> int:
        """Transactions committed so far (each holds one batch); for operators and tests."""
        return self._commits

    @property
    def failures(self) -> int:
        """Batches that could not be written, each denied to all its callers."""
        return self._failures

    async def start(self) -> None:
        """Open or create the store and start the writer; a failure is logged, never raised."""
        if self._writer is not None or self._closed:
            return
        self._queue = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_batches(), name="audit-writer")
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._connection)
        except (sqlite3.Error, OSError) as exc:
            # Subjects can still be served; record() retries and denies while this persists.
            log.warning(
                "audit store %s cannot be opened (%s); personal queries are denied until it can",
                self.path,
                exc,
            )

    async def close(self) -> None:
        """Commit what is already queued, stop the writer and close the store."""
        if self._closed:
            return
        self._closed = True
        if self._queue is not None and self._writer is not None:
            self._queue.put_nowait(None)
            await self._writer
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_connection)
        self._executor.shutdown(wait=True)

    async def record(self, request: AuditRequest) -> AuditEntry:
        """Log one request; returns once it is committed, else raises AuditUnavailable."""
        if self._closed or self._queue is None:
            raise AuditUnavailable("the audit log is not running")
        future: asyncio.Future[AuditEntry] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(request, future))
        return await future

    async def page(
        self, first: int, after: int | None, client_id: str | None
    ) -> tuple[list[AuditEntry], bool]:
        """Entries newest first, older than entry `after`, optionally one client's; + has-next."""
        try:
            return await asyncio.to_thread(self._read_page, first, after, client_id)
        except (sqlite3.Error, ValueError, TypeError) as exc:
            raise AuditUnavailable(f"the audit log cannot be read: {exc}") from exc

    async def _write_batches(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            # Everything that queued up meanwhile rides in the same transaction.
            while len(batch) < MAX_BATCH and not self._queue.empty():
                pending = self._queue.get_nowait()
                if pending is None:
                    stopping = True
                    break
                batch.append(pending)
            requests = [p.request for p in batch]
            try:
                entries = await loop.run_in_executor(self._executor, self._commit, requests)
            except Exception as exc:  # every failure of the store denies the whole batch
                self._failures += 1
                log.error("audit batch of %d entries not written: %s", len(batch), exc)
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(
                            AuditUnavailable(f"audit entry not written: {exc}")
                        )
                continue
            self._commits += 1
            for pending, entry in zip(batch, entries, strict=True):
                if not pending.future.done():  # the caller may have gone away
                    pending.future.set_result(entry)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = _open_store(self.path, self.timeout_s)
        return self._conn

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _commit(self, requests: Sequence[AuditRequest]) -> list[AuditEntry]:
        conn = self._connection()
        # IMMEDIATE takes the write lock before the last row is read, so another process
        # appending to the same file cannot fork the chain.
        conn.execute("BEGIN IMMEDIATE")
        try:
            last = conn.execute(
                "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1"
            ).fetchone()
            last_id, prev_hash = (int(last[0]), str(last[1])) if last else (0, GENESIS_HASH)
            entries = []
            for offset, request in enumerate(requests, start=1):
                entry = chain(last_id + offset, request, prev_hash)
                entries.append(entry)
                prev_hash = entry.hash
            conn.executemany(_INSERT, [stored_row(e) for e in entries])
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        return entries

    def _read_page(
        self, first: int, after: int | None, client_id: str | None
    ) -> tuple[list[AuditEntry], bool]:
        conditions: list[str] = []
        params: list[object] = []
        if after is not None:
            conditions.append("id < ?")
            params.append(after)
        if client_id is not None:
            conditions.append("client_id = ?")
            params.append(client_id)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"SELECT {_COLUMNS} FROM audit_log {where} ORDER BY id DESC LIMIT ?"
        conn = _open_read_only(self.path, self.timeout_s)
        try:
            # One more than asked tells whether a next page exists.
            rows = conn.execute(sql, [*params, first + 1]).fetchall()
        finally:
            conn.close()
        return [entry_from_row(row) for row in rows[:first]], len(rows) > first


@dataclass(frozen=True, slots=True)
class _Pending:
    request: AuditRequest
    future: asyncio.Future[AuditEntry]


def _open_store(path: Path, timeout_s: float) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # timeout is SQLite's busy_timeout: how long a locked store is waited for.
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    try:
        (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"journal_mode is {mode}, WAL is required")
        # FULL: a commit is on disk (WAL fsynced) before record() returns.
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn


def _open_read_only(path: Path, timeout_s: float) -> sqlite3.Connection:
    # mode=ro: reading never creates a missing store or writes to an existing one.
    uri = f"file:{quote(path.as_posix())}?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=timeout_s, isolation_level=None)


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.error("audit rollback failed: %s", exc)


def verify_chain(url: str) -> VerifyResult:
    """Walk the whole log oldest first; used by `credit-gateway audit verify`."""
    path = sqlite_path(url)
    if not path.is_file():
        return VerifyResult(0, problem=f"audit store {path} does not exist")
    try:
        conn = _open_read_only(path.absolute(), timeout_s=5.0)
    except sqlite3.Error as exc:
        return VerifyResult(0, problem=f"audit store {path} cannot be opened: {exc}")
    try:
        # One SELECT reads one snapshot, even while a gateway keeps appending.
        return _verify_rows(conn.execute(f"SELECT {_COLUMNS} FROM audit_log ORDER BY id"))
    except sqlite3.Error as exc:
        if "no such table" in str(exc):
            return VerifyResult(0, problem=f"audit store {path} has no audit_log table")
        return VerifyResult(0, problem=f"audit store {path} cannot be read: {exc}")
    finally:
        conn.close()


def _verify_rows(rows: Iterable[Sequence[Any]]) -> VerifyResult:
    expected_id, prev_hash, count = 1, GENESIS_HASH, 0
    for row in rows:
        id_, stored_hash, stored_prev = row[0], row[-1], row[-2]
        if id_ < expected_id:
            return VerifyResult(count, id_, "id out of sequence: ids start at 1 (entry inserted)")
        if id_ > expected_id:
            gap = (
                f"entry {expected_id} is"
                if id_ == expected_id + 1
                else f"entries {expected_id}-{id_ - 1} are"
            )
            return VerifyResult(count, id_, f"{gap} missing (removed from the log)")
        try:
            # Stored values as they are: a changed type is a change too.
            recomputed: str | None = entry_hash(
                **dict(zip(STORED_FIELDS[:-1], row[:-1], strict=True))
            )
        except (TypeError, ValueError):
            recomputed = None
        if recomputed != stored_hash:
            return VerifyResult(count, id_, "hash does not match its fields (entry altered)")
        if stored_prev != prev_hash:
            before = "the genesis value" if id_ == 1 else f"the hash of entry {id_ - 1}"
            return VerifyResult(
                count,
                id_,
                f"prev_hash is not {before} (an entry was removed, replaced or inserted)",
            )
        expected_id, prev_hash, count = id_ + 1, stored_hash, count + 1
    return VerifyResult(count)
