"""Watchlists in the state store (contract §9): lists, members and their latest checks.

A member is background work like a bulk check's code: due at `due_at`, claimed with a
lease, and its check written only by the lease's holder, together with the changes it
found (store/changes.py) and their webhook deliveries, in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from store.changes import ChangeRow, insert_changes
from store.database import Database
from store.webhooks import enqueue_deliveries

_LIST_COLUMNS = "id, client_id, name, webhook_url, created_at, created_seq"
_MEMBER_COLUMNS = "uscc, name, status, complete, credit_class, since, checked_at, added_seq"


@dataclass(frozen=True, slots=True)
class WatchlistRow:
    """One watchlist as stored (its webhook secret stays in the store)."""

    id: str
    client_id: str
    name: str
    webhook_url: str | None
    created_at: str
    created_seq: int


@dataclass(frozen=True, slots=True)
class MemberRow:
    """One member's latest check (None before its first)."""

    uscc: str
    name: str | None
    status: str | None
    complete: bool | None
    credit_class: str | None
    since: str | None
    checked_at: str | None
    added_seq: int


@dataclass(frozen=True, slots=True)
class NewMember:
    """A code to watch: its prefecture and its place in the refresh interval (0 to 1)."""

    uscc: str
    region: str
    phase: float


@dataclass(frozen=True, slots=True)
class DueMember:
    """A claimed member: what its check compares with and where its changes go."""

    watchlist_id: str
    client_id: str
    uscc: str
    phase: float
    status: str | None
    since: str | None
    state: dict[str, Any] | None
    webhook_url: str | None


@dataclass(frozen=True, slots=True)
class Listing:
    """One active listing of a member's latest check, for the listing statistics."""

    record_id: str
    department: str
    kind: str
    listed_month: str | None


@dataclass(frozen=True, slots=True)
class MemberCheck:
    """A worker's result for one member: its latest check, new state, changes and next due."""

    member: DueMember
    name: str | None
    status: str
    complete: bool
    credit_class: str
    since: str
    checked_at: str
    state: dict[str, Any]
    listings: Sequence[Listing]
    changes: Sequence[ChangeRow]
    next_due: float


@dataclass(frozen=True, slots=True)
class StatRowData:
    """One statistics row: a key, subjects and (listing dimensions) records."""

    key: str
    subjects: int
    records: int | None


SUBJECT_COLUMNS = {"STATUS": "status", "CREDIT_CLASS": "credit_class", "REGION": "region"}
LISTING_COLUMNS = {
    "LISTING_KIND": "kind",
    "LISTING_MONTH": "listed_month",
    "DEPARTMENT": "department",
}


