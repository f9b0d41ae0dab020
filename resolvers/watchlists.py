"""Watchlists (contract §9) as callers see them: create, add, remove, delete, refresh, read.

The checks themselves are the background scheduler's (gateway/background.py); this module is
what the GraphQL fields call, with the ownership rules of bulk checks (contract §7).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.clock import Clock
from core.errors import ErrorCode, GatewayError
from core.identity import InvalidIdentity, normalize_uscc
from core.roles import Caller
from resolvers.owned import compound_cursor, decode_compound, may_read, require_key
from resolvers.subjects import decode_cursor, encode_cursor
from store.changes import ChangeRow, ChangeStore
from store.watch import MemberRow, NewMember, StatRowData, WatchlistRow, WatchStore

MEMBERS_PAGE_MAX = 1000
CHANGES_PAGE_MAX = 1000
NAME_MAX = 200
URL_MAX = 2000


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """[background] and [webhooks] values the callers' side needs."""

    max_size: int
    allows_webhook: Callable[[str], bool]


class Watchlists:
    """Built once by the runtime; `wake` tells the background scheduler there is new work."""

    def __init__(
        self,
        store: WatchStore,
        changes: ChangeStore,
        settings: WatchSettings,
        clock: Clock,
        wake: Callable[[], None],
    ) -> None:
        self._store = store
        self._changes = changes
        self._settings = settings
        self._clock = clock
        self._wake = wake

    async def create(
        self, caller: Caller, name: str, usccs: Sequence[str], webhook_url: str | None
    ) -> tuple[WatchlistRow, str | None]:
        """createWatchlist: all codes valid or nothing; the webhook secret, shown only here."""
        require_key(caller, "createWatchlist")
        if not name.strip() or len(name) > NAME_MAX:
            raise GatewayError(
                ErrorCode.INVALID_ARGUMENT, f"name: 1 to {NAME_MAX} characters, not blank"
            )
        codes = _valid_codes(usccs)
        self._check_size(len(codes))
        if webhook_url is not None:
            self._check_webhook(webhook_url)
        secret = secrets.token_hex(32) if webhook_url is not None else None
        now = self._clock.now()
        row = WatchlistRow(
            id=uuid.uuid4().hex,
            client_id=caller.client_id,
            name=name.strip(),
            webhook_url=webhook_url,
            created_at=now.isoformat(),
            created_seq=time.time_ns() // 1000,
        )
        await self._store.create(row, secret, [_member(c) for c in codes], time.time())
        self._wake()
        return row, secret

    async def add(self, caller: Caller, watchlist_id: str, usccs: Sequence[str]) -> WatchlistRow:
        """addToWatchlist: the same validation; each new member is checked now (its baseline)."""
        row = await self._owned(caller, watchlist_id)
        codes = _valid_codes(usccs)
        self._check_size(await self._store.size(row.id) + len(codes))
        await self._store.add(
            row.id, [_member(c) for c in codes], time.time(), time.time_ns() // 1000
        )
        self._wake()
        return row

    async def remove(self, caller: Caller, watchlist_id: str, usccs: Sequence[str]) -> WatchlistRow:
        """removeFromWatchlist: the codes as given (normalised); unknown ones are ignored."""
        row = await self._owned(caller, watchlist_id)
        await self._store.remove(row.id, _valid_codes(usccs))
        return row

    async def delete(self, caller: Caller, watchlist_id: str) -> bool:
        """deleteWatchlist: True once deleted; its changes stay readable by regulators."""
        row = await self._owned(caller, watchlist_id)
        await self._store.delete(row.id)
        return True

    async def refresh(self, caller: Caller, watchlist_id: str) -> WatchlistRow:
        """refreshWatchlist: every member due now instead of at its scheduled time."""
        row = await self._owned(caller, watchlist_id)
        await self._store.refresh(row.id, time.time())
        self._wake()
        return row

    async def get(self, caller: Caller, watchlist_id: str) -> WatchlistRow | None:
        """watchlist(id): the owner's, or anyone's for a regulator; else None."""
        require_key(caller, "watchlist")
        row = await self._store.get(watchlist_id)
        return row if row is not None and may_read(caller, row.client_id) else None

    async def lists(self, caller: Caller) -> list[WatchlistRow]:
        """watchlists: the caller's (a regulator: everyone's)."""
        require_key(caller, "watchlists")
        return await self._store.lists(None if caller.is_regulator else caller.client_id)

    async def size(self, watchlist_id: str) -> int:
        """Members of a list the caller may read."""
        return await self._store.size(watchlist_id)

    async def summary(self, watchlist_id: str) -> tuple[dict[str, int], str | None]:
        """Members by status, and when every member had been checked."""
        return await self._store.summary(watchlist_id)

    async def members(
        self, watchlist_id: str, first: int, after: str | None, status: str | None
    ) -> tuple[list[MemberRow], int]:
        """A page of members, in the order they were added."""
        if not 0 <= first <= MEMBERS_PAGE_MAX:
            raise GatewayError(
                ErrorCode.INVALID_ARGUMENT, f"first must be between 0 and {MEMBERS_PAGE_MAX}"
            )
        cursor = _decode_member_cursor(after) if after else None
        return await self._store.members(watchlist_id, cursor, first, status)

    async def changes(
        self, caller: Caller, watchlist_id: str | None, after: str | None, first: int
    ) -> list[ChangeRow]:
        """changes: of one list, or of all the caller's lists (a regulator: all), oldest first."""
        require_key(caller, "changes")
        if not 1 <= first <= CHANGES_PAGE_MAX:
            raise GatewayError(
                ErrorCode.INVALID_ARGUMENT, f"first must be between 1 and {CHANGES_PAGE_MAX}"
            )
        position = decode_change_cursor(after) if after else 0
        if watchlist_id is not None:
            row = await self._store.get(watchlist_id)
            if row is None or not may_read(caller, row.client_id):
                raise GatewayError(ErrorCode.NOT_FOUND, "no watchlist with this id")
            return await self._changes.page(position, first, watchlist_id=row.id)
        owner = None if caller.is_regulator else caller.client_id
        return await self._changes.page(position, first, client_id=owner)

    async def may_follow(self, caller: Caller, watchlist_id: str | None) -> str | None:
        """subjectChanges: the client whose changes are followed (None: a regulator, all)."""
        require_key(caller, "subjectChanges")
        if watchlist_id is not None:
            row = await self._store.get(watchlist_id)
            if row is None or not may_read(caller, row.client_id):
                raise GatewayError(ErrorCode.NOT_FOUND, "no watchlist with this id")
        return None if caller.is_regulator else caller.client_id

    async def statistics(
        self, caller: Caller, watchlist_id: str | None, dimension: str
    ) -> list[StatRowData]:
        """statistics: a list the caller may read, or (regulators) every watched subject."""
        require_key(caller, "statistics")
        if watchlist_id is None:
            if not caller.is_regulator:
                raise GatewayError(
                    ErrorCode.FORBIDDEN, "statistics over every watched subject: regulators only"
                )
        else:
            row = await self._store.get(watchlist_id)
            if row is None or not may_read(caller, row.client_id):
                raise GatewayError(ErrorCode.NOT_FOUND, "no watchlist with this id")
        return await self._store.statistics(watchlist_id, dimension)

    async def _owned(self, caller: Caller, watchlist_id: str) -> WatchlistRow:
        row = await self.get(caller, watchlist_id)
        if row is None:
            raise GatewayError(ErrorCode.NOT_FOUND, "no watchlist with this id")
        return row

    def _check_size(self, size: int) -> None:
        if size > self._settings.max_size:
            raise GatewayError(
                ErrorCode.BATCH_TOO_LARGE,
                f"at most {self._settings.max_size} members per watchlist "
                "([background] max_watchlist_size)",
            )

    def _check_webhook(self, url: str) -> None:
        if len(url) > URL_MAX or not self._settings.allows_webhook(url):
            # contract §9: the gateway calls no address the operator did not allow.
            raise GatewayError(
                ErrorCode.INVALID_ARGUMENT,
                "webhookUrl is not allowed: it must start with one of the operator's "
                "[webhooks] allow prefixes",
            )


