"""One natural person: own records, positions, and what contract §4 derives from them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property

from core.records import Department, ListingLevel, PersonFacts, Position
from core.sources import SourceHealth
from resolvers.answers import Answer, Coverage
from resolvers.determination import Evidence
from resolvers.subject_view import RecordView, SubjectView, record_views

# contract §4: the responsible roles, in the order one is named when a person held several.
RESPONSIBLE_ROLES = ("法定代表人", "负责人", "实际控制人")
# contract §4: a new position in any role but this one is 易地开张.
SUPERVISOR_ROLE = "监事"


@dataclass(frozen=True, slots=True)
class RepresentationView:
    """A position of the person, with its subject when some department knows the code."""

    position: Position
    subject: SubjectView | None
    current: bool

    @property
    def responsible(self) -> bool:
        """True for 法定代表人, 负责人 and 实际控制人."""
        return self.position.role in RESPONSIBLE_ROLES


@dataclass(frozen=True, slots=True)
class DerivedView:
    """A subject's active punishment attributed to the person (记入个人信用记录)."""

    record: RecordView
    subject_uscc: str
    subject_name: str
    role: str


@dataclass(frozen=True, slots=True)
class RelocationView:
    """易地开张: a new position taken while a subject the person answered for is punished."""

    punished_uscc: str
    listing: RecordView
    new_uscc: str
    new_name: str
    started_on: date


class PersonView:
    """Built per request from the person's answers and the subjects of their positions."""

    def __init__(
        self,
        id_number: str,
        answers: Mapping[Department, Answer[PersonFacts]],
        subjects: Mapping[str, SubjectView],
        today: date,
    ) -> None:
        self.id_number = id_number
        self.answers = answers
        self.subjects = subjects
        self.today = today

    @cached_property
    def facts(self) -> list[PersonFacts]:
        """Facts of the departments that answered on the person, in department order."""
        return [a.facts for d in Department if (a := self.answers.get(d)) and a.facts]

    @property
    def positions(self) -> list[Position]:
        """Every position the market register holds for the person."""
        return [p for f in self.facts for p in f.positions]

    @cached_property
    def name(self) -> str | None:
        """The name the courts give, else the one a represented subject registered."""
        named = [f.name for f in self.facts if f.name]
        if named:
            return named[0]
        for view in self.subjects.values():
            rep = view.legal_rep
            if rep is not None and rep.id_number == self.id_number:
                return rep.name
        return None

    @cached_property
    def records(self) -> list[RecordView]:
        """The person's own records (courts, by ID), newest listing first."""
        return record_views((r for f in self.facts for r in f.records), self.today)

    @cached_property
    def representations(self) -> list[RepresentationView]:
        """Every position with its subject, most recent start first."""
        views = [
            RepresentationView(p, self.subjects.get(p.uscc), self._current(p))
            for p in self.positions
        ]
        return sorted(views, key=lambda v: v.position.started_on or date.min, reverse=True)

    @cached_property
    def derived(self) -> list[DerivedView]:
        """Active punishments of subjects the person answered for on the listing day (§4)."""
        found: dict[str, DerivedView] = {}
        responsible = sorted(
            (r for r in self.representations if r.responsible and r.subject is not None),
            key=lambda r: RESPONSIBLE_ROLES.index(r.position.role),
        )
        for rep in responsible:
            assert rep.subject is not None
            for view in rep.subject.records:
                if not view.active or view.record.level is not ListingLevel.PUNISHMENT:
                    continue
                if view.record.id in found or not _held_on(rep.position, view.record.listed_on):
                    continue
                found[view.record.id] = DerivedView(
                    view, rep.position.uscc, _subject_name(rep), rep.position.role
                )
        return sorted(
            found.values(), key=lambda d: d.record.record.listed_on or date.min, reverse=True
        )

    @cached_property
    def relocation_alerts(self) -> list[RelocationView]:
        """Positions in other subjects, other than 监事, taken strictly after a derived listing."""
        alerts: dict[tuple[str, str], RelocationView] = {}
        for derived in self.derived:
            listed_on = derived.record.record.listed_on
            if listed_on is None:
                continue
            for rep in self.representations:
                started = rep.position.started_on
                if (
                    rep.position.uscc == derived.subject_uscc
                    or rep.position.role == SUPERVISOR_ROLE
                    or started is None
                    or not listed_on < started <= self.today
                ):
                    continue
                key = (derived.record.record.id, rep.position.uscc)
                earlier = alerts.get(key)
                if earlier is None or started < earlier.started_on:
                    alerts[key] = RelocationView(
                        derived.subject_uscc,
                        derived.record,
                        rep.position.uscc,
                        _subject_name(rep),
                        started,
                    )
        return sorted(alerts.values(), key=lambda a: a.started_on, reverse=True)

    @cached_property
    def coverage(self) -> Coverage:
        """The person's own answers and those of subjects they answered for (§4)."""
        # A failure for a subject the person answered for may hide a derived listing; a
        # subject the person only supervised shows its failures on its own sources.
        subjects = (a for v in self._responsible_subjects() for a in v.answers.values())
        return Coverage([*self.answers.values(), *subjects])

    @property
    def missing(self) -> tuple[Department, ...]:
        """Departments whose silence could hide a record of the person (own or derived)."""
        return self.coverage.missing

    def evidence(self) -> Evidence:
        """Own and derived records, one entry per record id, for the joint status."""
        records = {v.record.id: v for v in self.records}
        for derived in self.derived:
            records.setdefault(derived.record.record.id, derived.record)
        return Evidence(list(records.values()), self.missing)

    def source_states(self) -> list[SourceHealth]:
        """Each department consulted: UNAVAILABLE if it failed for the person or their subjects."""
        # The very lookups `missing` rests on, so sources and status never disagree.
        return self.coverage.states()

    def _responsible_subjects(self) -> Iterable[SubjectView]:
        return (r.subject for r in self.representations if r.responsible and r.subject is not None)

    def _current(self, position: Position) -> bool:
        started = position.started_on is None or position.started_on <= self.today
        return started and (position.ended_on is None or position.ended_on >= self.today)


def _held_on(position: Position, day: date | None) -> bool:
    """contract §4: startDate ≤ listedOn and (endDate empty or endDate ≥ listedOn)."""
    if day is None:
        # A listing without a date cannot be placed in a term; attributing it is the
        # cautious reading (a wrong "clean" is the worse error).
        return True
    if position.started_on is not None and position.started_on > day:
        return False
    return position.ended_on is None or position.ended_on >= day


def _subject_name(rep: RepresentationView) -> str:
    if rep.subject is not None and rep.subject.name:
        return rep.subject.name
    return rep.position.subject_name or rep.position.uscc
