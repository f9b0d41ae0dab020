"""Contract §2 activity rules at their boundaries: the day before, of and after each date."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from core.records import CreditRecord, Department, RecordKind, WaterGrade
from resolvers.activity import add_years, ends_on, is_active, water_grade_valid

TODAY = date(2026, 5, 20)
DAY = timedelta(days=1)


def _record(kind: RecordKind, **fields: object) -> CreditRecord:
    return CreditRecord(id="X:1", department=Department.MARKET, kind=kind, title="t", **fields)


THREE_YEARS_AGO = date(2023, 5, 20)

CASES = [
    # (label, kind, fields, active today)
    ("courts dishonest always", RecordKind.DISHONEST_DEBTOR, {}, True),
    ("courts restriction always", RecordKind.CONSUMPTION_RESTRICTION, {}, True),
    ("abnormal listed", RecordKind.ABNORMAL_OPERATION, {"listed_on": date(2015, 1, 1)}, True),
    ("abnormal removed", RecordKind.ABNORMAL_OPERATION, {"removed_on": TODAY}, False),
    (
        "abnormal removed tomorrow",
        RecordKind.ABNORMAL_OPERATION,
        {"removed_on": TODAY + DAY},
        False,
    ),
    (
        "illegal removed tomorrow",
        RecordKind.SERIOUS_ILLEGAL,
        {"listed_on": TODAY - DAY * 30, "removed_on": TODAY + DAY},
        False,
    ),
    (
        "illegal day after 3y",
        RecordKind.SERIOUS_ILLEGAL,
        {"listed_on": THREE_YEARS_AGO + DAY},
        True,
    ),
    ("illegal exactly 3y", RecordKind.SERIOUS_ILLEGAL, {"listed_on": THREE_YEARS_AGO}, False),
    (
        "illegal day before 3y",
        RecordKind.SERIOUS_ILLEGAL,
        {"listed_on": THREE_YEARS_AGO - DAY},
        False,
    ),
    (
        "illegal removed",
        RecordKind.SERIOUS_ILLEGAL,
        {"listed_on": TODAY - DAY * 30, "removed_on": TODAY - DAY},
        False,
    ),
    ("tax within 3y", RecordKind.MAJOR_TAX_VIOLATION, {"listed_on": THREE_YEARS_AGO + DAY}, True),
    ("tax exactly 3y", RecordKind.MAJOR_TAX_VIOLATION, {"listed_on": THREE_YEARS_AGO}, False),
    (
        "tax day before 3y",
        RecordKind.MAJOR_TAX_VIOLATION,
        {"listed_on": THREE_YEARS_AGO - DAY},
        False,
    ),
    (
        "tax stop yesterday",
        RecordKind.MAJOR_TAX_VIOLATION,
        {"listed_on": TODAY - DAY * 30, "removed_on": TODAY - DAY},
        False,
    ),
    (
        "tax stop tomorrow",
        RecordKind.MAJOR_TAX_VIOLATION,
        {"listed_on": TODAY - DAY, "removed_on": TODAY + DAY},
        True,
    ),
    (
        "tax stop today",
        RecordKind.MAJOR_TAX_VIOLATION,
        {"listed_on": TODAY - DAY, "removed_on": TODAY},
        False,
    ),
    (
        "water listed today",
        RecordKind.WATER_BLACKLIST,
        {"listed_on": TODAY, "published_until": TODAY + DAY},
        True,
    ),
    (
        "water listed yesterday",
        RecordKind.WATER_BLACKLIST,
        {"listed_on": TODAY - DAY, "published_until": TODAY + DAY},
        True,
    ),
    (
        "water listed tomorrow",
        RecordKind.WATER_BLACKLIST,
        {"listed_on": TODAY + DAY, "published_until": TODAY + DAY * 9},
        False,
    ),
    (
        "water published until tomorrow",
        RecordKind.WATER_WATCHLIST,
        {"listed_on": TODAY - DAY, "published_until": TODAY + DAY},
        True,
    ),
    (
        "water published until today",
        RecordKind.WATER_WATCHLIST,
        {"listed_on": TODAY - DAY, "published_until": TODAY},
        True,
    ),
    (
        "water published until yesterday",
        RecordKind.WATER_WATCHLIST,
        {"listed_on": TODAY - DAY * 9, "published_until": TODAY - DAY},
        False,
    ),
    (
        "water removed tomorrow",
        RecordKind.WATER_BLACKLIST,
        {"listed_on": TODAY - DAY, "published_until": TODAY + DAY * 9, "removed_on": TODAY + DAY},
        True,
    ),
    (
        "water removed yesterday",
        RecordKind.WATER_BLACKLIST,
        {
            "listed_on": TODAY - DAY * 9,
            "published_until": TODAY + DAY * 9,
            "removed_on": TODAY - DAY,
        },
        False,
    ),
    (
        "water removed today",
        RecordKind.WATER_BLACKLIST,
        {"listed_on": TODAY - DAY, "published_until": TODAY + DAY * 9, "removed_on": TODAY},
        False,
    ),
    (
        "penalty until tomorrow",
        RecordKind.ADMINISTRATIVE_PENALTY,
        {"published_until": TODAY + DAY},
        True,
    ),
    ("penalty until today", RecordKind.ADMINISTRATIVE_PENALTY, {"published_until": TODAY}, True),
    (
        "penalty until yesterday",
        RecordKind.ADMINISTRATIVE_PENALTY,
        {"published_until": TODAY - DAY},
        False,
    ),
    (
        "penalty repaired",
        RecordKind.ADMINISTRATIVE_PENALTY,
        {"published_until": TODAY + DAY, "repaired": True},
        False,
    ),
    (
        "penalty disputed stays",
        RecordKind.ADMINISTRATIVE_PENALTY,
        {"published_until": TODAY + DAY, "disputed": True},
        True,
    ),
]


@pytest.mark.parametrize(("label", "kind", "fields", "expected"), CASES, ids=[c[0] for c in CASES])
def test_activity_rule(
    label: str, kind: RecordKind, fields: dict[str, object], expected: bool
) -> None:
    assert is_active(_record(kind, **fields), TODAY) is expected


def test_ends_on_is_the_last_day_in_force() -> None:
    illegal = _record(RecordKind.SERIOUS_ILLEGAL, listed_on=date(2025, 3, 1))
    assert ends_on(illegal) == date(2028, 2, 29)
    removed = _record(
        RecordKind.SERIOUS_ILLEGAL, listed_on=date(2025, 3, 1), removed_on=date(2026, 1, 10)
    )
    assert ends_on(removed) == date(2026, 1, 9)
    water = _record(
        RecordKind.WATER_BLACKLIST, published_until=date(2027, 1, 1), removed_on=date(2026, 7, 1)
    )
    assert ends_on(water) == date(2026, 6, 30)
    assert ends_on(_record(RecordKind.DISHONEST_DEBTOR)) is None


def test_leap_day_anniversary_falls_on_28_february() -> None:
    assert add_years(date(2024, 2, 29), 3) == date(2027, 2, 28)
    assert add_years(date(2024, 2, 29), 4) == date(2028, 2, 29)


def test_water_grade_validity() -> None:
    grade = WaterGrade("AAA", date(2025, 6, 1), TODAY)
    assert water_grade_valid(grade, TODAY, blacklisted=False)
    assert not water_grade_valid(grade, TODAY + DAY, blacklisted=False)
    assert not water_grade_valid(grade, TODAY, blacklisted=True)
