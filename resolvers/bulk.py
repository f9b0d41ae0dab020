"""Bulk checks (contract §8) as callers see them: start, read, page, cancel, with ownership.

The work itself (claiming codes, asking the departments, freezing results) is the gateway's
background scheduler's; this module is what the GraphQL fields and the CSV export call.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.clock import Clock
from core.errors import ErrorCode, GatewayError
from core.identity import InvalidIdentity, normalize_uscc
from core.roles import Caller, Role
from resolvers.owned import compound_cursor, decode_compound, may_read, require_key
from resolvers.subjects import decode_cursor, echoed, encode_cursor
from store.bulk import QUEUED, BulkStore, CheckRow, Item, ResultRow

# The most results one `results` page returns, and checks one `bulkChecks` page.
RESULTS_PAGE_MAX = 1000
CHECKS_PAGE_MAX = 100
LABEL_MAX = 200


@dataclass(frozen=True, slots=True)
class BulkSettings:
    """[background] values the callers' side needs."""

    max_codes: int


class BulkChecks:
    """Built once by the runtime; `wake` tells the background scheduler there is new work."""

    def __init__(
        self, store: BulkStore, settings: BulkSettings, clock: Clock, wake: Callable[[], None]
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._wake = wake

    async def start(
        self, caller: Caller, usccs: Sequence[str], scenario: str | None, label: str | None
    ) -> CheckRow:
        """startBulkCheck: validated positions stored, the check QUEUED (DONE if nothing valid)."""
        require_key(caller, "startBulkCheck")
        if len(usccs) > self._settings.max_codes:
            raise GatewayError(
                ErrorCode.BATCH_TOO_LARGE,
                f"at most {self._settings.max_codes} codes per bulk check ([background] "
                "max_bulk_codes)",
            )
        if label is not None and len(label) > LABEL_MAX:
            raise GatewayError(ErrorCode.INVALID_ARGUMENT, f"label: at most {LABEL_MAX} characters")
        items = [_item(raw) for raw in usccs]
        now = self._clock.now()
        check = CheckRow(
            id=uuid.uuid4().hex,
            client_id=caller.client_id,
            label=label,
            scenario=scenario,
            state=QUEUED,
            total=len(items),
            created_at=now.isoformat(),
            created_seq=time.time_ns() // 1000,
            finished_at=None,
        )
        await self._store.create(check, items, due_at=time.time())
        if not any(item.code is not None for item in items):
            await self._store.finish_empty(check.id, now.isoformat())
        else:
            self._wake()
        found = await self._store.get(check.id)
        assert found is not None
        return found

    async def get(self, caller: Caller, check_id: str) -> CheckRow | None:
        """bulkCheck(id): the caller's own, or anyone's for a regulator; else None."""
        require_key(caller, "bulkCheck")
        check = await self._store.get(check_id)
        if check is None or not may_read(caller, check.client_id):
            return None
        return check

    async def page(self, caller: Caller, first: int, after: str | None) -> list[CheckRow]:
        """bulkChecks: newest first; a regulator sees everyone's."""
        require_key(caller, "bulkChecks")
        if not 1 <= first <= CHECKS_PAGE_MAX:
            raise GatewayError(
                ErrorCode.INVALID_ARGUMENT, f"first must be between 1 and {CHECKS_PAGE_MAX}"
            )
        owner = None if caller.role is Role.REGULATOR else caller.client_id
        cursor = _decode_check_cursor(after) if after else None
        return await self._store.page(owner, cursor, first)

    async def cancel(self, caller: Caller, check_id: str) -> CheckRow:
        """cancelBulkCheck: NOT_FOUND for an id the caller may not see."""
        check = await self.get(caller, check_id)
        if check is None:
            raise GatewayError(ErrorCode.NOT_FOUND, "no bulk check with this id")
        await self._store.cancel(check.id, self._clock.now().isoformat())
        found = await self._store.get(check.id)
        assert found is not None
        return found

    async def counts(self, check_id: str) -> dict[str, int]:
        """Final results by key, every position counted."""
        return await self._store.counts(check_id)

    async def results(
        self, check_id: str, first: int, after: str | None, status: str | None
    ) -> tuple[list[ResultRow], int]:
        """A page of final results in submission order, and how many match."""
        if not 0 <= first <= RESULTS_PAGE_MAX:
            raise GatewayError(
                ErrorCode.INVALID_ARGUMENT, f"first must be between 0 and {RESULTS_PAGE_MAX}"
            )
        position = _decode_index(after) if after else -1
        return await self._store.results(check_id, position, first, status)

    async def export_rows(self, check_id: str, after: int, first: int) -> list[ResultRow]:
        """Used by the CSV export: every position in order, final results filled in."""
        return await self._store.rows(check_id, after, first)


def check_cursor(check: CheckRow) -> str:
    """The opaque cursor of a check in bulkChecks."""
    return compound_cursor("b", check.created_seq, check.id)


def result_cursor(index: int) -> str:
    """The opaque cursor of a result in BulkCheck.results."""
    return encode_cursor(index, "r")


def _decode_check_cursor(cursor: str) -> tuple[int, str]:
    return decode_compound(cursor, "b")


def _decode_index(cursor: str) -> int:
    return decode_cursor(cursor, "r")


def _item(raw: str) -> Item:
    """One submitted position, validated as `subjects` validates (contract §1)."""
    try:
        return Item(uscc=raw, code=normalize_uscc(raw))
    except InvalidIdentity as exc:
        # Echoed masked, as `subjects` does: a citizen ID pasted by mistake is not kept.
        return Item(uscc=echoed(raw), code=None, error=exc.code.value, message=str(exc))
