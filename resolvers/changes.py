"""Change detection of watched subjects (contract §9): what changed since the last check.

Pure and deterministic: a member's state (what each department last answered, the last
status that was not INCOMPLETE) goes in with one new check, the changes and the new state
come out. The state is plain JSON, so it is stored between checks, and replaying the same
checks from the same state gives the same changes, whichever process works them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.records import Department
from resolvers.determination import JointStatus


class ChangeKind(enum.StrEnum):
    """What a change reports (contract §9)."""

    LISTED = "LISTED"
    DELISTED = "DELISTED"
    STATUS_CHANGED = "STATUS_CHANGED"


@dataclass(frozen=True, slots=True)
class DepartmentAnswer:
    """What one department said this time: its active records by id, or that it did not answer.

    `records` maps a record id to the record as shown (a JSON object); None when the
    department failed, timed out, or was served from an earlier answer (STALE).
    """

    department: Department
    records: Mapping[str, Mapping[str, Any]] | None


@dataclass(frozen=True, slots=True)
class Observation:
    """One check of a member: each department's answer and the joint status found."""

    answers: tuple[DepartmentAnswer, ...]
    status: JointStatus
    complete: bool


@dataclass(frozen=True, slots=True)
class Change:
    """One change found; `record` for LISTED and DELISTED."""

    kind: ChangeKind
    department: Department | None = None
    record: Mapping[str, Any] | None = None
    previous_status: JointStatus | None = None
    status: JointStatus | None = None


@dataclass(frozen=True, slots=True)
class MemberState:
    """What the next check is compared with; empty before the member's first (baseline) check."""

    # Each department's active records in its last answer (only departments that answered).
    last: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    # The last joint status that was not INCOMPLETE; None until there is one.
    status: str | None = None
    checked: bool = False

    def to_json(self) -> dict[str, Any]:
        """What the store keeps."""
        return {
            "last": {d: dict(records) for d, records in self.last.items()},
            "status": self.status,
            "checked": self.checked,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any] | None) -> MemberState:
        """A stored state; None is a member not yet checked."""
        if not data:
            return MemberState()
        return MemberState(dict(data["last"]), data["status"], bool(data["checked"]))


def detect(state: MemberState, seen: Observation) -> tuple[list[Change], MemberState]:
    """The changes of one check against the member's state, and the state after it.

    - The first check is the baseline: nothing is reported.
    - Per department, against that department's own last answer, and only when it answered
      this time: LISTED for a record active now that was not; DELISTED for one active then
      that is not now. A department that failed or was stale says nothing, and keeps its
      last answer for next time; one answering for the first time is its own baseline.
    - STATUS_CHANGED when the status differs from the last status that was not INCOMPLETE;
      INCOMPLETE itself is never reported (to or from), nor a CLEAR that is not complete.
    """
    changes: list[Change] = []
    last = {d: dict(records) for d, records in state.last.items()}
    for answer in sorted(seen.answers, key=lambda a: a.department.value):
        if answer.records is None:
            continue  # no answer this time: no LISTED, and above all no DELISTED
        key = answer.department.value
        before = last.get(key)
        now = dict(answer.records)
        if state.checked and before is not None:
            for record_id in sorted(now.keys() - before.keys()):
                changes.append(Change(ChangeKind.LISTED, answer.department, now[record_id]))
            for record_id in sorted(before.keys() - now.keys()):
                changes.append(Change(ChangeKind.DELISTED, answer.department, before[record_id]))
        last[key] = now
    status = state.status
    reportable = seen.status is not JointStatus.INCOMPLETE and (
        seen.status is not JointStatus.CLEAR or seen.complete
    )
    if reportable:
        if state.checked and status is not None and status != seen.status.value:
            previous = JointStatus(status)
            changes.append(
                Change(ChangeKind.STATUS_CHANGED, previous_status=previous, status=seen.status)
            )
        status = seen.status.value
    return changes, MemberState(last, status, checked=True)
