"""The Subject type: one market subject, every field read from its SubjectView."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from core.masking import mask_id_number
from resolvers.determination import determine, supervise
from resolvers.plan import FULL, NAME, NOTHING, REGISTER, TAX_GRADES, WATER, Plan
from resolvers.regions import region_name
from resolvers.subject_view import SubjectView
from schema.determination import JointPunishment, Supervision
from schema.enums import Department, RecordKind, Scenario
from schema.permissions import context, require_regulator, viewer
from schema.types import (
    CreditRecord,
    PersonRef,
    Region,
    Registration,
    SourceStatus,
    TaxCredit,
    WaterCredit,
)

# What each Subject field reads of the departments (docs/operations.md, "What a query asks
# the departments"); the one place saying so. A field missing here asks everything.
FIELD_PLANS: Mapping[str, Plan] = {
    "__typename": NOTHING,
    "uscc": NOTHING,
    "region": NOTHING,  # from the code itself (characters 3–8)
    "name": NAME,
    "registration": REGISTER,
    "legalRepresentative": REGISTER,
    "taxCredit": TAX_GRADES,
    "waterCredit": WATER,
    # The determination, and what it is shown beside, rest on every department; `sources`
    # lists what each of the four answered for the subject.
    "records": FULL,
    "jointPunishment": FULL,
    "supervision": FULL,
    "sources": FULL,
}


def plan_of(info: strawberry.Info, *path: str) -> Plan:
    """The plan of a root field: the Subject fields selected at `path` below it, merged."""
    # info.selected_fields holds the root field's own nodes (one per repetition of it, all
    # merged by GraphQL); fragments and inline fragments are walked, aliases ignored: a
    # field asks the same whatever it is called.
    return _plan_below(info.selected_fields, (info.field_name, *path))


def _plan_below(selections: Iterable[Selection], path: Sequence[str]) -> Plan:
    if not path:
        return Plan.union(FIELD_PLANS.get(f.name, FULL) for f in _fields(selections))
    head, rest = path[0], path[1:]
    return Plan.union(
        _plan_below(f.selections, rest) for f in _fields(selections) if f.name == head
    )


def _fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    # @skip and @include are not evaluated: a field they leave out costs calls, never data.
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        else:
            yield from _fields(selection.selections)


# An Apollo Federation entity (schema/federation.py): other subgraphs refer to a subject by
# its USCC and a router resolves it through `_entities`, like `subject(uscc)`.
@strawberry.federation.type(
    keys=["uscc"], description="市场主体 / One market subject stitched from every department."
)
class Subject:
    view: strawberry.Private[SubjectView]

    @strawberry.field(description="统一社会信用代码 / Unified social credit code.")
    def uscc(self) -> str:
        return self.view.uscc

    @strawberry.field(description="名称（以登记机关为准）/ Name as registered.")
    def name(self) -> str:
        return self.view.name or self.view.uscc

    @strawberry.field(
        description="登记管理机关行政区划 / Region from USCC characters 3–8 (GB/T 2260)."
    )
    def region(self) -> Region | None:
        code = self.view.uscc[2:8]
        return Region(code=code, name=region_name(code))

    @strawberry.field(
        description="登记信息；市场监管未答复时为空 / Null when market regulation could not answer."
    )
    def registration(self) -> Registration | None:
        reg = self.view.registration
        if reg is None:
            return None
        capital = reg.registered_capital_wan
        return Registration(
            entity_type=reg.entity_type,
            status=reg.status,
            registered_capital_wan=float(capital) if capital is not None else None,
            currency=reg.currency,
            established_on=reg.established_on,
            authority=reg.authority,
            address=reg.address,
            business_scope=reg.business_scope,
            operating_from=reg.operating_from,
            operating_to=reg.operating_to,
            approved_on=reg.approved_on,
            registration_number=reg.registration_number,
        )

    @strawberry.field(description="法定代表人 / The legal representative.")
    def legal_representative(self, info: strawberry.Info) -> PersonRef | None:
        rep = self.view.legal_rep
        if rep is None:
            return None
        caller = viewer(info)
        number = rep.id_number
        masked = mask_id_number(number) if number and not caller.anonymous else None
        full = number if number and caller.regulator else None
        return PersonRef(name=rep.name, id_number_masked=masked, id_number=full)

    @strawberry.field(
        description="各部门信用记录；失效、过期或已修复的记录仅监管部门可见 / Records from every "
        "department. Inactive, expired or repaired records only for regulators with "
        "includeInactive."
    )
    def records(
        self,
        info: strawberry.Info,
        department: Department | None = strawberry.UNSET,
        kind: RecordKind | None = strawberry.UNSET,
        include_inactive: bool | None = False,
    ) -> list[CreditRecord]:
        if include_inactive:
            require_regulator(info, "includeInactive")
        views = self.view.records
        return [
            CreditRecord.from_view(v)
            for v in views
            if (include_inactive or v.active)
            and (not department or v.record.department is department)
            and (not kind or v.record.kind is kind)
        ]

    @strawberry.field(description="纳税信用等级（最近评价年度）/ Current tax credit grade.")
    def tax_credit(self) -> TaxCredit | None:
        rating = self.view.tax_rating
        if rating is None:
            return None
        return TaxCredit(grade=rating.grade, year=rating.year, evaluated_on=rating.evaluated_on)

    @strawberry.field(description="水利信用等级 / Water-sector credit grade.")
    def water_credit(self) -> WaterCredit | None:
        water = self.view.water_credit
        if water is None:
            return None
        return WaterCredit(
            grade=water.grade, valid_until=water.valid_until, cancelled=water.cancelled
        )

    @strawberry.field(
        description="各部门对本主体的答复情况 / What each department answered for THIS subject."
    )
    def sources(self) -> list[SourceStatus]:
        return [SourceStatus.from_health(h) for h in self.view.source_states()]

    @strawberry.field(
        description="联合奖惩状态；指定场景时仅列该场景措施 / Joint status; with a scenario only "
        "that scenario's measures."
    )
    def joint_punishment(
        self, info: strawberry.Info, scenario: Scenario | None = strawberry.UNSET
    ) -> JointPunishment:
        ctx = context(info)
        found = determine(self.view, ctx.services.catalogue, scenario or None, ctx.now)
        return JointPunishment.of(found)

    @strawberry.field(
        description="分级分类监管：监管等级及双随机抽查比例 / The supervision class and the "
        "spot-check ratio that follows from it."
    )
    def supervision(self, info: strawberry.Info) -> Supervision:
        ctx = context(info)
        found = determine(self.view, ctx.services.catalogue, None, ctx.now)
        result = supervise(found, self.view, ctx.services.spot_check_ratios)
        return Supervision(
            credit_class=result.credit_class,
            spot_check_ratio=result.spot_check_ratio,
            basis=list(result.basis),
        )
