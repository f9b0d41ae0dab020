"""Webhook deliveries of watchlist changes (contract §9): at least once, until a 2xx or give-up.

One `webhook_deliveries` row per change of a list with a webhook, written in the transaction
that stores the change (`enqueue_deliveries`). A sender claims due rows with a lease, as the
bulk workers do (store/bulk.py), POSTs them, and records the outcome: delivered, or failed
with the time of the next attempt. Every state is here, so a restart loses nothing; a lease
run out (a sender that died) makes its rows another sender's to take.

A row is *given up* when it was not delivered by `give_up_at`: it is never claimed again.
A row whose watchlist was deleted is dropped (deleted) when it is next claimed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from store.changes import ChangeRow, change_of, columns
from store.database import Database, Transaction

# How long a delivery is retried: at least the 24 hours contract §9 asks, kept for 48.
KEEP_S = 86_400 * 2
# last_error is for operators reading the table: short.
_ERROR_CHARS = 300
_CHANGE_COLUMNS = columns("c")
# Undelivered, and still to be tried: failed() leaves a row whose next attempt would come
# after its give-up time with due_at >= give_up_at.
_OPEN = "d.delivered_at IS NULL AND d.give_up_at > ? AND d.due_at < d.give_up_at"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One claimed delivery: the change to POST, where, and the key to sign it with."""

    change: ChangeRow
    url: str
    secret: str
    # Attempts made before this one (0 for the first).
    attempts: int
    give_up_at: float


async def enqueue_deliveries(
    tx: Transaction,
    changes: Sequence[ChangeRow],
    url: str,
    now: float,
    keep_s: float = KEEP_S,
) -> None:
    """Used in the transaction that stores the changes (after `insert_changes` numbered them):
    one delivery per change to the list's webhook URL, due now, retried for `keep_s`.
    """
    if not changes:
        return
    if any(c.seq < 1 for c in changes):
        raise ValueError("changes must be numbered (store.changes.insert_changes) first")
    await tx.execute_many(
        "INSERT INTO webhook_deliveries "
        "(change_seq, watchlist_id, url, attempts, due_at, give_up_at) VALUES (?, ?, ?, 0, ?, ?)",
        [(c.seq, c.watchlist_id, url, now, now + keep_s) for c in changes],
    )


class WebhookStore:
    """The repository of webhook deliveries; every method is one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(self, owner: str, now: float, lease_s: float, limit: int) -> list[Delivery]:
        """Used by the sender: up to `limit` due deliveries, oldest due first, leased to owner.

        Due: undelivered, due_at reached, give_up_at not, and no lease or one run out. On
        PostgreSQL the rows are locked (SKIP LOCKED), so two replicas never claim the same.
        Deliveries of a deleted watchlist (or of a list without a webhook secret) are
        dropped, not returned.
        """
        lock = " FOR UPDATE OF d SKIP LOCKED" if self._db.dialect == "postgresql" else ""
        async with self._db.transaction() as tx:
            rows = await tx.fetch_all(
                "SELECT d.change_seq, d.url, d.attempts, d.give_up_at, w.id, w.webhook_secret, "
                f"{_CHANGE_COLUMNS} FROM webhook_deliveries d "
                "LEFT JOIN watchlists w ON w.id = d.watchlist_id "
                "LEFT JOIN changes c ON c.seq = d.change_seq "
                "WHERE d.delivered_at IS NULL AND d.due_at <= ? AND d.give_up_at > ? "
                "AND (d.lease_until IS NULL OR d.lease_until < ?) "
                f"ORDER BY d.due_at, d.change_seq LIMIT ?{lock}",
                (now, now, now, limit),
            )
            claimed: list[Delivery] = []
            dropped: list[tuple[Any, ...]] = []
            for seq, url, attempts, give_up_at, list_id, secret, *change in rows:
                if list_id is None or secret is None or change[0] is None:
                    dropped.append((seq,))
                    continue
                claimed.append(
                    Delivery(change_of(change), url, secret, int(attempts), float(give_up_at))
                )
            if dropped:
                await tx.execute_many(
                    "DELETE FROM webhook_deliveries WHERE change_seq = ?", dropped
                )
            if claimed:
                await tx.execute_many(
                    "UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ? "
                    "WHERE change_seq = ?",
                    [(owner, now + lease_s, d.change.seq) for d in claimed],
                )
        return claimed

    async def delivered(self, owner: str, change_seq: int, at_iso: str) -> bool:
        """Used by the sender after a 2xx: the delivery is done; False if it already was.

        Recorded even when `owner`'s lease was taken over meanwhile (the receiver has the
        change; the other sender's own attempt may still reach it: at least once).
        """
        async with self._db.transaction() as tx:
            written: int = await tx.execute(
                "UPDATE webhook_deliveries SET delivered_at = ?, attempts = attempts + 1, "
                "lease_owner = NULL, lease_until = NULL "
                "WHERE change_seq = ? AND delivered_at IS NULL",
                (at_iso, change_seq),
            )
        return written > 0

    async def failed(self, owner: str, change_seq: int, next_due: float, error_text: str) -> bool:
        """Used by the sender after a failed attempt: tried again at `next_due` (never, when
        that is at or after give_up_at). Only while `owner` holds the lease; False otherwise.
        """
        async with self._db.transaction() as tx:
            written: int = await tx.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, due_at = ?, "
                "last_error = ?, lease_owner = NULL, lease_until = NULL "
                "WHERE change_seq = ? AND lease_owner = ? AND delivered_at IS NULL",
                (next_due, error_text[:_ERROR_CHARS], change_seq, owner),
            )
        return written > 0

    async def release(self, owner: str) -> None:
        """Used when the sender stops: its leases end now, for the next process to take."""
        async with self._db.transaction() as tx:
            await tx.execute(
                "UPDATE webhook_deliveries SET lease_owner = NULL, lease_until = NULL "
                "WHERE lease_owner = ? AND delivered_at IS NULL",
                (owner,),
            )

    async def pending(self, now: float | None = None) -> int:
        """Deliveries still to be made (neither delivered nor given up), e.g. for metrics."""
        moment = time.time() if now is None else now
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(
                f"SELECT COUNT(*) FROM webhook_deliveries d WHERE {_OPEN}", (moment,)
            )
        return int(row[0]) if row is not None else 0

    async def next_due(self, now: float | None = None) -> float | None:
        """When the earliest delivery still to be made can be claimed (None: nothing to send):
        when it is due, or when its lease runs out if it is leased.
        """
        moment = time.time() if now is None else now
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(
                "SELECT MIN(CASE WHEN d.lease_until IS NOT NULL AND d.lease_until > d.due_at "
                f"THEN d.lease_until ELSE d.due_at END) FROM webhook_deliveries d WHERE {_OPEN}",
                (moment,),
            )
        return float(row[0]) if row is not None and row[0] is not None else None
