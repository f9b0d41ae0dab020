"""The durable, hash-chained log of personal-information queries (contract §5).

The writer (AuditLog) and the SQLite store are here; the PostgreSQL store that several
replicas share is gateway/audit_pg.py. `audit verify` (verify_chain) reads either.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
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
    entry_seal,
    head_seal,
    seal_matches,
    stored_row,
    unstorable,
)
from gateway.config import ConfigError
from gateway.config_state import POSTGRES_PREFIXES
from store.database_url import sqlite_path

log = logging.getLogger(__name__)

# Bounds one transaction; a longer queue is simply committed in several.
MAX_BATCH = 1000
# contract §5 key_file: HMAC-SHA256 keys shorter than its block's half are guessable in
# principle; 32 random bytes is what `head -c 32 /dev/urandom` gives.
MIN_KEY_BYTES = 32
MAKE_KEY = "head -c 32 /dev/urandom > FILE; chmod 600 FILE"

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
    hash TEXT NOT NULL,
    seal TEXT
);
CREATE INDEX IF NOT EXISTS audit_log_client ON audit_log (client_id, id);
"""
_COLUMNS = ", ".join(STORED_FIELDS)
_INSERT = f"INSERT INTO audit_log ({_COLUMNS}) VALUES ({', '.join('?' * len(STORED_FIELDS))})"
# Stores written before the key existed have no seal column until a gateway migrates them;
# readers (auditLog, `audit verify`) read such a store as all unsealed.
_COLUMNS_WITHOUT_SEAL = ", ".join((*STORED_FIELDS[:-1], "NULL AS seal"))

_FileId = tuple[int, int]


class StoreChanged(Exception):
    """The store is not the one this gateway may append to: gone, replaced, cut short, forged."""


@dataclass(frozen=True)
class AuditKey:
    """The audit key of `[audit] key_file`, read once at start, and where its head is kept."""

    path: Path
    material: bytes = field(repr=False)

    @property
    def head_path(self) -> Path:
        """Where the store and `audit verify` keep and read the sealed head of the chain."""
        # Beside the key, away from the store: wiping the store's directory cannot take
        # the evidence of the chain's length with it.
        return self.path.with_name(self.path.name + ".head")

    @property
    def lock_path(self) -> Path:
        """Locked while a head is replaced, so gateways sharing a store never set it back."""
        return self.path.with_name(self.path.name + ".head.lock")


def load_audit_key(path: Path) -> AuditKey:
    """Read `[audit] key_file`; used at start by the gateway and by `audit verify`."""
    path = path.absolute()
    how = f"make one with: {MAKE_KEY.replace('FILE', str(path))}"
    try:
        material = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(
            f"[audit] key_file {path} cannot be read ({exc.strerror}); {how}"
        ) from None
    if not material.strip():
        raise ConfigError(f"[audit] key_file {path} is empty; {how}")
    if len(material) < MIN_KEY_BYTES:
        raise ConfigError(
            f"[audit] key_file {path} holds {len(material)} bytes, at least {MIN_KEY_BYTES} "
            f"are required; {how}"
        )
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "[audit] key_file %s is readable or writable by group or others (mode %o); "
            "anyone who can read it can forge the audit chain: chmod 600 it",
            path,
            stat.S_IMODE(mode),
        )
    return AuditKey(path, material)


@dataclass(frozen=True, slots=True)
class SealedHead:
    """The chain's head as last sealed: entries from `sealed_from` on carry seals."""

    sealed_from: int
    id: int
    hash: str

    def seal(self, key: bytes) -> str:
        # sealed_from is sealed too: stripping the seals of later entries is then visible.
        return head_seal(key, self.sealed_from, self.id, self.hash)


