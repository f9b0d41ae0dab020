"""One check of watched subjects (contract §9): determine, compare, store the changes.

Used by the background scheduler for the members it claimed. A check is the determination
`subject` makes at that moment (through the same loaders and answer caches); each
department's answer is compared with its last one for the member (resolvers/changes.py).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

from core.records import Department
from resolvers.changes import DepartmentAnswer, MemberState, Observation, detect
from resolvers.determination import determine, supervise
from resolvers.subject_view import SubjectView, record_views
from schema.bulk_result import record_json
from schema.context import Services
from schema.types import CreditRecord
from store.changes import ChangeRow
from store.watch import DueMember, Listing, MemberCheck, WatchStore

# A member a department did not answer for is checked again this soon, not a day later:
# what it may have missed is seen within minutes once the department is back.
MISSING_RETRY_S = 600.0


class WatchChecks:
    """Built by the scheduler; `changed` is told when changes were stored (the webhooks)."""

    def __init__(
        self,
        store: WatchStore,
        services: Services,
        interval_s: float,
        owner: str,
        changed: Callable[[int], None],
        checked: Callable[[int], None] | None = None,
    ) -> None:
        self._checked = checked
        self._store = store
        self._services = services
        self._interval_s = interval_s
        self._owner = owner
        self._changed = changed

    async def settle(
        self, members: Sequence[DueMember], views: Sequence[SubjectView], now: datetime
    ) -> None:
        """Stores each member's check and the changes it found."""
        for member, view in zip(members, views, strict=True):
            check = self.check(member, view, now, time.time())
            stored = await self._store.record(self._owner, check, time.time())
            if stored:
                self._changed(len(stored))
        if self._checked is not None:
            self._checked(len(members))

    def check(
        self, member: DueMember, view: SubjectView, now: datetime, epoch: float
    ) -> MemberCheck:
        """The member's check as stored: latest status, new state, changes, next due time."""
        services = self._services
        found = determine(view, services.catalogue, None, now)
        supervision = supervise(found, view, services.spot_check_ratios)
        answers = tuple(
            DepartmentAnswer(department, _active(view, department))
            for department in Department
            if department in view.answers
        )
        seen = Observation(answers, found.status, found.complete)
        changes, state = detect(MemberState.from_json(member.state), seen)
        name = view.name
        at = now.isoformat()
        rows = [
            ChangeRow(
                seq=0,
                id=uuid.uuid4().hex,
                watchlist_id=member.watchlist_id,
                client_id=member.client_id,
                uscc=member.uscc,
                name=name,
                kind=c.kind.value,
                record=dict(c.record) if c.record is not None else None,
                previous_status=c.previous_status.value if c.previous_status else None,
                status=c.status.value if c.status else None,
                at=at,
            )
            for c in changes
        ]
        status = found.status.value
        listings = [
            Listing(
                record_id=v.record.id,
                department=v.record.department.value,
                kind=v.record.kind.value,
                listed_month=v.record.listed_on.strftime("%Y-%m") if v.record.listed_on else None,
            )
            for v in found.listings
        ]
        return MemberCheck(
            member=member,
            name=name,
            status=status,
            complete=found.complete,
            credit_class=supervision.credit_class.value,
            since=member.since if member.status == status and member.since else at,
            checked_at=at,
            state=state.to_json(),
            listings=listings,
            changes=rows,
            next_due=self.next_due(member.phase, epoch, bool(view.missing)),
        )

    def next_due(self, phase: float, epoch: float, missing: bool) -> float:
        """The member's next check: its place in the next interval, sooner when data was missing."""
        interval = self._interval_s
        if missing:
            return epoch + min(interval, MISSING_RETRY_S)
        # Each member is checked at the same place of every interval (its phase), so a list
        # of 100,000 is spread evenly instead of all coming due at once a day later.
        slot = (math.floor((epoch - phase * interval) / interval) + 1) * interval + phase * interval
        return slot if slot - epoch >= interval / 2 else slot + interval


def _active(view: SubjectView, department: Department) -> dict[str, dict[str, object]] | None:
    """The department's active records by id when it answered this time; None otherwise."""
    answer = view.answers.get(department)
    if answer is None or not answer.answered or answer.facts is None:
        return None  # failed, timed out or stale: it says nothing this time
    views = record_views(answer.facts.records, view.today)
    return {v.record.id: record_json(CreditRecord.from_view(v)) for v in views if v.active}
