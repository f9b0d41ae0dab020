"""Bulk checks in the state store (contract §8): checks, submitted positions, codes and results.

The work is the `bulk_codes` rows: one per distinct valid code of a check. A worker claims a
few with a lease, and a result is written only by the lease's holder, so a code taken over
after its worker died gets exactly one result, whoever gives it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from store.database import Database

PENDING = "PENDING"
FINAL = "FINAL"
QUEUED, RUNNING, DONE, CANCELLED = "QUEUED", "RUNNING", "DONE", "CANCELLED"
ACTIVE = (QUEUED, RUNNING)
_END_CHECK = "UPDATE bulk_checks SET state = ?, finished_at = ? WHERE id = ? AND state IN (?, ?)"
_CHECK_COLUMNS = (
    "id, client_id, label, scenario, state, total, created_at, created_seq, finished_at"
)


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One bulk check as stored."""

    id: str
    client_id: str
    label: str | None
    scenario: str | None
    state: str
    total: int
    created_at: str
    created_seq: int
    finished_at: str | None


@dataclass(frozen=True, slots=True)
class Item:
    """One submitted position: the code as sent, its normal form, or its error."""

    uscc: str
    code: str | None
    error: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One position with its final result (or its error)."""

    index: int
    uscc: str
    error: str | None
    message: str | None
    status: str | None
    result: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Claim:
    """Codes of one check a worker holds the lease of."""

    check_id: str
    scenario: str | None
    codes: list[str]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a worker found for one claimed code: a final result, or a later try."""

    code: str
    status: str | None = None
    result: dict[str, Any] | None = None
    retry_at: float | None = None