def _read_head(key: AuditKey) -> SealedHead | None:
    """The head file's record, None if there is none; StoreChanged if it is not the key's."""
    try:
        text = key.head_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreChanged(f"the sealed head {key.head_path} cannot be read: {exc}") from None
    try:
        record = json.loads(text)
        head = SealedHead(int(record["sealed_from"]), int(record["id"]), str(record["hash"]))
        stored = record["seal"]
    except (ValueError, KeyError, TypeError):
        raise StoreChanged(f"the sealed head {key.head_path} is not a head record") from None
    if not seal_matches(head.seal(key.material), stored):
        raise StoreChanged(
            f"the sealed head {key.head_path} does not match the key "
            "(rewritten without it, or another key is configured)"
        )
    return head


def _write_head(key: AuditKey, head: SealedHead) -> None:
    """Atomically replace the head (temp file, fsync, rename), never by an older one."""
    record = {
        "sealed_from": head.sealed_from,
        "id": head.id,
        "hash": head.hash,
        "seal": head.seal(key.material),
    }
    with open(key.lock_path, "a+b") as lock:
        # Gateways sharing a store write heads after their own commits: the lock and the
        # comparison keep the head from going back when they finish out of order.
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = _read_head(key)
        if current is not None and current.id >= head.id:
            return
        temp = key.head_path.with_name(f".{key.head_path.name}.{os.getpid()}.tmp")
        with open(temp, "w", encoding="utf-8") as out:
            json.dump(record, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, key.head_path)
        directory = os.open(key.head_path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself is durable too
        finally:
            os.close(directory)


@dataclass(frozen=True)
class VerifyResult:
    """What `credit-gateway audit verify` reports: entries checked and the first broken one."""

    entries: int
    broken_id: int | None = None
    problem: str | None = None
    # With a key: entries whose seal was checked, entries written before sealing started,
    # and the id the sealed head names (None without a key or head).
    sealed: int = 0
    unsealed: int = 0
    head_id: int | None = None
    keyed: bool = False

    @property
    def ok(self) -> bool:
        """True when the whole chain checked out (an existing, empty log is intact)."""
        return self.problem is None


class AuditEngine(Protocol):
    """Where an AuditLog's entries go: a SQLite file (below) or PostgreSQL (gateway/audit_pg.py).

    Every method but read_page runs on the log's one writer thread, one call at a time.
    """

    @property
    def where(self) -> Path | str:
        """What log lines and messages name: the store's file, or its database (no password)."""
        ...

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        """The engine's errors meaning the store cannot be opened or read now."""
        ...

    def open(self) -> None:
        """Connects, creating the store if this gateway never had it; raises what a write would."""
        ...

    def append(self, requests: Sequence[AuditRequest]) -> list[AuditEntry]:
        """Chains the requests after the last entry and commits them in one transaction."""
        ...

    def check_write(self, busy_timeout_s: float) -> None:
        """The readiness probe (AuditLog.check_writable): an append could be made now."""
        ...

    def read_page(
        self, first: int, after: int | None, client_id: str | None
    ) -> tuple[list[AuditEntry], bool]:
        """AuditLog.page's rows, on any thread."""
        ...

    def is_store_failure(self, exc: BaseException) -> bool:
        """Whether the store itself failed (every entry would), not something in one entry."""
        ...

    def close(self) -> None:
        """Closes the writer's connection."""
        ...


def _engine_for(url: str, timeout_s: float, key: AuditKey | None) -> AuditEngine:
    if url.startswith(POSTGRES_PREFIXES):
        # Imported here: a gateway with a SQLite audit store never loads the driver.
        from gateway.audit_pg import PostgresAuditEngine

        return PostgresAuditEngine(url, timeout_s, key)
    # Absolute now, so a later change of working directory cannot split the log.
    return _SqliteEngine(sqlite_path(url).absolute(), timeout_s, key)


def open_audit_log(
    url: str,
    timeout_s: float = 2.0,
    key: AuditKey | None = None,
    on_write: Callable[[float, int, bool], None] | None = None,
) -> AuditLog:
    """The runtime's audit log for `[audit] url`: sqlite:// (one host) or postgresql:// (§11)."""
    return AuditLog(url, timeout_s, key, on_write)


class AuditLog:
    """The gateway's audit store; entries queued together are committed in one transaction.

    The writer (queue, group commit, one-by-one retries, the readiness probe) is the same for
    every store; `url` picks where the entries go: a sqlite:// file, or a postgresql://
    database that several replicas append to (gateway/audit_pg.py).
    """

    def __init__(
        self,
        url: str,
        timeout_s: float = 2.0,
        key: AuditKey | None = None,
        on_write: Callable[[float, int, bool], None] | None = None,
    ) -> None:
        self._engine = _engine_for(url, timeout_s, key)
        # Named in log lines: the store's file, or its database (never a password).
        self.path: Path | str = self._engine.where
        self.timeout_s = timeout_s
        self.key = key
        # Told each batch's commit time, its size and whether it committed (the metrics).
        self._on_write = on_write
        # The readiness probe still queued or running on the writer, if any.
        self._probe: asyncio.Future[None] | None = None
        # One thread owns the write connection; the event loop never waits on the store.
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
        """Transactions that could not be committed; their entries' calls were denied."""
        return self._failures

    async def start(self) -> None:
        """Open or create the store and start the writer; a failure is logged, never raised."""
        if self._writer is not None or self._closed:
            return
        self._queue = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_batches(), name="audit-writer")
        failures: tuple[type[BaseException], ...] = (*self._engine.errors, OSError, StoreChanged)
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._engine.open)
        except failures as exc:
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
        await asyncio.get_running_loop().run_in_executor(self._executor, self._engine.close)
        self._executor.shutdown(wait=True)

    async def record(self, request: AuditRequest) -> AuditEntry:
        """Log one request; returns once it is committed, else raises AuditUnavailable."""
        if self._closed or self._queue is None:
            raise AuditUnavailable("the audit log is not running")
        # Checked before it joins a batch: an entry that cannot be stored is refused alone.
        problem = unstorable(request)
        if problem is not None:
            raise AuditUnavailable(f"audit entry refused: {problem}")
        future: asyncio.Future[AuditEntry] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(request, future))
        return await future

    async def page(
        self, first: int, after: int | None, client_id: str | None
    ) -> tuple[list[AuditEntry], bool]:
        """Entries newest first, older than entry `after`, optionally one client's; + has-next."""
        failures: tuple[type[BaseException], ...] = (*self._engine.errors, ValueError, TypeError)
        try:
            return await asyncio.to_thread(self._engine.read_page, first, after, client_id)
        except failures as exc:
            raise AuditUnavailable(f"the audit log cannot be read: {exc}") from exc

    async def _write_batches(self) -> None:
        assert self._queue is not None
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
            await self._write(batch)

    async def _write(self, batch: list[_Pending]) -> None:
        store_failure = self._engine.is_store_failure
        try:
            await self._commit_batch(batch)
        except Exception as exc:
            if len(batch) == 1 or store_failure(exc):
                _deny(batch, exc)
                return
            # Something in one entry failed the whole batch: each is tried alone, so only
            # the entry at fault is refused and everyone else's call goes on.
            log.warning("audit batch of %d entries retried one by one: %s", len(batch), exc)
            for index, pending in enumerate(batch):
                try:
                    await self._commit_batch([pending])
                except Exception as single:
                    _deny([pending], single)
                    if store_failure(single):
                        _deny(batch[index + 1 :], single)
                        return

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        requests = [p.request for p in batch]
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            entries = await loop.run_in_executor(self._executor, self._engine.append, requests)
        except Exception as exc:
            self._failures += 1
            self._timed(started, len(batch), ok=False)
            log.error("audit batch of %d entries not written: %s", len(batch), exc)
            raise
        self._timed(started, len(batch), ok=True)
        self._commits += 1
        for pending, entry in zip(batch, entries, strict=True):
            if not pending.future.done():  # the caller may have gone away
                pending.future.set_result(entry)

    def _timed(self, started: float, entries: int, ok: bool) -> None:
        if self._on_write is not None:
            self._on_write(time.perf_counter() - started, entries, ok)

    @property
    def waiting(self) -> int:
        """Used by the metrics at each scrape: entries queued for the writer, not yet taken."""
        return self._queue.qsize() if self._queue is not None else 0

    async def check_writable(self, busy_timeout_s: float) -> None:
        """Used by /readyz: returns when an entry could be appended now; appends nothing.

        On the writer thread, as a write would. SQLite: the store opens (or is created, if
        this gateway never had it), is still the file the gateway opened, still holds the
        last entry this gateway committed, its sealed head (with a key) still matches the
        key, and SQLite's write lock can be taken within `busy_timeout_s` (BEGIN IMMEDIATE,
        then ROLLBACK). PostgreSQL: gateway/audit_pg.py. Raises what a write would have
        failed with.
        """
        if self._closed or self._writer is None:
            raise AuditUnavailable("the audit log is not running")
        if self._probe is not None and not self._probe.done():
            # One probe at a time: a stuck writer is not sent a queue of them.
            raise TimeoutError("the audit writer has not finished the previous check")
        loop = asyncio.get_running_loop()
        probe = loop.run_in_executor(self._executor, self._engine.check_write, busy_timeout_s)
        # Retrieved even when the caller stopped waiting, so asyncio reports nothing twice.
        probe.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._probe = probe
        await asyncio.shield(probe)


