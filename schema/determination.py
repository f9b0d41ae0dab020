"""GraphQL types of the catalogue, the joint status and the supervision class."""

from __future__ import annotations

import functools
from datetime import datetime

import strawberry

from resolvers import catalogue, determination
from schema.enums import (
    CreditClass,
    Department,
    JointStatus,
    MeasureCategory,
    MeasureKind,
    Scenario,
    SubjectType,
)
from schema.types import CreditRecord


@strawberry.type(description="联合奖惩措施（目录清单条目）/ One entry of the measure catalogue.")
class Measure:
    code: strawberry.ID
    name: str
    kind: MeasureKind
    category: MeasureCategory
    content: str
    legal_basis: list[str]
    implementing_units: list[str]
    scenarios: list[Scenario]
    applies_to: list[SubjectType]
    administrative_unit: str = strawberry.field(description="行政单位 / Administrative unit.")
    reason: str = strawberry.field(description="实施事由 / Grounds for the measure.")
    evidence: list[str] = strawberry.field(description="证据材料 / Evidence required.")

    @classmethod
    def of(cls, m: catalogue.Measure) -> Measure:
        """Used by the measures query and applied measures: one object per catalogue entry."""
        return _measure_of(m)

    @classmethod
    def build(cls, m: catalogue.Measure) -> Measure:
        """The GraphQL object of one catalogue entry; built once per entry by Measure.of."""
        return cls(
            code=strawberry.ID(m.code),
            name=m.name,
            kind=m.kind,
            category=m.category,
            content=m.content,
            legal_basis=list(m.legal_basis),
            implementing_units=list(m.implementing_units),
            scenarios=list(m.scenarios),
            applies_to=list(m.applies_to),
            administrative_unit=m.administrative_unit,
            reason=m.reason,
            evidence=list(m.evidence),
        )


# Catalogue entries never change while the gateway runs: each is made a GraphQL object once,
# not again for every applied measure of every lookup (a measurable share of a warm one).
@functools.lru_cache(maxsize=1024)
def _measure_of(m: catalogue.Measure) -> Measure:
    return Measure.build(m)


@strawberry.type(
    description="适用的措施及其触发记录 / A measure that applies, and what triggers it."
)
class AppliedMeasure:
    measure: Measure
    triggered_by: list[str] = strawberry.field(
        description="触发记录或评级事实 / Record ids (or rating facts such as TAX:grade:A:2025)."
    )


@strawberry.type(description="联合奖惩状态 / Joint punishment and incentive status (contract §3).")
class JointPunishment:
    status: JointStatus
    complete: bool = strawberry.field(
        description="任一部门未答复时为假 / False when any department could not answer."
    )
    missing_sources: list[Department]
    listings: list[CreditRecord] = strawberry.field(
        description="有效的惩戒或关注记录 / Active records of level PUNISHMENT or WATCH."
    )
    measures: list[AppliedMeasure]
    incentives: list[AppliedMeasure]
    evaluated_at: datetime

    @classmethod
    def of(cls, d: determination.Determination) -> JointPunishment:
        """Used by Subject.jointPunishment."""
        return cls(
            status=d.status,
            complete=d.complete,
            missing_sources=list(d.missing),
            listings=[CreditRecord.from_view(v) for v in d.listings],
            measures=[
                AppliedMeasure(measure=Measure.of(m), triggered_by=list(i)) for m, i in d.measures
            ],
            incentives=[
                AppliedMeasure(measure=Measure.of(m), triggered_by=list(i)) for m, i in d.incentives
            ],
            evaluated_at=d.evaluated_at,
        )


@strawberry.type(description="分级分类监管 / Supervision class and the 双随机 spot-check ratio.")
class Supervision:
    credit_class: CreditClass
    spot_check_ratio: float
    basis: list[str]
