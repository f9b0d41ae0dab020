"""The audit store in PostgreSQL: all replicas append to one hash chain (contract §5, §11).

Two tables of its own, created at start when missing, in the database `[audit] url` names
(the `[store]` database may be the same one):

- `audit_log`: the entries, the columns of the SQLite store (docs/privacy.md).
- `audit_head`: one row. Every append locks it (`SELECT … FOR UPDATE`) before it reads the
  last entry, so appends from every replica are serialised: each transaction chains its
  batch after the entry the previous one committed, with the next ids, and a fork or a gap
  cannot be written (`id` is the primary key besides). With `[audit] key_file` the row also
  holds the chain's sealed head (the id where sealing started, the newest entry's id and
  hash, and their HMAC with the key), updated in the very transaction that appends. The
  replicas sharing a key share this head: a head file beside the key, as with SQLite, could
  not be shared by replicas on different hosts.

The writer (queue, group commit, retries) is AuditLog's (gateway/audit_store.py); this is
its engine, run on the log's one writer thread with a connection of its own.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from core.audit import (
    GENESIS_HASH,
    STORED_FIELDS,
    AuditEntry,
    AuditRequest,
    chain,
    entry_from_row,
    entry_seal,
    seal_matches,
    stored_row,
)
from gateway.audit_store import AuditKey, ChainWalk, SealedHead, StoreChanged, VerifyResult

log = logging.getLogger(__name__)

LOG_TABLE = "audit_log"
HEAD_TABLE = "audit_head"
# A statement running this much longer than [audit] timeout_s means the database is stuck;
# a transaction left idle this long (a frozen replica) gives the head lock back.
STUCK_S = 5.0
# `audit verify` waits this long for the database to answer a connection.
VERIFY_CONNECT_S = 10
APPLICATION_NAME = "credit-gateway audit"

_CREATE_LOG = f"""
CREATE TABLE IF NOT EXISTS {LOG_TABLE} (
    id BIGINT PRIMARY KEY CHECK (id > 0),
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
)"""
_CREATE_LOG_INDEX = f"CREATE INDEX IF NOT EXISTS audit_log_client ON {LOG_TABLE} (client_id, id)"
# One row (singleton is its key and always true); the head columns are NULL until the first
# keyed append.
_CREATE_HEAD = f"""
CREATE TABLE IF NOT EXISTS {HEAD_TABLE} (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    sealed_from BIGINT,
    id BIGINT,
    hash TEXT,
    seal TEXT
)"""
# Two replicas starting together on an empty database create the tables once.
_SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(hashtext('credit-gateway audit schema'))"
_COLUMNS = ", ".join(STORED_FIELDS)
_PLACEHOLDERS = ", ".join(["%s"] * len(STORED_FIELDS))
_INSERT = f"INSERT INTO {LOG_TABLE} ({_COLUMNS}) VALUES ({_PLACEHOLDERS})"
_LOCK_HEAD = (
    f"SELECT sealed_from, id, hash, seal, to_regclass('{LOG_TABLE}')::oid "
    f"FROM {HEAD_TABLE} WHERE singleton FOR UPDATE"
)
_LAST = f"SELECT id, hash, seal FROM {LOG_TABLE} ORDER BY id DESC LIMIT 1"
_LIMITS = (
    "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true), "
    "set_config('idle_in_transaction_session_timeout', %s, true), "
    "set_config('synchronous_commit', 'on', true)"
)


class AuditDatabaseError(OSError):
    """The audit database cannot be reached or written (readiness: cannot be written)."""


def shown_url(url: str) -> str:
    """The database a postgresql:// URL names, for log lines and messages: no password."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://(an invalid URL)"
    user = f"{params['user']}@" if params.get("user") else ""
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{params.get('host') or ''}{port}/{params.get('dbname') or ''}"