class _SqliteEngine:
    """The audit store in one SQLite file; processes on one host may share it."""

    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(self, path: Path, timeout_s: float, key: AuditKey | None) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.key = key
        # Touched only by the writer thread: the connection, the identities of the files it
        # opened (store, write-ahead log), whether the store was ever opened, and the last
        # entry this gateway committed.
        self._conn: sqlite3.Connection | None = None
        self._files: tuple[_FileId, _FileId | None] | None = None
        self._opened = False
        self._last_committed: tuple[int, str] | None = None

    @property
    def where(self) -> Path:
        return self.path

    def open(self) -> None:
        self._connection()

    def close(self) -> None:
        self._drop_connection()

    def is_store_failure(self, exc: BaseException) -> bool:
        if isinstance(exc, StoreChanged | OSError | sqlite3.OperationalError):
            return True
        # Exactly DatabaseError: "file is not a database" and the like; its subclasses
        # (IntegrityError, DataError …) are about the rows being written.
        return type(exc) is sqlite3.DatabaseError

    def check_write(self, busy_timeout_s: float) -> None:
        try:
            conn = self._connection()
            self._check_files()
            # Waits for another process's lock no longer than the probe's own bound.
            conn.execute(f"PRAGMA busy_timeout = {round(busy_timeout_s * 1000)}")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._check_continuity(conn)
                    if self.key is not None:
                        _read_head(self.key)
                finally:
                    _rollback(conn)
            finally:
                conn.execute(f"PRAGMA busy_timeout = {round(self.timeout_s * 1000)}")
        except BaseException:
            # As after a failed write: the next write (or check) opens the store afresh.
            self._drop_connection()
            raise

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # Once this gateway has had its store, a missing file is never made anew:
            # a fresh empty chain would silently stand in for the history it lost.
            conn = _open_store(self.path, self.timeout_s, create=not self._opened)
            try:
                self._files = (_file_id_of(self.path), _file_id(_wal_path(self.path)))
            except OSError:
                conn.close()
                raise
            self._conn = conn
            self._opened = True
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            conn, self._conn, self._files = self._conn, None, None
            try:
                conn.close()
            except sqlite3.Error as exc:
                log.error("audit store %s not closed cleanly: %s", self.path, exc)

    def append(self, requests: Sequence[AuditRequest]) -> list[AuditEntry]:
        try:
            return self._append(requests)
        except BaseException:
            # A connection never outlives a failure: a store opened read-only, or one whose
            # file was replaced, is opened afresh by the next batch once that is fixed.
            self._drop_connection()
            raise

    def _append(self, requests: Sequence[AuditRequest]) -> list[AuditEntry]:
        conn = self._connection()
        self._check_files()
        # IMMEDIATE takes the write lock before the last row is read, so another process
        # appending to the same file cannot fork the chain.
        conn.execute("BEGIN IMMEDIATE")
        try:
            last = conn.execute(
                "SELECT id, hash, seal FROM audit_log ORDER BY id DESC LIMIT 1"
            ).fetchone()
            last_id, prev_hash = (int(last[0]), str(last[1])) if last else (0, GENESIS_HASH)
            self._check_continuity(conn)
            head = self._check_seals(conn, last_id, prev_hash, last[2] if last else None)
            key = self.key.material if self.key is not None else None
            entries = []
            for offset, request in enumerate(requests, start=1):
                entry = chain(last_id + offset, request, prev_hash, key)
                entries.append(entry)
                prev_hash = entry.hash
            conn.executemany(_INSERT, [stored_row(e) for e in entries])
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        # Committed, but to the file the config names? If it was deleted or replaced
        # meanwhile, the entries live only in an orphaned inode: the calls are denied.
        self._check_files()
        if self.key is not None and head is not None:
            _write_head(self.key, SealedHead(head.sealed_from, entries[-1].id, entries[-1].hash))
        self._last_committed = (entries[-1].id, entries[-1].hash)
        return entries

    def _check_files(self) -> None:
        """The path (and its write-ahead log) still name the files the connection has open."""
        assert self._files is not None
        store, wal = self._files
        current = _file_id(self.path)
        if current != store:
            what = "deleted" if current is None else "replaced"
            raise StoreChanged(
                f"the audit store {self.path} was {what} while the gateway was running; "
                "person queries are denied until it is restored or the gateway restarted"
            )
        current_wal = _file_id(_wal_path(self.path))
        if wal is None:
            # SQLite creates the write-ahead log on first use; from then on it must stay.
            self._files = (store, current_wal)
        elif current_wal != wal:
            raise StoreChanged(
                f"the audit store's write-ahead log {_wal_path(self.path)} was deleted or "
                "replaced while the gateway was running; committed entries may be lost"
            )

    def _check_continuity(self, conn: sqlite3.Connection) -> None:
        """The last entry this gateway committed is still there, unchanged."""
        if self._last_committed is None:
            return
        id_, digest = self._last_committed
        if _hash_at(conn, id_) != digest:
            raise StoreChanged(
                f"entry {id_}, committed by this gateway, is no longer in {self.path} "
                "(the store was replaced, restored from an older copy or cut short)"
            )

    def _check_seals(
        self, conn: sqlite3.Connection, last_id: int, last_hash: str, last_seal: object
    ) -> SealedHead | None:
        """Refuses to append to a store whose seals or head disagree with the key."""
        if self.key is None:
            if last_seal is not None:
                raise StoreChanged(
                    f"the audit store {self.path} is sealed; start the gateway with its "
                    "[audit] key_file, or unsealed entries would break its chain"
                )
            return None
        key = self.key.material
        if last_seal is not None and not seal_matches(entry_seal(key, last_hash), last_seal):
            raise StoreChanged(
                f"entry {last_id} of {self.path} is not sealed with [audit] key_file "
                "(rewritten without the key, or another key is configured)"
            )
        head = _read_head(self.key)
        if head is None:
            if last_seal is not None:
                raise StoreChanged(
                    f"the sealed head {self.key.head_path} is missing while {self.path} "
                    "holds sealed entries; its newest entries may have been cut off"
                )
            # The first keyed write to this store: sealing starts after what is there now,
            # and the head vouches for that before anything is appended.
            head = SealedHead(last_id + 1, last_id, last_hash)
            _write_head(self.key, head)
            return head
        if head.id > last_id or _hash_at(conn, head.id) != head.hash:
            raise StoreChanged(
                f"{self.path} does not hold entry {head.id} as its sealed head "
                f"{self.key.head_path} records it (entries cut off or the store replaced)"
            )
        return head

    def read_page(
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
        conn = _open_read_only(self.path, self.timeout_s)
        try:
            sql = f"SELECT {_columns(conn)} FROM audit_log {where} ORDER BY id DESC LIMIT ?"
            # One more than asked tells whether a next page exists.
            rows = conn.execute(sql, [*params, first + 1]).fetchall()
        finally:
            conn.close()
        return [entry_from_row(row) for row in rows[:first]], len(rows) > first


@dataclass(frozen=True, slots=True)
class _Pending:
    request: AuditRequest
    future: asyncio.Future[AuditEntry]


def _deny(batch: Iterable[_Pending], exc: BaseException) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(AuditUnavailable(f"audit entry not written: {exc}"))


def _file_id(path: Path) -> _FileId | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def _file_id_of(path: Path) -> _FileId:
    found = _file_id(path)
    if found is None:
        raise StoreChanged(f"the audit store {path} vanished as it was opened")
    return found


def _wal_path(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _hash_at(conn: sqlite3.Connection, id_: int) -> str | None:
    if id_ == 0:
        return GENESIS_HASH
    row = conn.execute("SELECT hash FROM audit_log WHERE id = ?", (id_,)).fetchone()
    return None if row is None else str(row[0])


def _open_store(path: Path, timeout_s: float, create: bool) -> sqlite3.Connection:
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    # mode=rwc creates a missing file, mode=rw fails on one; timeout is SQLite's
    # busy_timeout: how long a locked store is waited for.
    uri = f"file:{quote(path.as_posix())}?mode={'rwc' if create else 'rw'}"
    conn = sqlite3.connect(uri, uri=True, timeout=timeout_s, isolation_level=None)
    try:
        (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"journal_mode is {mode}, WAL is required")
        # FULL: a commit is on disk (WAL fsynced) before record() returns.
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
        _add_seal_column(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _add_seal_column(conn: sqlite3.Connection) -> None:
    """Migrates a store written before the key existed: its entries stay, unsealed."""
    if _has_seal_column(conn):
        return
    # Under the write lock, so two gateways opening one old store migrate it once.
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _has_seal_column(conn):
            conn.execute("ALTER TABLE audit_log ADD COLUMN seal TEXT")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _has_seal_column(conn: sqlite3.Connection) -> bool:
    return any(row[1] == "seal" for row in conn.execute("PRAGMA table_info(audit_log)"))


def _columns(conn: sqlite3.Connection) -> str:
    return _COLUMNS if _has_seal_column(conn) else _COLUMNS_WITHOUT_SEAL


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


def verify_chain(url: str, key: AuditKey | None = None) -> VerifyResult:
    """Walk the whole log oldest first, and with a key its seals and head; `audit verify`."""
    if url.startswith(POSTGRES_PREFIXES):
        from gateway.audit_pg import verify_postgres

        return verify_postgres(url, key)
    path = sqlite_path(url)
    if not path.is_file():
        return VerifyResult(0, problem=f"audit store {path} does not exist")
    head: SealedHead | None = None
    if key is not None:
        # Read before the entries: a head is written after its commit, so any head read
        # now names an entry the snapshot below holds.
        try:
            head = _read_head(key)
        except StoreChanged as exc:
            return VerifyResult(0, problem=str(exc), keyed=True)
    try:
        conn = _open_read_only(path.absolute(), timeout_s=5.0)
    except sqlite3.Error as exc:
        return VerifyResult(0, problem=f"audit store {path} cannot be opened: {exc}")
    try:
        # One SELECT reads one snapshot, even while a gateway keeps appending.
        rows = conn.execute(f"SELECT {_columns(conn)} FROM audit_log ORDER BY id")
        return ChainWalk(key, head, f"the sealed head {key.head_path}" if key else "").run(rows)
    except sqlite3.Error as exc:
        if "no such table" in str(exc):
            return VerifyResult(0, problem=f"audit store {path} has no audit_log table")
        return VerifyResult(0, problem=f"audit store {path} cannot be read: {exc}")
    finally:
        conn.close()


class ChainWalk:
    """One pass over the rows oldest first: ids, hashes, links, seals, then the head."""

    def __init__(self, key: AuditKey | None, head: SealedHead | None, head_name: str) -> None:
        self.key = key
        self.head = head
        # "the sealed head <where it is kept>", for the message when it is missing.
        self.head_name = head_name
        self.count = 0
        self.sealed = 0
        self.unsealed = 0

    def result(self, broken_id: int | None = None, problem: str | None = None) -> VerifyResult:
        return VerifyResult(
            self.count,
            broken_id,
            problem,
            sealed=self.sealed,
            unsealed=self.unsealed,
            head_id=self.head.id if self.head is not None else None,
            keyed=self.key is not None,
        )

    def run(self, rows: Iterable[Sequence[Any]]) -> VerifyResult:
        expected_id, prev_hash, head_hash = 1, GENESIS_HASH, GENESIS_HASH
        for row in rows:
            id_, stored_prev, stored_hash, seal = row[0], row[-3], row[-2], row[-1]
            if id_ < expected_id:
                return self.result(id_, "id out of sequence: ids start at 1 (entry inserted)")
            if id_ > expected_id:
                gap = (
                    f"entry {expected_id} is"
                    if id_ == expected_id + 1
                    else f"entries {expected_id}-{id_ - 1} are"
                )
                return self.result(id_, f"{gap} missing (removed from the log)")
            try:
                # Stored values as they are: a changed type is a change too.
                recomputed: str | None = entry_hash(
                    **dict(zip(STORED_FIELDS[:-2], row[:-2], strict=True))
                )
            except (TypeError, ValueError):
                recomputed = None
            if recomputed != stored_hash:
                return self.result(id_, "hash does not match its fields (entry altered)")
            if stored_prev != prev_hash:
                before = "the genesis value" if id_ == 1 else f"the hash of entry {id_ - 1}"
                return self.result(
                    id_, f"prev_hash is not {before} (an entry was removed, replaced or inserted)"
                )
            problem = self._check_seal(id_, stored_hash, seal)
            if problem is not None:
                return self.result(id_, problem)
            if self.head is not None and id_ == self.head.id:
                head_hash = stored_hash
            expected_id, prev_hash, self.count = id_ + 1, stored_hash, self.count + 1
        return self._check_head(head_hash)

    def _check_seal(self, id_: int, digest: str, seal: object) -> str | None:
        sealing_from = self.head.sealed_from if self.head is not None else None
        if seal is None:
            if self.sealed or (sealing_from is not None and id_ >= sealing_from):
                return "no seal where entries are sealed (seal removed, or written without the key)"
            self.unsealed += 1
            return None
        if sealing_from is not None and id_ < sealing_from:
            return f"sealed, but the sealed head says sealing started at entry {sealing_from}"
        if self.key is not None and not seal_matches(entry_seal(self.key.material, digest), seal):
            return "seal does not match (entry rewritten without the key, or another key)"
        self.sealed += 1
        return None

    def _check_head(self, head_hash: str) -> VerifyResult:
        if self.key is None:
            return self.result()
        if self.head is None:
            if self.sealed:
                return self.result(
                    None,
                    f"{self.head_name} is missing: the newest entries may have been cut off",
                )
            return self.result()
        if self.head.id > self.count:
            first, last = self.count + 1, self.head.id
            missing = f"entry {first} is" if first == last else f"entries {first}-{last} are"
            return self.result(
                first,
                f"{missing} missing: the sealed head says the chain reached entry {last} "
                "(the newest entries were cut off)",
            )
        if head_hash != self.head.hash:
            return self.result(
                self.head.id, "hash is not the one the sealed head records (entry replaced)"
            )
        return self.result()
