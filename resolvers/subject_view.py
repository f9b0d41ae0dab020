"""One market subject stitched from every department's answer, as of one day."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property

from core.records import (
    CreditRecord,
    Department,
    PersonIdentity,
    RecordKind,
    Registration,
    SubjectFacts,
    TaxRating,
    WaterGrade,
)
from core.sources import SourceHealth
from resolvers.activity import current_tax_rating, ends_on, is_active, water_grade_valid
from resolvers.answers import Answer, Coverage


@dataclass(frozen=True, slots=True)
class RecordView:
    """A record with what today makes of it; used by records, listings and determinations."""

    record: CreditRecord
    active: bool
    ends_on: date | None


def record_views(records: Iterable[CreditRecord], today: date) -> list[RecordView]:
    """Records with today's activity, newest listing first; for subjects and persons."""
    views = [RecordView(r, is_active(r, today), ends_on(r)) for r in records]
    return sorted(views, key=lambda v: v.record.listed_on or date.min, reverse=True)


@dataclass(frozen=True, slots=True)
class WaterCreditView:
    """The published water grade and whether it still counts."""

    grade: str | None
    valid_until: date | None
    cancelled: bool


class SubjectView:
    """Built per request from the loaders' answers; every Subject field reads from it."""

    def __init__(
        self,
        uscc: str,
        answers: Mapping[Department, Answer[SubjectFacts]],
        today: date,
        name_hint: str | None = None,
    ) -> None:
        self.uscc = uscc
        self.answers = answers
        self.today = today
        # A name already known from a search hit, used when no answer carries one.
        self.name_hint = name_hint

    @cached_property
    def facts(self) -> list[SubjectFacts]:
        """Facts of the departments that answered, in department order."""
        return [a.facts for d in Department if (a := self.answers.get(d)) and a.facts]

    @property
    def known(self) -> bool:
        """True when at least one department knows the code."""
        return any(f.known for f in self.facts)

    @cached_property
    def coverage(self) -> Coverage:
        """Which departments answered for this subject (decides CLEAR or INCOMPLETE)."""
        return Coverage(self.answers.values())

    @property
    def missing(self) -> tuple[Department, ...]:
        """Departments that could not answer for this subject."""
        return self.coverage.missing

    @cached_property
    def name(self) -> str | None:
        """The registered name; other departments' spelling only when none is registered."""
        # The registry's spelling wins: departments differ in brackets and spaces.
        registered = [f.name for f in self.facts if f.registration is not None and f.name]
        others = [f.name for f in self.facts if f.known and f.name]
        return next(iter([*registered, *others]), self.name_hint)

    @property
    def registration(self) -> Registration | None:
        """Registration, from whichever department keeps the register."""
        return next((f.registration for f in self.facts if f.registration), None)

    @property
    def legal_rep(self) -> PersonIdentity | None:
        """The legal representative as registered."""
        return next((f.legal_rep for f in self.facts if f.legal_rep), None)

    @cached_property
    def records(self) -> list[RecordView]:
        """Every record of every department, newest listing first."""
        return record_views((r for f in self.facts for r in f.records), self.today)

    @property
    def tax_rating(self) -> TaxRating | None:
        """The current tax credit rating (latest evaluation year)."""
        return current_tax_rating(r for f in self.facts for r in f.tax_ratings)

    @property
    def water_credit(self) -> WaterCreditView | None:
        """The water grade; cancelled while a 黑名单 entry is in force (it wins over the file)."""
        grade: WaterGrade | None = next((f.water_grade for f in self.facts if f.water_grade), None)
        if grade is None:
            return None
        blacklisted = any(
            v.active and v.record.kind is RecordKind.WATER_BLACKLIST for v in self.records
        )
        valid = water_grade_valid(grade, self.today, blacklisted)
        return WaterCreditView(grade.grade if valid else None, grade.valid_until, blacklisted)

    def source_states(self) -> list[SourceHealth]:
        """What each department answered for this subject, in department order."""
        return self.coverage.states()
