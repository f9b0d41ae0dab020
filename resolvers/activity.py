"""When a record is in force (contract §2), and which grades still count."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date, timedelta

from core.records import CreditRecord, RecordKind, TaxRating, WaterGrade

_ONE_DAY = timedelta(days=1)
# Market 严重违法失信名单 and tax 重大税收违法 publication both last 3 years at most.
LISTING_YEARS = 3


def add_years(day: date, years: int) -> date:
    """Same day N years later; 29 February falls on 28 February (the month has no 29th)."""
    year = day.year + years
    last = calendar.monthrange(year, day.month)[1]
    return day.replace(year=year, day=min(day.day, last))


def ends_on(record: CreditRecord) -> date | None:
    """Last day in force or published, None when open-ended; the record's endsOn."""
    candidates = [d for d in _end_candidates(record) if d is not None]
    return min(candidates) if candidates else None


def is_active(record: CreditRecord, today: date) -> bool:
    """True when the record is in force today; a repaired record never is."""
    if record.repaired:
        return False
    kind = record.kind
    if kind in (RecordKind.DISHONEST_DEBTOR, RecordKind.CONSUMPTION_RESTRICTION):
        # The courts delete removed listings, so whatever they return is in force.
        return True
    if kind is RecordKind.ABNORMAL_OPERATION:
        return record.removed_on is None
    if kind is RecordKind.SERIOUS_ILLEGAL:
        # The market system never sets remDate when the 3 years run out.
        return record.removed_on is None and not _lapsed(record.listed_on, today)
    if kind is RecordKind.MAJOR_TAX_VIOLATION:
        stopped = record.removed_on is not None and record.removed_on <= today
        return not stopped and not _lapsed(record.listed_on, today)
    if kind in (RecordKind.WATER_BLACKLIST, RecordKind.WATER_WATCHLIST):
        started = record.listed_on is None or record.listed_on <= today
        published = record.published_until is None or today <= record.published_until
        removed = record.removed_on is not None and record.removed_on <= today
        return started and published and not removed
    if kind is RecordKind.ADMINISTRATIVE_PENALTY:
        return record.published_until is None or today <= record.published_until
    raise ValueError(f"no activity rule for {kind}")


def _lapsed(listed_on: date | None, today: date) -> bool:
    # In force while listed_on + 3 years > today; a record without a date is kept in force
    # rather than guessed expired (a wrong "clean" is the worse error).
    return listed_on is not None and add_years(listed_on, LISTING_YEARS) <= today


def _end_candidates(record: CreditRecord) -> Iterable[date | None]:
    removed_eve = record.removed_on - _ONE_DAY if record.removed_on else None
    kind = record.kind
    if kind in (RecordKind.SERIOUS_ILLEGAL, RecordKind.MAJOR_TAX_VIOLATION):
        lapse = add_years(record.listed_on, LISTING_YEARS) if record.listed_on else None
        return (removed_eve, lapse - _ONE_DAY if lapse else None)
    if kind is RecordKind.ABNORMAL_OPERATION:
        return (removed_eve,)
    if kind in (RecordKind.WATER_BLACKLIST, RecordKind.WATER_WATCHLIST):
        return (removed_eve, record.published_until)
    if kind is RecordKind.ADMINISTRATIVE_PENALTY:
        return (record.published_until,)
    return ()


def current_tax_rating(ratings: Iterable[TaxRating]) -> TaxRating | None:
    """The rating of the latest evaluation year (tax.md: any order in the answer)."""
    return max(ratings, key=lambda r: r.year, default=None)


def water_grade_valid(grade: WaterGrade | None, today: date, blacklisted: bool) -> bool:
    """A grade counts until 有效期至 inclusive, and not while a 黑名单 entry is in force."""
    if grade is None or blacklisted:
        return False
    return grade.valid_until is None or today <= grade.valid_until