def connection_params(url: str, connect_timeout_s: float, name: str = APPLICATION_NAME) -> str:
    """The URL's parameters, with bounds on connecting and on a peer gone silent by default."""
    params: dict[str, Any] = dict(conninfo_to_dict(url))
    defaults = {
        "connect_timeout": max(2, math.ceil(connect_timeout_s)),
        # What pg_stat_activity shows for the writer's, the pages' and verify's connections.
        "application_name": name,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
    for option, value in defaults.items():
        params.setdefault(option, value)
    return make_conninfo("", **params)


def _ms(seconds: float) -> str:
    # 0 would mean "no limit" to PostgreSQL.
    return f"{max(1, round(seconds * 1000))}ms"


def _sealed_head(row: Sequence[Any] | None, key: AuditKey, where: str) -> SealedHead | None:
    """The head a row of audit_head records, None while unsealed; StoreChanged if forged."""
    if row is None or row[3] is None:
        return None
    sealed_from, id_, digest, stored = row[:4]
    if not isinstance(sealed_from, int) or not isinstance(id_, int) or not isinstance(digest, str):
        raise StoreChanged(f"{head_name(where)} is not a head record")
    head = SealedHead(sealed_from, id_, digest)
    if not seal_matches(head.seal(key.material), stored):
        raise StoreChanged(
            f"{head_name(where)} does not match the key "
            "(rewritten without it, or another key is configured)"
        )
    return head


def head_name(where: str) -> str:
    """How messages name the sealed head of a PostgreSQL store."""
    return f"the sealed head in {HEAD_TABLE} of {where}"


class PostgresAuditEngine:
    """AuditLog's engine over PostgreSQL (gateway/audit_store.py's AuditEngine)."""

    errors: tuple[type[BaseException], ...] = (psycopg.Error,)

    def __init__(self, url: str, timeout_s: float, key: AuditKey | None) -> None:
        self.where = shown_url(url)
        self.timeout_s = timeout_s
        self.key = key
        self._conninfo = connection_params(url, timeout_s)
        # Touched only by the writer thread: the connection, the table it found at first
        # open (its oid: dropped and created again is another table), whether the store was
        # ever opened, and the last entry this gateway committed.
        self._conn: psycopg.Connection[Any] | None = None
        self._table_oid: int | None = None
        self._opened = False
        self._last_committed: tuple[int, str] | None = None

    def open(self) -> None:
        self._connection()

    def close(self) -> None:
        self._drop_connection()

    def is_store_failure(self, exc: BaseException) -> bool:
        if isinstance(exc, StoreChanged | OSError):
            return True
        # A value PostgreSQL will not store (NUL in text) is about one entry's row.
        if isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
            return False
        # Connection lost, lock or statement timeout, read-only, tables gone, privileges.
        return isinstance(exc, psycopg.Error)

    def append(self, requests: Sequence[AuditRequest]) -> list[AuditEntry]:
        try:
            return self._append(requests)
        except BaseException:
            # A connection never outlives a failure: the next batch connects afresh.
            self._drop_connection()
            raise

    def check_write(self, busy_timeout_s: float) -> None:
        """A write transaction (not read-only), the head locked within `busy_timeout_s`, the
        checks an append makes, then ROLLBACK: nothing is appended."""
        try:
            with self._transaction(busy_timeout_s) as conn:
                read_only = conn.execute("SHOW transaction_read_only").fetchone()
                if read_only is not None and read_only[0] == "on":
                    raise AuditDatabaseError(
                        f"the audit database {self.where} is read-only (a standby?)"
                    )
                head = self._lock_head(conn)
                last_id, last_hash, last_seal = self._last(conn)
                self._check_continuity(conn)
                self._checked_head(conn, last_id, last_hash, last_seal, head)
                raise psycopg.Rollback()
        except psycopg.errors.LockNotAvailable:
            self._drop_connection()
            raise TimeoutError(
                f"the head of the audit chain in {self.where} stayed locked by another "
                f"writer for {busy_timeout_s:g} s"
            ) from None
        except psycopg.Error as exc:
            self._drop_connection()
            raise AuditDatabaseError(
                f"the audit database {self.where} cannot be written: {_first_line(exc)}"
            ) from None
        except BaseException:
            self._drop_connection()
            raise

    def read_page(
        self, first: int, after: int | None, client_id: str | None
    ) -> tuple[list[AuditEntry], bool]:
        conditions: list[str] = []
        params: list[object] = []
        if after is not None:
            conditions.append("id < %s")
            params.append(after)
        if client_id is not None:
            conditions.append("client_id = %s")
            params.append(client_id)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"SELECT {_COLUMNS} FROM {LOG_TABLE} {where} ORDER BY id DESC LIMIT %s"
        # A connection of its own (pages are rare: regulators reviewing), never the writer's.
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            conn.execute(
                "SELECT set_config('statement_timeout', %s, false)",
                (_ms(self.timeout_s + STUCK_S),),
            )
            # One more than asked tells whether a next page exists.
            rows = conn.execute(sql, [*params, first + 1]).fetchall()
        return [entry_from_row(row) for row in rows[:first]], len(rows) > first

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self._conninfo, autocommit=True)
            try:
                if not self._opened:
                    # Once this gateway has had its store, its tables are never made anew:
                    # a fresh empty chain would silently stand in for the history it lost.
                    _create_tables(conn)
                row = conn.execute("SELECT to_regclass(%s)::oid", (LOG_TABLE,)).fetchone()
                self._check_table(row[0] if row is not None else None)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            self._opened = True
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except psycopg.Error as exc:
                log.error("audit database %s not closed cleanly: %s", self.where, exc)

    def _append(self, requests: Sequence[AuditRequest]) -> list[AuditEntry]:
        key = self.key.material if self.key is not None else None
        with self._transaction(self.timeout_s) as conn:
            # The head row's lock first: another replica's append waits for our commit, and
            # ours for theirs, so the last entry read below is the chain's last.
            head_row = self._lock_head(conn)
            last_id, prev_hash, last_seal = self._last(conn)
            self._check_continuity(conn)
            head = self._checked_head(conn, last_id, prev_hash, last_seal, head_row)
            entries = []
            for offset, request in enumerate(requests, start=1):
                entry = chain(last_id + offset, request, prev_hash, key)
                entries.append(entry)
                prev_hash = entry.hash
            with conn.cursor() as cursor:
                cursor.executemany(_INSERT, [stored_row(e) for e in entries])
            if self.key is not None and head is not None:
                # In the same transaction: the head never names an entry that is not there.
                new = SealedHead(head.sealed_from, entries[-1].id, entries[-1].hash)
                conn.execute(
                    f"UPDATE {HEAD_TABLE} SET sealed_from = %s, id = %s, hash = %s, seal = %s "
                    "WHERE singleton",
                    (new.sealed_from, new.id, new.hash, new.seal(self.key.material)),
                )
        self._last_committed = (entries[-1].id, entries[-1].hash)
        return entries

    @contextmanager
    def _transaction(self, lock_wait_s: float) -> Iterator[psycopg.Connection[Any]]:
        """A transaction on the writer's connection, committed when the block ends.

        Its bounds: the head lock waited for at most `lock_wait_s`, no statement or idle
        spell longer than the database being stuck, commits durable. A connection that died
        while idle (the database restarted, failed over or ended it) is replaced once, as
        BEGIN fails on it, before anything was sent: that is no reason to deny a call.
        """
        with ExitStack() as stack:
            conn = self._connection()
            try:
                stack.enter_context(conn.transaction())
            except psycopg.OperationalError:
                if not conn.broken:
                    raise
                self._drop_connection()
                conn = self._connection()
                stack.enter_context(conn.transaction())
            stuck = _ms(max(lock_wait_s, self.timeout_s) + STUCK_S)
            conn.execute(_LIMITS, (_ms(lock_wait_s), stuck, stuck))
            yield conn

    def _lock_head(self, conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
        """The head row, locked until the transaction ends; made again if it was deleted."""
        row = conn.execute(_LOCK_HEAD).fetchone()
        if row is None:
            # As a head file deleted beside a SQLite store: the seals decide below whether
            # the store may still be appended to.
            conn.execute(
                f"INSERT INTO {HEAD_TABLE} (singleton) VALUES (TRUE) ON CONFLICT DO NOTHING"
            )
            row = conn.execute(_LOCK_HEAD).fetchone()
            if row is None:
                raise StoreChanged(f"the head row of {HEAD_TABLE} in {self.where} is missing")
        self._check_table(row[4])
        return tuple(row)

    def _check_table(self, oid: int | None) -> None:
        """The entries' table is the one this gateway found at first open."""
        if oid is None:
            raise StoreChanged(
                f"the audit store {self.where} has no {LOG_TABLE} table (dropped while the "
                "gateway was running); person queries are denied until it is restored or "
                "the gateway restarted"
            )
        if self._table_oid is None:
            self._table_oid = oid
        elif oid != self._table_oid:
            raise StoreChanged(
                f"the {LOG_TABLE} table of {self.where} was dropped and made again while the "
                "gateway was running; person queries are denied until it is restored or the "
                "gateway restarted"
            )

    def _last(self, conn: psycopg.Connection[Any]) -> tuple[int, str, object]:
        last = conn.execute(_LAST).fetchone()
        if last is None:
            return 0, GENESIS_HASH, None
        return int(last[0]), str(last[1]), last[2]

    def _check_continuity(self, conn: psycopg.Connection[Any]) -> None:
        """The last entry this gateway committed is still there, unchanged."""
        if self._last_committed is None:
            return
        id_, digest = self._last_committed
        if _hash_at(conn, id_) != digest:
            raise StoreChanged(
                f"entry {id_}, committed by this gateway, is no longer in {self.where} "
                "(the store was replaced, restored from an older copy or cut short)"
            )

    def _checked_head(
        self,
        conn: psycopg.Connection[Any],
        last_id: int,
        last_hash: str,
        last_seal: object,
        head_row: tuple[Any, ...],
    ) -> SealedHead | None:
        """Refuses a store whose seals or head disagree with the key; the head to extend."""
        if self.key is None:
            if last_seal is not None or head_row[3] is not None:
                raise StoreChanged(
                    f"the audit store {self.where} is sealed; start the gateway with its "
                    "[audit] key_file, or unsealed entries would break its chain"
                )
            return None
        key = self.key.material
        if last_seal is not None and not seal_matches(entry_seal(key, last_hash), last_seal):
            raise StoreChanged(
                f"entry {last_id} of {self.where} is not sealed with [audit] key_file "
                "(rewritten without the key, or another key is configured)"
            )
        head = _sealed_head(head_row, self.key, self.where)
        if head is None:
            if last_seal is not None:
                raise StoreChanged(
                    f"{head_name(self.where)} is missing while the store holds sealed "
                    "entries; its newest entries may have been cut off"
                )
            # The first keyed append: sealing starts after what is there now.
            return SealedHead(last_id + 1, last_id, last_hash)
        if head.id > last_id or _hash_at(conn, head.id) != head.hash:
            raise StoreChanged(
                f"{self.where} does not hold entry {head.id} as {head_name(self.where)} "
                "records it (entries cut off or the store replaced)"
            )
        return head


def _create_tables(conn: psycopg.Connection[Any]) -> None:
    """The tables and the head row, where missing; nothing is asked of a provisioned store."""
    with conn.transaction():
        conn.execute(_SCHEMA_LOCK)
        found = conn.execute(
            "SELECT to_regclass(%s), to_regclass(%s)", (LOG_TABLE, HEAD_TABLE)
        ).fetchone()
        if found is not None and None not in found:
            return  # a role without CREATE may run over tables its DBA made
        conn.execute(_CREATE_LOG)
        conn.execute(_CREATE_LOG_INDEX)
        conn.execute(_CREATE_HEAD)
        conn.execute(f"INSERT INTO {HEAD_TABLE} (singleton) VALUES (TRUE) ON CONFLICT DO NOTHING")


def _hash_at(conn: psycopg.Connection[Any], id_: int) -> str | None:
    if id_ == 0:
        return GENESIS_HASH
    row = conn.execute(f"SELECT hash FROM {LOG_TABLE} WHERE id = %s", (id_,)).fetchone()
    return None if row is None else str(row[0])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def verify_postgres(url: str, key: AuditKey | None = None) -> VerifyResult:
    """verify_chain for a postgresql:// store: head and entries read in one snapshot."""
    where = shown_url(url)
    try:
        conn = psycopg.connect(
            connection_params(url, VERIFY_CONNECT_S, f"{APPLICATION_NAME} verify")
        )
    except psycopg.Error as exc:
        return VerifyResult(
            0, problem=f"audit database {where} cannot be opened: {_first_line(exc)}"
        )
    try:
        # Read only, and REPEATABLE READ: the head and every entry as of one moment, even
        # while replicas keep appending (the head is updated with the entries it names).
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            found = conn.execute(
                "SELECT to_regclass(%s), to_regclass(%s)", (LOG_TABLE, HEAD_TABLE)
            ).fetchone()
            if found is None or found[0] is None:
                return VerifyResult(0, problem=f"audit database {where} has no {LOG_TABLE} table")
            head: SealedHead | None = None
            if key is not None and found[1] is not None:
                row = conn.execute(
                    f"SELECT sealed_from, id, hash, seal FROM {HEAD_TABLE} WHERE singleton"
                ).fetchone()
                try:
                    head = _sealed_head(row, key, where)
                except StoreChanged as exc:
                    return VerifyResult(0, problem=str(exc), keyed=True)
            # A server-side cursor: the chain is streamed, never held in memory at once.
            with conn.cursor(name="audit_verify") as cursor:
                cursor.itersize = 5000
                cursor.execute(f"SELECT {_COLUMNS} FROM {LOG_TABLE} ORDER BY id")
                return ChainWalk(key, head, head_name(where)).run(cursor)
    except psycopg.Error as exc:
        return VerifyResult(0, problem=f"audit database {where} cannot be read: {_first_line(exc)}")
    finally:
        conn.close()