def member_cursor(member: MemberRow) -> str:
    """The opaque cursor of a member in Watchlist.members."""
    return compound_cursor("m", member.added_seq, member.uscc)


def change_cursor(change: ChangeRow) -> str:
    """The opaque cursor of a change: its number, stable across replicas and restarts."""
    return encode_cursor(change.seq, "c")


def decode_change_cursor(cursor: str) -> int:
    """The change number in a cursor made by change_cursor."""
    return decode_cursor(cursor, "c")


def _decode_member_cursor(cursor: str) -> tuple[int, str]:
    return decode_compound(cursor, "m")


def _valid_codes(usccs: Sequence[str]) -> list[str]:
    """Every code normalised, or INVALID_USCC naming the positions (contract §9)."""
    codes: list[str] = []
    bad: list[int] = []
    for index, raw in enumerate(usccs):
        try:
            codes.append(normalize_uscc(raw))
        except InvalidIdentity:
            bad.append(index)
    if bad:
        shown = ", ".join(str(i) for i in bad[:20]) + (" …" if len(bad) > 20 else "")
        raise GatewayError(
            ErrorCode.INVALID_USCC,
            f"{len(bad)} invalid code(s), at position(s) {shown} (from 0); nothing was added",
        )
    return list(dict.fromkeys(codes))


def _member(code: str) -> NewMember:
    # The prefecture (contract §9: characters 3-6 + "00"), and a fixed place in the refresh
    # interval from the code itself, so members are spread evenly over it.
    digest = hashlib.sha256(code.encode()).digest()
    return NewMember(code, code[2:6] + "00", int.from_bytes(digest[:8], "big") / 2**64)
