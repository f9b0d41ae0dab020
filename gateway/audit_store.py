"""The durable, hash-chained log of personal-information queries (contract §5), in SQLite."""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

URL_PREFIX = "sqlite://"
GENESIS_HASH = "0" * 64
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
_COLUMNS = (
    "id, at, client_id, role, operation, purpose, authorization_ref, target, outcome, reason, "
    "prev_hash, hash"
)
_INSERT = f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_Row = tuple[int, str, str, str, str, str | None, str | None, str, str, str | None, str, str]


class AuditOutcome(enum.StrEnum):
    """Whether a logged personal query was answered."""

    GRANTED = "GRANTED"
    DENIED = "DENIED"


@dataclass(frozen=True, slots=True)
class AuditRequest:
    """What the personal-query guard asks to be logged, before it answers."""

    at: datetime
    client_id: str
    role: str
    operation: str
    purpose: str | None
    authorization_ref: str | None
    target: str
    outcome: AuditOutcome
    reason: str | None

    def __post_init__(self) -> None:
        # The stored text carries the offset; a naive time would be ambiguous forever.
        if self.at.utcoffset() is None:
            raise ValueError("AuditRequest.at must be timezone-aware")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A committed entry, as record() returns it and page() reads it back."""

    id: int
    at: datetime
    client_id: str
    role: str
    operation: str
    purpose: str | None
    authorization_ref: str | None
    target: str
    outcome: AuditOutcome
    reason: str | None
    prev_hash: str
    hash: str


class AuditUnavailable(Exception):
    """The entry could not be written (or the log read); a personal query must then be denied."""


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


def sqlite_path(url: str) -> Path:
    """The file behind an [audit] url; used by config checks, the log and verify."""
    if not url.startswith(URL_PREFIX):
        raise ValueError("must be sqlite:// followed by a file path")
    rest = url[len(URL_PREFIX) :]
    if not rest or rest.endswith("/"):
        raise ValueError("must name a file after sqlite://")
    if any(c in rest for c in "?#\x00"):
        # The rest is taken literally as a path; SQLite URI options would be silently misread.
        raise ValueError("takes a plain file path, without ?query or #fragment")
    path = Path(rest)
    if path.name == ":memory:":
        raise ValueError("must be a file: an in-memory database is not durable")
    return path


def entry_hash(
    *,
    id: int,
    at: datetime | str,
    client_id: str,
    role: str,
    operation: str,
    purpose: str | None,
    authorization_ref: str | None,
    target: str,
    outcome: str,
    reason: str | None,
    prev_hash: str,
) -> str:
    """SHA-256 hex of an entry; used when writing and when verifying, so both agree."""
    # `at` is hashed as stored: ISO 8601 with its offset.
    at_text = at.isoformat() if isinstance(at, datetime) else at
    fields = [
        id,
        at_text,
        client_id,
        role,
        operation,
        purpose,
        authorization_ref,
        target,
        str(outcome),
        reason,
        prev_hash,
    ]
    canonical = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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
                entry = _chain(last_id + offset, request, prev_hash)
                entries.append(entry)
                prev_hash = entry.hash
            conn.executemany(_INSERT, [_row(e) for e in entries])
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
        return [_from_row(row) for row in rows[:first]], len(rows) > first


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


def _chain(id_: int, request: AuditRequest, prev_hash: str) -> AuditEntry:
    digest = entry_hash(
        id=id_,
        at=request.at,
        client_id=request.client_id,
        role=request.role,
        operation=request.operation,
        purpose=request.purpose,
        authorization_ref=request.authorization_ref,
        target=request.target,
        outcome=request.outcome,
        reason=request.reason,
        prev_hash=prev_hash,
    )
    return AuditEntry(
        id=id_,
        at=request.at,
        client_id=request.client_id,
        role=request.role,
        operation=request.operation,
        purpose=request.purpose,
        authorization_ref=request.authorization_ref,
        target=request.target,
        outcome=AuditOutcome(request.outcome),
        reason=request.reason,
        prev_hash=prev_hash,
        hash=digest,
    )


def _row(entry: AuditEntry) -> _Row:
    return (
        entry.id,
        entry.at.isoformat(),
        entry.client_id,
        entry.role,
        entry.operation,
        entry.purpose,
        entry.authorization_ref,
        entry.target,
        entry.outcome.value,
        entry.reason,
        entry.prev_hash,
        entry.hash,
    )


def _from_row(row: Sequence[Any]) -> AuditEntry:
    id_, at, client_id, role, operation, purpose, ref, target, outcome, reason, prev, digest = row
    return AuditEntry(
        id=id_,
        at=datetime.fromisoformat(at),
        client_id=client_id,
        role=role,
        operation=operation,
        purpose=purpose,
        authorization_ref=ref,
        target=target,
        outcome=AuditOutcome(outcome),
        reason=reason,
        prev_hash=prev,
        hash=digest,
    )


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
    names = _COLUMNS.split(", ")
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
            recomputed: str | None = entry_hash(**dict(zip(names[:-1], row[:-1], strict=True)))
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