class WatchStore:
    """The repository of watchlists; every method is one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, row: WatchlistRow, secret: str | None, members: Sequence[NewMember], now: float
    ) -> None:
        """Used by createWatchlist: the list and its members, each due now (the baseline)."""
        async with self._db.transaction() as tx:
            await tx.execute(
                f"INSERT INTO watchlists ({_LIST_COLUMNS}, webhook_secret) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    row.id,
                    row.client_id,
                    row.name,
                    row.webhook_url,
                    row.created_at,
                    row.created_seq,
                    secret,
                ),
            )
            await _insert_members(tx, row.id, members, now, row.created_seq)

    async def add(
        self, watchlist_id: str, members: Sequence[NewMember], now: float, seq: int
    ) -> None:
        """Used by addToWatchlist: new codes due now; codes already watched are left as they are."""
        async with self._db.transaction() as tx:
            await _insert_members(tx, watchlist_id, members, now, seq)

    async def remove(self, watchlist_id: str, usccs: Sequence[str]) -> None:
        """Used by removeFromWatchlist: the members and their listings go; changes stay."""
        async with self._db.transaction() as tx:
            for table in ("watch_members", "watch_listings"):
                await tx.execute_many(
                    f"DELETE FROM {table} WHERE watchlist_id = ? AND uscc = ?",
                    [(watchlist_id, u) for u in usccs],
                )
            await _forget_unwatched(tx, usccs)

    async def delete(self, watchlist_id: str) -> None:
        """Used by deleteWatchlist: the list and its members go; its changes stay (contract §7)."""
        async with self._db.transaction() as tx:
            codes = [
                row[0]
                for row in await tx.fetch_all(
                    "SELECT uscc FROM watch_members WHERE watchlist_id = ?", (watchlist_id,)
                )
            ]
            for table in ("watch_members", "watch_listings"):
                await tx.execute(f"DELETE FROM {table} WHERE watchlist_id = ?", (watchlist_id,))
            await _forget_unwatched(tx, codes)
            # Deliveries not made yet have no list to sign them any more.
            await tx.execute(
                "DELETE FROM webhook_deliveries WHERE watchlist_id = ? AND delivered_at IS NULL",
                (watchlist_id,),
            )
            await tx.execute("DELETE FROM watchlists WHERE id = ?", (watchlist_id,))

    async def refresh(self, watchlist_id: str, now: float) -> None:
        """Used by refreshWatchlist: every member due now."""
        async with self._db.transaction() as tx:
            await tx.execute(
                "UPDATE watch_members SET due_at = ? WHERE watchlist_id = ?", (now, watchlist_id)
            )

    async def get(self, watchlist_id: str) -> WatchlistRow | None:
        """One list, whoever owns it (ownership is the caller's to apply)."""
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(
                f"SELECT {_LIST_COLUMNS} FROM watchlists WHERE id = ?", (watchlist_id,)
            )
        return WatchlistRow(*row) if row is not None else None

    async def lists(self, client_id: str | None) -> list[WatchlistRow]:
        """One client's lists (None: everyone's), oldest first."""
        where, params = ("WHERE client_id = ?", (client_id,)) if client_id else ("", ())
        async with self._db.transaction() as tx:
            rows = await tx.fetch_all(
                f"SELECT {_LIST_COLUMNS} FROM watchlists {where} ORDER BY created_seq, id", params
            )
        return [WatchlistRow(*r) for r in rows]

    async def size(self, watchlist_id: str) -> int:
        """Members of the list."""
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(
                "SELECT COUNT(*) FROM watch_members WHERE watchlist_id = ?", (watchlist_id,)
            )
        return int(row[0]) if row is not None else 0

    async def summary(self, watchlist_id: str) -> tuple[dict[str, int], str | None]:
        """Members by status (UNCHECKED before a first check) and when all were checked."""
        async with self._db.transaction() as tx:
            rows = await tx.fetch_all(
                "SELECT COALESCE(status, 'UNCHECKED'), COUNT(*), MAX(checked_at) "
                "FROM watch_members WHERE watchlist_id = ? GROUP BY COALESCE(status, 'UNCHECKED')",
                (watchlist_id,),
            )
        counts = {str(key): int(count) for key, count, _ in rows}
        if not rows or "UNCHECKED" in counts:
            return counts, None
        return counts, max(str(at) for _, _, at in rows)

    async def members(
        self, watchlist_id: str, after: tuple[int, str] | None, first: int, status: str | None
    ) -> tuple[list[MemberRow], int]:
        """A page of members in the order they were added, and how many match."""
        where, params = "watchlist_id = ?", [watchlist_id]
        if status is not None:
            where += " AND status = ?"
            params.append(status)
        async with self._db.transaction() as tx:
            total = await tx.fetch_one(f"SELECT COUNT(*) FROM watch_members WHERE {where}", params)
            page_where, page_params = where, list(params)
            if after is not None:
                page_where += " AND (added_seq > ? OR (added_seq = ? AND uscc > ?))"
                page_params += [after[0], after[0], after[1]]  # type: ignore[list-item]
            rows = await tx.fetch_all(
                f"SELECT {_MEMBER_COLUMNS} FROM watch_members WHERE {page_where} "
                "ORDER BY added_seq, uscc LIMIT ?",
                (*page_params, first),
            )
        members = [
            MemberRow(u, n, s, None if c is None else bool(c), k, since, at, int(seq))
            for u, n, s, c, k, since, at, seq in rows
        ]
        return members, int(total[0]) if total is not None else 0

    async def claim(self, owner: str, now: float, lease_s: float, limit: int) -> list[DueMember]:
        """Used by the background workers: due members, earliest first, leased."""
        lock = " FOR UPDATE OF m SKIP LOCKED" if self._db.dialect == "postgresql" else ""
        async with self._db.transaction() as tx:
            rows = await tx.fetch_all(
                "SELECT m.watchlist_id, w.client_id, m.uscc, m.phase, m.status, m.since, m.state, "
                "w.webhook_url FROM watch_members m JOIN watchlists w ON w.id = m.watchlist_id "
                "WHERE m.due_at <= ? AND (m.lease_until IS NULL OR m.lease_until < ?) "
                f"ORDER BY m.due_at LIMIT ?{lock}",
                (now, now, limit),
            )
            members = [
                DueMember(lid, cid, u, float(ph), st, since, json.loads(s) if s else None, url)
                for lid, cid, u, ph, st, since, s, url in rows
            ]
            await tx.execute_many(
                "UPDATE watch_members SET lease_owner = ?, lease_until = ? "
                "WHERE watchlist_id = ? AND uscc = ?",
                [(owner, now + lease_s, m.watchlist_id, m.uscc) for m in members],
            )
        return members

    async def record(self, owner: str, check: MemberCheck, now: float) -> list[ChangeRow]:
        """A member's check, where the worker still holds its lease; the changes it stored."""
        m = check.member
        async with self._db.transaction() as tx:
            updated = await tx.execute(
                "UPDATE watch_members SET name = ?, status = ?, complete = ?, credit_class = ?, "
                "since = ?, checked_at = ?, state = ?, due_at = ?, lease_owner = NULL, "
                "lease_until = NULL WHERE watchlist_id = ? AND uscc = ? AND lease_owner = ?",
                (
                    check.name,
                    check.status,
                    int(check.complete),
                    check.credit_class,
                    check.since,
                    check.checked_at,
                    json.dumps(check.state, ensure_ascii=False),
                    check.next_due,
                    m.watchlist_id,
                    m.uscc,
                    owner,
                ),
            )
            if updated == 0:
                return []  # removed meanwhile, or its lease was taken over
            # The subject's latest check across lists (ISO times of one offset sort as text).
            await tx.execute(
                "UPDATE watch_subjects SET status = ?, credit_class = ?, checked_at = ? "
                "WHERE uscc = ? AND (checked_at IS NULL OR checked_at <= ?)",
                (check.status, check.credit_class, check.checked_at, m.uscc, check.checked_at),
            )
            await tx.execute(
                "DELETE FROM watch_listings WHERE watchlist_id = ? AND uscc = ?",
                (m.watchlist_id, m.uscc),
            )
            await tx.execute_many(
                "INSERT INTO watch_listings (watchlist_id, uscc, record_id, department, kind, "
                "listed_month) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (m.watchlist_id, m.uscc, x.record_id, x.department, x.kind, x.listed_month)
                    for x in check.listings
                ],
            )
            stored = await insert_changes(tx, check.changes)
            if stored and m.webhook_url:
                await enqueue_deliveries(tx, stored, m.webhook_url, now)
        return stored

    async def release_member(self, owner: str, member: DueMember, due: float) -> None:
        """A member whose check could not be made: due again at `due`, lease given back."""
        async with self._db.transaction() as tx:
            await tx.execute(
                "UPDATE watch_members SET due_at = ?, lease_owner = NULL, lease_until = NULL "
                "WHERE watchlist_id = ? AND uscc = ? AND lease_owner = ?",
                (due, member.watchlist_id, member.uscc, owner),
            )

    async def renew(self, owner: str, until: float) -> None:
        """Used by the workers' heartbeat."""
        async with self._db.transaction() as tx:
            await tx.execute(
                "UPDATE watch_members SET lease_until = ? WHERE lease_owner = ?", (until, owner)
            )

    async def release(self, owner: str) -> None:
        """Used when the gateway stops: its leases end now."""
        async with self._db.transaction() as tx:
            await tx.execute(
                "UPDATE watch_members SET lease_owner = NULL, lease_until = NULL "
                "WHERE lease_owner = ?",
                (owner,),
            )

    async def next_due(self) -> float | None:
        """When the earliest member is due (None: nothing watched)."""
        async with self._db.transaction() as tx:
            row = await tx.fetch_one("SELECT MIN(due_at) FROM watch_members")
        return float(row[0]) if row is not None and row[0] is not None else None

    async def waiting(self, now: float) -> int:
        """Members due now and not yet checked (the metrics' waiting work)."""
        async with self._db.transaction() as tx:
            row = await tx.fetch_one("SELECT COUNT(*) FROM watch_members WHERE due_at <= ?", (now,))
        return int(row[0]) if row is not None else 0

    async def statistics(self, watchlist_id: str | None, dimension: str) -> list[StatRowData]:
        """Counts for dashboards, from the stored latest checks only, by indexed queries."""
        if dimension in SUBJECT_COLUMNS:
            column = SUBJECT_COLUMNS[dimension]
            return await self._subject_rows(watchlist_id, column)
        column = LISTING_COLUMNS[dimension]
        where, params = (
            ("WHERE watchlist_id = ? AND", [watchlist_id]) if watchlist_id else ("WHERE", [])
        )
        async with self._db.transaction() as tx:
            rows = await tx.fetch_all(
                f"SELECT {column}, COUNT(DISTINCT uscc), COUNT(DISTINCT record_id) "
                f"FROM watch_listings {where} {column} IS NOT NULL GROUP BY {column} "
                f"ORDER BY {column}",
                params,
            )
        return [StatRowData(str(k), int(s), int(r)) for k, s, r in rows]

    async def _subject_rows(self, watchlist_id: str | None, column: str) -> list[StatRowData]:
        # The region is the code's own; status and class exist once a member was checked.
        checked = "" if column == "region" else f" AND {column} IS NOT NULL"
        async with self._db.transaction() as tx:
            if watchlist_id is not None:
                rows = await tx.fetch_all(
                    f"SELECT {column}, COUNT(*) FROM watch_members WHERE watchlist_id = ?"
                    f"{checked} GROUP BY {column} ORDER BY {column}",
                    (watchlist_id,),
                )
            else:
                # Every watched subject once: its latest check, whichever list made it.
                rows = await tx.fetch_all(
                    f"SELECT {column}, COUNT(*) FROM watch_subjects WHERE 1 = 1{checked} "
                    f"GROUP BY {column} ORDER BY {column}",
                )
        return [StatRowData(str(k), int(n), None) for k, n in rows]


