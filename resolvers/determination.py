"""Joint status (联合奖惩状态, contract §3) and supervision class of one subject."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from core.records import Department, ListingLevel
from resolvers.catalogue import Catalogue, Measure, MeasureKind, Scenario, SubjectType
from resolvers.subject_view import RecordView, SubjectView

# Fact names the catalogue's triggers use, besides record kinds.
TAX_GRADE_D = "TAX_GRADE_D"
TAX_GRADE_A = "TAX_GRADE_A"
WATER_GRADE_AAA = "WATER_GRADE_AAA"


class JointStatus(enum.StrEnum):
    """The contract's status values, in order of precedence."""

    PUNISHED = "PUNISHED"
    INCOMPLETE = "INCOMPLETE"
    WATCH = "WATCH"
    CLEAR = "CLEAR"


class CreditClass(enum.StrEnum):
    """分级分类 supervision classes."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"


DEFAULT_SPOT_CHECK_RATIOS: Mapping[str, float] = {"A": 0.05, "B": 0.2, "C": 0.6, "D": 1.0}


@dataclass(frozen=True, slots=True)
class Determination:
    """The answer to "is this subject under joint punishment, and what follows"."""

    status: JointStatus
    missing: tuple[Department, ...]
    listings: tuple[RecordView, ...]
    measures: tuple[tuple[Measure, tuple[str, ...]], ...]
    incentives: tuple[tuple[Measure, tuple[str, ...]], ...]
    watch_facts: tuple[str, ...]
    incentive_facts: tuple[str, ...]
    evaluated_at: datetime

    @property
    def complete(self) -> bool:
        """False whenever a department could not answer, also under PUNISHED."""
        return not self.missing


@dataclass(frozen=True, slots=True)
class Supervision:
    """Supervision class, its spot-check ratio and the facts it rests on."""

    credit_class: CreditClass
    spot_check_ratio: float
    basis: tuple[str, ...]


def determine(
    view: SubjectView,
    catalogue: Catalogue,
    scenario: Scenario | None,
    evaluated_at: datetime,
) -> Determination:
    """Evaluated on query over the subject's active records (contract §3), in order."""
    watch_facts, incentive_facts = _rating_facts(view)
    return judge(
        Evidence(view.records, view.missing, watch_facts, incentive_facts),
        catalogue,
        scenario,
        evaluated_at,
        SubjectType.ORGANISATION,
    )


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a determination rests on: records, departments that did not answer, rating facts."""

    records: Sequence[RecordView]
    missing: tuple[Department, ...]
    watch_facts: tuple[str, ...] = ()
    incentive_facts: tuple[str, ...] = ()


def judge(
    evidence: Evidence,
    catalogue: Catalogue,
    scenario: Scenario | None,
    evaluated_at: datetime,
    subject_type: SubjectType,
) -> Determination:
    """Contract §3 over any evidence; used for subjects and for persons (own + derived)."""
    listings = tuple(
        v
        for v in evidence.records
        if v.active and v.record.level in (ListingLevel.PUNISHMENT, ListingLevel.WATCH)
    )
    watch_facts, incentive_facts = evidence.watch_facts, evidence.incentive_facts
    missing = evidence.missing
    punished = any(v.record.level is ListingLevel.PUNISHMENT for v in listings)
    if punished:
        status = JointStatus.PUNISHED
    elif missing:
        # Never CLEAR (nor WATCH) on missing data: the absent department may hold a listing.
        status = JointStatus.INCOMPLETE
    elif listings or watch_facts:
        status = JointStatus.WATCH
    else:
        status = JointStatus.CLEAR
    triggers: dict[str, list[str]] = {}
    for v in listings:
        triggers.setdefault(v.record.kind.value, []).append(v.record.id)
    for fact in watch_facts:
        triggers.setdefault(_trigger_of(fact), []).append(fact)
    measures = catalogue.triggered(triggers, MeasureKind.PUNISHMENT, subject_type, scenario)
    incentives = []
    if status is JointStatus.CLEAR:
        # Incentives apply only to a subject found clean by every department.
        facts = {_trigger_of(f): [f] for f in incentive_facts}
        incentives = catalogue.triggered(facts, MeasureKind.INCENTIVE, subject_type, scenario)
    return Determination(
        status=status,
        missing=missing,
        listings=listings,
        measures=tuple((m, tuple(ids)) for m, ids in measures),
        incentives=tuple((m, tuple(ids)) for m, ids in incentives),
        watch_facts=watch_facts,
        incentive_facts=incentive_facts,
        evaluated_at=evaluated_at,
    )


def supervise(
    determination: Determination,
    view: SubjectView,
    ratios: Mapping[str, float] = DEFAULT_SPOT_CHECK_RATIOS,
) -> Supervision:
    """分级分类: D when PUNISHED, C when WATCH or INCOMPLETE, A when CLEAR and well rated."""
    status = determination.status
    if status is JointStatus.PUNISHED:
        basis = tuple(v.record.id for v in determination.listings if _punishing(v))
        return Supervision(CreditClass.D, ratios[CreditClass.D], basis)
    if status is JointStatus.INCOMPLETE:
        basis = tuple(f"{d.value}:unavailable" for d in determination.missing)
        return Supervision(CreditClass.C, ratios[CreditClass.C], basis)
    if status is JointStatus.WATCH:
        basis = tuple(v.record.id for v in determination.listings) + determination.watch_facts
        return Supervision(CreditClass.C, ratios[CreditClass.C], basis)
    good = _good_ratings(view)
    if good:
        return Supervision(CreditClass.A, ratios[CreditClass.A], good)
    return Supervision(CreditClass.B, ratios[CreditClass.B], ("no listings, no A rating",))


def _punishing(view: RecordView) -> bool:
    return view.record.level is ListingLevel.PUNISHMENT


def _rating_facts(view: SubjectView) -> tuple[tuple[str, ...], tuple[str, ...]]:
    watch: list[str] = []
    incentive: list[str] = []
    rating = view.tax_rating
    if rating is not None and rating.grade in ("A", "D"):
        fact = f"TAX:grade:{rating.grade}:{rating.year}"
        (watch if rating.grade == "D" else incentive).append(fact)
    water = view.water_credit
    if water is not None and water.grade == "AAA":
        incentive.append(f"WATER:grade:AAA:{water.valid_until}")
    return tuple(watch), tuple(incentive)


def _good_ratings(view: SubjectView) -> tuple[str, ...]:
    facts = []
    rating = view.tax_rating
    if rating is not None and rating.grade == "A":
        facts.append(f"TAX:grade:A:{rating.year}")
    water = view.water_credit
    if water is not None and water.grade in ("AAA", "AA"):
        facts.append(f"WATER:grade:{water.grade}:{water.valid_until}")
    return tuple(facts)


def _trigger_of(fact: str) -> str:
    # "TAX:grade:D:2025" -> "TAX_GRADE_D"; "WATER:grade:AAA:…" -> "WATER_GRADE_AAA"
    department, _, grade = fact.split(":")[:3]
    return f"{department}_GRADE_{grade}"
