"""One market subject stitched from every department's answer, as of one day."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property

from core.records import (
    ALL_PARTS,
    DEPARTMENT_OF_PART,
    CreditRecord,
    Department,
    Part,
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
from resolvers.plan import REGISTER, TAX_GRADES, WATER, NotAsked, Plan


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
    """Built per request from the loaders' answers; every Subject field reads from it.

    The answers may cover only some parts (a plan by selection, resolvers/plan.py). Each
    reading names the parts it needs and raises NotAsked when one was not asked, so "not
    asked" is never shown as "nothing on record"; what needs every department (records,
    `missing`, a code no one knows) needs every part.
    """

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

    def covers(self, parts: frozenset[Part]) -> bool:
        """True when every one of these parts was asked of its department for this subject."""
        for part in parts:
            answer = self.answers.get(DEPARTMENT_OF_PART[part])
            if answer is None:
                return False
            # An answer without facts is a department that failed: it counts as missing
            # (never CLEAR), whichever parts were asked of it.
            if answer.facts is not None and part not in answer.facts.parts:
                return False
        return True

    def settled(self, plan: Plan, need_known: bool = True) -> bool:
        """True when the plan's fields read here as after asking everyone; else they are asked."""
        # A partial plan settles once the parts asked know the code (when null or NOT_FOUND
        # is at stake) and, when the name is shown, the register named it: only then can no
        # other department change what is shown.
        if self.covers(ALL_PARTS):
            return True
        if need_known and not any(f.known for f in self.facts):
            return False
        return not plan.name or self.registered_name is not None

    @property
    def known(self) -> bool:
        """True when at least one department knows the code; False only once all were asked."""
        if any(f.known for f in self.facts):
            return True
        self._need(ALL_PARTS)
        return False

    @cached_property
    def coverage(self) -> Coverage:
        """Which departments answered for this subject (decides CLEAR or INCOMPLETE)."""
        return Coverage(self.answers.values())

    @property
    def missing(self) -> tuple[Department, ...]:
        """Departments that could not answer for this subject (everyone must have been asked)."""
        self._need(ALL_PARTS)
        return self.coverage.missing

    @property
    def registered_name(self) -> str | None:
        """The name in the register (market), when it has one."""
        self._need(REGISTER.parts)
        return next((f.name for f in self.facts if f.registration is not None and f.name), None)

    @cached_property
    def name(self) -> str | None:
        """The registered name; other departments' spelling only when none is registered."""
        # The registry's spelling wins: departments differ in brackets and spaces.
        registered = self.registered_name
        if registered is not None:
            return registered
        # Any other department's spelling: only after every department was asked.
        self._need(ALL_PARTS)
        others = [f.name for f in self.facts if f.known and f.name]
        return next(iter(others), self.name_hint)

    @property
    def registration(self) -> Registration | None:
        """Registration, from whichever department keeps the register."""
        self._need(REGISTER.parts)
        return next((f.registration for f in self.facts if f.registration), None)

    @property
    def legal_rep(self) -> PersonIdentity | None:
        """The legal representative as registered."""
        self._need(REGISTER.parts)
        return next((f.legal_rep for f in self.facts if f.legal_rep), None)

    @cached_property
    def records(self) -> list[RecordView]:
        """Every record of every department, newest listing first."""
        self._need(ALL_PARTS)
        return record_views((r for f in self.facts for r in f.records), self.today)

    @property
    def tax_rating(self) -> TaxRating | None:
        """The current tax credit rating (latest evaluation year)."""
        self._need(TAX_GRADES.parts)
        return current_tax_rating(r for f in self.facts for r in f.tax_ratings)

    @property
    def water_credit(self) -> WaterCreditView | None:
        """The water grade; cancelled while a 黑名单 entry is in force (it wins over the file)."""
        self._need(WATER.parts)
        grade: WaterGrade | None = next((f.water_grade for f in self.facts if f.water_grade), None)
        if grade is None:
            return None
        # Only water lists 黑名单 entries, so its own answer decides (no other part needed).
        blacklisted = any(
            r.kind is RecordKind.WATER_BLACKLIST and is_active(r, self.today)
            for f in self.facts
            for r in f.records
        )
        valid = water_grade_valid(grade, self.today, blacklisted)
        return WaterCreditView(grade.grade if valid else None, grade.valid_until, blacklisted)

    def source_states(self) -> list[SourceHealth]:
        """What each department asked answered for this subject, in department order."""
        return self.coverage.states()

    def _need(self, parts: frozenset[Part]) -> None:
        if not self.covers(parts):
            missing = sorted(p.value for p in parts if not self.covers(frozenset({p})))
            raise NotAsked(f"{self.uscc} read without asking {', '.join(missing)}")