async def _insert_members(
    tx: Any, watchlist_id: str, members: Sequence[NewMember], now: float, seq: int
) -> None:
    # Portable upsert (SQLite 3.24+, PostgreSQL 9.5+): a code already watched stays as it is.
    await tx.execute_many(
        "INSERT INTO watch_members (watchlist_id, uscc, added_seq, region, phase, due_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (watchlist_id, uscc) DO NOTHING",
        [(watchlist_id, m.uscc, seq, m.region, m.phase, now) for m in members],
    )
    await tx.execute_many(
        "INSERT INTO watch_subjects (uscc, region) VALUES (?, ?) ON CONFLICT (uscc) DO NOTHING",
        [(m.uscc, m.region) for m in members],
    )


async def _forget_unwatched(tx: Any, usccs: Sequence[str]) -> None:
    """Codes no list watches any more leave watch_subjects; the others keep their latest."""
    for uscc in usccs:
        left = await tx.fetch_one(
            # Unchecked memberships last on both engines (their NULLs sort differently).
            "SELECT status, credit_class, checked_at FROM watch_members WHERE uscc = ? "
            "ORDER BY checked_at IS NULL, checked_at DESC LIMIT 1",
            (uscc,),
        )
        if left is None:
            await tx.execute("DELETE FROM watch_subjects WHERE uscc = ?", (uscc,))
        else:
            await tx.execute(
                "UPDATE watch_subjects SET status = ?, credit_class = ?, checked_at = ? "
                "WHERE uscc = ?",
                (*left, uscc),
            )
