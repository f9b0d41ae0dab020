"""Changes found on watched subjects (contract §9): stored once, read by `changes`, the
subscription and the webhooks, all through `ChangeRow.public()`, the one owner of a change's
public fields.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from store.database import Database, Transaction

_FIELDS = (
    "seq",
    "id",
    "watchlist_id",
    "client_id",
    "uscc",
    "name",
    "kind",
    "record",
    "previous_status",
    "status",
    "at",
)
_COLUMNS = ", ".join(_FIELDS)


def columns(alias: str) -> str:
    """A change's columns qualified by a table alias, for joins (store/webhooks.py)."""
    return ", ".join(f"{alias}.{name}" for name in _FIELDS)


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """One stored change; `seq` orders changes in the order they were committed."""

    seq: int
    id: str
    watchlist_id: str
    client_id: str
    uscc: str
    name: str | None
    kind: str
    record: dict[str, Any] | None
    previous_status: str | None
    status: str | None
    at: str

    def public(self) -> dict[str, Any]:
        """The fields of SubjectChange, as GraphQL names them: the webhook body, too."""
        return {
            "id": self.id,
            "at": self.at,
            "watchlistId": self.watchlist_id,
            "uscc": self.uscc,
            "name": self.name,
            "kind": self.kind,
            "record": self.record,
            "previousStatus": self.previous_status,
            "status": self.status,
        }


def change_of(values: Sequence[Any]) -> ChangeRow:
    """A change from the values of its columns, in that order."""
    seq, id_, list_id, client, uscc, name, kind, record, previous, status, at = values
    return ChangeRow(
        int(seq),
        id_,
        list_id,
        client,
        uscc,
        name,
        kind,
        json.loads(record) if record else None,
        previous,
        status,
        at,
    )


async def insert_changes(tx: Transaction, changes: Sequence[ChangeRow]) -> list[ChangeRow]:
    """Used inside a member's check transaction: numbers the changes and stores them.

    The numbers come from one counter row, locked until the transaction commits, so a
    change with a higher seq is never visible before one with a lower: cursors are stable.
    """
    if not changes:
        return []
    row = await tx.fetch_one(
        "UPDATE counters SET value = value + ? WHERE name = 'changes' RETURNING value",
        (len(changes),),
    )
    assert row is not None
    first = int(row[0]) - len(changes) + 1
    numbered = [replace(c, seq=first + i) for i, c in enumerate(changes)]
    await tx.execute_many(
        f"INSERT INTO changes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [_values(c) for c in numbered],
    )
    return numbered


def _fields(c: ChangeRow) -> tuple[Any, ...]:
    return (
        c.seq,
        c.id,
        c.watchlist_id,
        c.client_id,
        c.uscc,
        c.name,
        c.kind,
        c.record,
        c.previous_status,
        c.status,
        c.at,
    )


def _values(c: ChangeRow) -> tuple[Any, ...]:
    fields = list(_fields(c))
    fields[7] = json.dumps(c.record, ensure_ascii=False) if c.record is not None else None
    return tuple(fields)


class ChangeStore:
    """Reads of stored changes."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(
        self,
        after: int,
        first: int,
        watchlist_id: str | None = None,
        client_id: str | None = None,
    ) -> list[ChangeRow]:
        """Changes after seq `after`, oldest first, of one list, or of one client's lists."""
        where: list[str] = ["seq > ?"]
        params: list[Any] = [after]
        if watchlist_id is not None:
            where.append("watchlist_id = ?")
            params.append(watchlist_id)
        if client_id is not None:
            where.append("client_id = ?")
            params.append(client_id)
        async with self._db.transaction() as tx:
            rows = await tx.fetch_all(
                f"SELECT {_COLUMNS} FROM changes WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?",
                (*params, first),
            )
        return [change_of(r) for r in rows]

    async def latest(self) -> int:
        """The number of the newest change (0 before the first): where a subscription starts."""
        async with self._db.transaction() as tx:
            row = await tx.fetch_one("SELECT value FROM counters WHERE name = 'changes'")
        return int(row[0]) if row is not None else 0

    async def get(self, seq: int) -> ChangeRow | None:
        """One change by its number."""
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(f"SELECT {_COLUMNS} FROM changes WHERE seq = ?", (seq,))
        return change_of(row) if row is not None else None
