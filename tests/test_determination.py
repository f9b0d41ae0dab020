"""The determination engine on stated facts: precedence, and never CLEAR on missing data."""

from __future__ import annotations

from datetime import date, datetime

from hypothesis import given
from hypothesis import strategies as st

from core.clock import CST
from core.records import CreditRecord, Department, RecordKind, SubjectFacts, TaxRating
from core.sources import FailureKind, SourceError
from resolvers.answers import Answer
from resolvers.catalogue import load_catalogue
from resolvers.determination import JointStatus, determine
from resolvers.subject_view import SubjectView

TODAY = date(2026, 5, 20)
NOW = datetime(2026, 5, 20, 10, 0, tzinfo=CST)
USCC = "91610800MA703XY29Q"
CATALOGUE = load_catalogue()
RECORDS = {
    "none": (),
    "watch": (
        CreditRecord("MARKET:abnormal:1", Department.MARKET, RecordKind.ABNORMAL_OPERATION, "t"),
    ),
    "info": (
        CreditRecord(
            "MARKET:penalty:1",
            Department.MARKET,
            RecordKind.ADMINISTRATIVE_PENALTY,
            "t",
            published_until=date(2027, 1, 1),
        ),
    ),
}


def _view(failed: set[Department], records: str, grade: str) -> SubjectView:
    answers = {}
    for department in Department:
        if department in failed:
            error = SourceError(department, FailureKind.UNAVAILABLE, "down")
            answers[department] = Answer(department, error=error)
            continue
        facts = SubjectFacts(
            department,
            USCC,
            NOW,
            known=True,
            name="公司",
            records=RECORDS[records] if department is Department.MARKET else (),
            tax_ratings=(TaxRating(2025, grade),) if department is Department.TAX else (),
        )
        answers[department] = Answer(department, facts=facts)
    return SubjectView(USCC, answers, TODAY)


@given(
    st.sets(st.sampled_from(list(Department)), min_size=1),
    st.sampled_from(sorted(RECORDS)),
    st.sampled_from(["A", "B", "M", "C", "D"]),
)
def test_no_missing_department_ever_yields_clear(
    failed: set[Department], records: str, grade: str
) -> None:
    found = determine(_view(failed, records, grade), CATALOGUE, None, NOW)
    assert found.status is JointStatus.INCOMPLETE
    assert set(found.missing) == failed and not found.complete
    assert found.incentives == ()


def test_precedence_when_everyone_answered() -> None:
    assert determine(_view(set(), "none", "B"), CATALOGUE, None, NOW).status is JointStatus.CLEAR
    assert determine(_view(set(), "info", "B"), CATALOGUE, None, NOW).status is JointStatus.CLEAR
    assert determine(_view(set(), "watch", "A"), CATALOGUE, None, NOW).status is JointStatus.WATCH
    assert determine(_view(set(), "none", "D"), CATALOGUE, None, NOW).status is JointStatus.WATCH


def test_incentives_only_when_clear() -> None:
    clear = determine(_view(set(), "none", "A"), CATALOGUE, None, NOW)
    assert clear.incentives and all(ids == ("TAX:grade:A:2025",) for _, ids in clear.incentives)
    watched = determine(_view(set(), "watch", "A"), CATALOGUE, None, NOW)
    assert watched.incentives == ()