class BulkStore:
    """The repository of bulk checks; every method is one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        check: CheckRow,
        items: Sequence[Item],
        due_at: float,
    ) -> None:
        """Used by startBulkCheck: the check, every position, and one work row per code."""
        first_index: dict[str, int] = {}
        for index, item in enumerate(items):
            if item.code is not None:
                first_index.setdefault(item.code, index)
        async with self._db.transaction() as tx:
            await tx.execute(
                f"INSERT INTO bulk_checks ({_CHECK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _check_values(check),
            )
            await tx.execute_many(
                "INSERT INTO bulk_items (check_id, idx, uscc, code, error, message) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (check.id, i, item.uscc, item.code, item.error, item.message)
                    for i, item in enumerate(items)
                ],
            )
            await tx.execute_many(
                "INSERT INTO bulk_codes (check_id, code, first_idx, state, attempts, due_at) "
                "VALUES (?, ?, ?, ?, 0, ?)",
                [(check.id, code, i, PENDING, due_at) for code, i in first_index.items()],
            )

    async def get(self, check_id: str) -> CheckRow | None:
        """One check, whoever owns it (ownership is the caller's to apply)."""
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(
                f"SELECT {_CHECK_COLUMNS} FROM bulk_checks WHERE id = ?", (check_id,)
            )
        return CheckRow(*row) if row is not None else None

    async def page(
        self, client_id: str | None, after: tuple[int, str] | None, first: int
    ) -> list[CheckRow]:
        """Checks newest first, of one client (None: everyone's), after a (seq, id) cursor."""
        where: list[str] = []
        params: list[Any] = []
        if client_id is not None:
            where.append("client_id = ?")
            params.append(client_id)
        if after is not None:
            where.append("(created_seq < ? OR (created_seq = ? AND id < ?))")
            params += [after[0], after[0], after[1]]
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        async with self._db.transaction() as tx:
            rows = await tx.fetch_all(
                f"SELECT {_CHECK_COLUMNS} FROM bulk_checks {clause} "
                "ORDER BY created_seq DESC, id DESC LIMIT ?",
                (*params, first),
            )
        return [CheckRow(*row) for row in rows]

    async def counts(self, check_id: str) -> dict[str, int]:
        """Final results by key (JointStatus name, INVALID_USCC, NOT_FOUND), every position."""
        async with self._db.transaction() as tx:
            rows = await tx.fetch_all(
                "SELECT COALESCE(i.error, c.status), COUNT(*) FROM bulk_items i "
                "LEFT JOIN bulk_codes c ON c.check_id = i.check_id AND c.code = i.code "
                "WHERE i.check_id = ? AND (i.error IS NOT NULL OR c.state = ?) "
                "GROUP BY COALESCE(i.error, c.status)",
                (check_id, FINAL),
            )
        return {str(key): int(count) for key, count in rows}

    async def results(
        self, check_id: str, after: int, first: int, status: str | None
    ) -> tuple[list[ResultRow], int]:
        """Positions with a final result after index `after`, in order, and how many match."""
        condition = "(i.error IS NOT NULL OR c.state = ?)"
        params: list[Any] = [FINAL]
        if status is not None:
            condition = "(i.error IS NULL AND c.state = ? AND c.status = ?)"
            params.append(status)
        joined = (
            "FROM bulk_items i LEFT JOIN bulk_codes c "
            "ON c.check_id = i.check_id AND c.code = i.code "
            f"WHERE i.check_id = ? AND {condition}"
        )
        async with self._db.transaction() as tx:
            total = await tx.fetch_one(f"SELECT COUNT(*) {joined}", (check_id, *params))
            rows = await tx.fetch_all(
                f"SELECT i.idx, i.uscc, i.error, i.message, c.status, c.result {joined} "
                "AND i.idx > ? ORDER BY i.idx LIMIT ?",
                (check_id, *params, after, first),
            )
        results = [
            ResultRow(idx, uscc, error, message, status, json.loads(result) if result else None)
            for idx, uscc, error, message, status, result in rows
        ]
        return results, int(total[0]) if total is not None else 0

    async def rows(self, check_id: str, after: int, first: int) -> list[ResultRow]:
        """Every position after index `after`, in order, with its result when final (export)."""
        async with self._db.transaction() as tx:
            rows = await tx.fetch_all(
                "SELECT i.idx, i.uscc, i.error, i.message, c.status, c.result FROM bulk_items i "
                "LEFT JOIN bulk_codes c ON c.check_id = i.check_id AND c.code = i.code "
                "AND c.state = ? WHERE i.check_id = ? AND i.idx > ? ORDER BY i.idx LIMIT ?",
                (FINAL, check_id, after, first),
            )
        return [
            ResultRow(idx, uscc, error, message, status, json.loads(result) if result else None)
            for idx, uscc, error, message, status, result in rows
        ]

    async def cancel(self, check_id: str, finished_at: str) -> None:
        """Used by cancelBulkCheck: work not yet final stays undone; results so far stay."""
        async with self._db.transaction() as tx:
            await tx.execute(
                _END_CHECK,
                (CANCELLED, finished_at, check_id, *ACTIVE),
            )

    async def claim(self, owner: str, now: float, lease_s: float, limit: int) -> Claim | None:
        """Used by the workers: up to `limit` due codes of the oldest check with work, leased."""
        lock = " FOR UPDATE SKIP LOCKED" if self._db.dialect == "postgresql" else ""
        due = "c.state = ? AND c.due_at <= ? AND (c.lease_until IS NULL OR c.lease_until < ?)"
        async with self._db.transaction() as tx:
            first = await tx.fetch_one(
                "SELECT c.check_id, b.scenario FROM bulk_codes c "
                "JOIN bulk_checks b ON b.id = c.check_id "
                f"WHERE {due} AND b.state IN (?, ?) "
                "ORDER BY b.created_seq, c.first_idx LIMIT 1",
                (PENDING, now, now, *ACTIVE),
            )
            if first is None:
                return None
            check_id, scenario = first
            rows = await tx.fetch_all(
                f"SELECT c.code FROM bulk_codes c WHERE c.check_id = ? AND {due} "
                f"ORDER BY c.first_idx LIMIT ?{lock}",
                (check_id, PENDING, now, now, limit),
            )
            codes = [row[0] for row in rows]
            if not codes:
                return None  # taken by another replica between the two reads
            await tx.execute_many(
                "UPDATE bulk_codes SET lease_owner = ?, lease_until = ? "
                "WHERE check_id = ? AND code = ?",
                [(owner, now + lease_s, check_id, code) for code in codes],
            )
            await tx.execute(
                "UPDATE bulk_checks SET state = ? WHERE id = ? AND state = ?",
                (RUNNING, check_id, QUEUED),
            )
        return Claim(check_id, scenario, codes)

    async def renew(self, owner: str, until: float) -> None:
        """Used by the workers' heartbeat: their leases run on while they work."""
        async with self._db.transaction() as tx:
            await tx.execute(
                "UPDATE bulk_codes SET lease_until = ? WHERE lease_owner = ? AND state = ?",
                (until, owner, PENDING),
            )

    async def settle(
        self, owner: str, check_id: str, outcomes: Sequence[Outcome], now: float, finished_at: str
    ) -> int:
        """Writes a worker's outcomes where it still holds the lease; the results it wrote.

        A cancelled check takes no more results. When no code of the check is left, the
        check is DONE.
        """
        held = "check_id = ? AND code = ? AND lease_owner = ? AND state = ?"
        written = 0
        async with self._db.transaction() as tx:
            state = await tx.fetch_one("SELECT state FROM bulk_checks WHERE id = ?", (check_id,))
            if state is None or state[0] not in ACTIVE:
                return 0
            for outcome in outcomes:
                if outcome.retry_at is None:
                    result = json.dumps(outcome.result, ensure_ascii=False)
                    written += await tx.execute(
                        "UPDATE bulk_codes SET state = ?, status = ?, result = ?, "
                        f"lease_owner = NULL, lease_until = NULL WHERE {held}",
                        (FINAL, outcome.status, result, check_id, outcome.code, owner, PENDING),
                    )
                else:
                    await tx.execute(
                        "UPDATE bulk_codes SET attempts = attempts + 1, due_at = ?, "
                        "first_failed_at = COALESCE(first_failed_at, ?), "
                        f"lease_owner = NULL, lease_until = NULL WHERE {held}",
                        (outcome.retry_at, now, check_id, outcome.code, owner, PENDING),
                    )
            left = await tx.fetch_one(
                "SELECT COUNT(*) FROM bulk_codes WHERE check_id = ? AND state = ?",
                (check_id, PENDING),
            )
            if left is not None and left[0] == 0:
                await tx.execute(
                    _END_CHECK,
                    (DONE, finished_at, check_id, *ACTIVE),
                )
        return written

    async def first_failures(self, check_id: str, codes: Sequence[str]) -> dict[str, float]:
        """When each of these codes first failed (codes that never failed are absent)."""
        if not codes:
            return {}
        marks = ", ".join("?" for _ in codes)
        async with self._db.transaction() as tx:
            rows = await tx.fetch_all(
                f"SELECT code, first_failed_at FROM bulk_codes WHERE check_id = ? "
                f"AND code IN ({marks}) AND first_failed_at IS NOT NULL",
                (check_id, *codes),
            )
        return {code: float(at) for code, at in rows}

    async def waiting(self) -> int:
        """Codes of active checks without a final result (the metrics' waiting work)."""
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(
                "SELECT COUNT(*) FROM bulk_codes c JOIN bulk_checks b ON b.id = c.check_id "
                "WHERE c.state = ? AND b.state IN (?, ?)",
                (PENDING, *ACTIVE),
            )
        return int(row[0]) if row is not None else 0

    async def release(self, owner: str) -> None:
        """Used when the gateway stops: its leases end now, for the next process to take."""
        async with self._db.transaction() as tx:
            await tx.execute(
                "UPDATE bulk_codes SET lease_owner = NULL, lease_until = NULL "
                "WHERE lease_owner = ? AND state = ?",
                (owner, PENDING),
            )

    async def next_due(self) -> float | None:
        """When the earliest pending code of an active check is due (None: no work)."""
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(
                "SELECT MIN(c.due_at) FROM bulk_codes c JOIN bulk_checks b ON b.id = c.check_id "
                "WHERE c.state = ? AND b.state IN (?, ?)",
                (PENDING, *ACTIVE),
            )
        return float(row[0]) if row is not None and row[0] is not None else None

    async def finish_empty(self, check_id: str, finished_at: str) -> None:
        """A check without a valid code is DONE as soon as it is made."""
        async with self._db.transaction() as tx:
            await tx.execute(
                "UPDATE bulk_checks SET state = ?, finished_at = ? WHERE id = ? AND state = ?",
                (DONE, finished_at, check_id, QUEUED),
            )


def _check_values(check: CheckRow) -> tuple[Any, ...]:
    return (
        check.id,
        check.client_id,
        check.label,
        check.scenario,
        check.state,
        check.total,
        check.created_at,
        check.created_seq,
        check.finished_at,
    )
