"""Change detection (contract §9) over random sequences of department answers and failures."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.records import Department
from resolvers.changes import (
    Change,
    ChangeKind,
    DepartmentAnswer,
    MemberState,
    Observation,
    detect,
)
from resolvers.determination import JointStatus

DEPARTMENTS = (Department.COURTS, Department.MARKET, Department.TAX)
RECORD_IDS = ("A", "B", "C")


def _record(department: Department, record_id: str) -> dict[str, Any]:
    return {"id": f"{department.value}:{record_id}", "title": f"record {record_id}"}


answers = st.tuples(
    *(
        st.one_of(
            st.none(),  # failed, timed out or served stale
            st.frozensets(st.sampled_from(RECORD_IDS)),
        )
        for _ in DEPARTMENTS
    )
)
observations = st.builds(
    lambda found, status, complete: Observation(
        tuple(
            DepartmentAnswer(
                d, None if ids is None else {f"{d.value}:{i}": _record(d, i) for i in sorted(ids)}
            )
            for d, ids in zip(DEPARTMENTS, found, strict=True)
        ),
        status,
        complete,
    ),
    answers,
    st.sampled_from(list(JointStatus)),
    st.booleans(),
)


def run(sequence: list[Observation], through_json: bool = False) -> list[list[Change]]:
    state = MemberState()
    found = []
    for seen in sequence:
        if through_json:
            # As between two checks: stored, read back, perhaps by another process.
            state = MemberState.from_json(json.loads(json.dumps(state.to_json())))
        changes, state = detect(state, seen)
        found.append(changes)
    return found


@settings(max_examples=400, deadline=None)
@given(st.lists(observations, min_size=1, max_size=12))
def test_the_rules_hold_for_any_sequence(sequence: list[Observation]) -> None:
    found = run(sequence)
    assert found[0] == [], "the baseline check reports nothing"
    for seen, changes in zip(sequence, found, strict=True):
        answered = {a.department for a in seen.answers if a.records is not None}
        for change in changes:
            if change.kind in (ChangeKind.LISTED, ChangeKind.DELISTED):
                # Never a listing change of a department that did not answer this time.
                assert change.department in answered
            else:
                assert change.status is not JointStatus.INCOMPLETE
                assert change.previous_status is not JointStatus.INCOMPLETE
                assert change.status is not JointStatus.CLEAR or seen.complete
                assert change.status != change.previous_status


@settings(max_examples=200, deadline=None)
@given(st.lists(observations, min_size=1, max_size=12))
def test_replaying_the_answers_in_order_gives_the_same_changes(
    sequence: list[Observation],
) -> None:
    assert run(sequence) == run(sequence) == run(sequence, through_json=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(observations, min_size=2, max_size=12))
def test_a_delisted_record_was_in_that_departments_last_answer(
    sequence: list[Observation],
) -> None:
    last: dict[Department, set[str]] = {}
    for seen, changes in zip(sequence, run(sequence), strict=True):
        for change in changes:
            if change.kind is ChangeKind.DELISTED:
                assert change.department is not None and change.record is not None
                assert change.record["id"] in last[change.department]
            if change.kind is ChangeKind.LISTED:
                assert change.department is not None and change.record is not None
                assert change.record["id"] not in last.get(change.department, set())
        for answer in seen.answers:
            if answer.records is not None:
                last[answer.department] = set(answer.records)


def test_a_failed_department_keeps_its_listing_and_is_compared_when_it_answers() -> None:
    listed = {"COURTS:A": _record(Department.COURTS, "A")}

    def seen(records: dict[str, Any] | None, status: JointStatus, complete: bool) -> Observation:
        return Observation((DepartmentAnswer(Department.COURTS, records),), status, complete)

    changes = run(
        [
            seen(listed, JointStatus.PUNISHED, True),  # baseline
            seen(None, JointStatus.INCOMPLETE, False),  # courts down: nothing at all
            seen(None, JointStatus.PUNISHED, False),  # still down: no DELISTED
            seen({}, JointStatus.CLEAR, True),  # answered without it: DELISTED, then CLEAR
        ]
    )
    assert changes[:3] == [[], [], []]
    assert [c.kind for c in changes[3]] == [ChangeKind.DELISTED, ChangeKind.STATUS_CHANGED]
    assert changes[3][0].record == listed["COURTS:A"]
    assert changes[3][1].previous_status is JointStatus.PUNISHED
    assert changes[3][1].status is JointStatus.CLEAR
