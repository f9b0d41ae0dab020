"""GraphQL object types of the subject view; each maps a resolver view, nothing more."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from adapters.base import SourceHealth
from gateway.identity import mask_id_number
from resolvers.regions import region_name
from resolvers.subject_view import RecordView, SubjectView
from schema.enums import Department, ListingLevel, RecordKind, SourceState
from schema.permissions import require_regulator, viewer


@strawberry.type(description="行政区划 / Registration region (GB/T 2260).")
class Region:
    code: str
    name: str | None


@strawberry.type(description="登记基本信息 / Registration at market regulation.")
class Registration:
    entity_type: str | None
    status: str | None
    registered_capital_wan: float | None = strawberry.field(description="注册资本（万元）")
    currency: str | None
    established_on: date | None
    authority: str | None
    address: str | None
    business_scope: str | None
    operating_from: date | None = strawberry.field(description="营业期限自 / Operating from.")
    operating_to: date | None = strawberry.field(
        description="营业期限至，长期为空 / Operating until; null for 长期 (no end)."
    )
    approved_on: date | None = strawberry.field(description="核准日期 / Last approval.")
    registration_number: str | None = strawberry.field(description="注册号 / Old number.")


@strawberry.type(
    description="主体关联人员 / A person as seen from a subject. idNumberMasked is null for "
    "anonymous callers; idNumber only for regulators."
)
class PersonRef:
    name: str
    id_number_masked: str | None
    id_number: str | None


@strawberry.type(description="信用记录 / A credit record of one department.")
class CreditRecord:
    id: strawberry.ID = strawberry.field(
        description="<部门>:<部门记录编号> / <department>:<the department's own record id>"
    )
    department: Department
    kind: RecordKind
    level: ListingLevel
    title: str
    reason: str | None
    document_number: str | None
    authority: str | None
    listed_on: date | None
    ends_on: date | None = strawberry.field(
        description="有效或公示的最后一日 / Last day in force or published; null when open-ended."
    )
    active: bool
    repaired: bool
    disputed: bool

    @classmethod
    def from_view(cls, view: RecordView) -> CreditRecord:
        """Used wherever a record leaves the gateway."""
        r = view.record
        return cls(
            id=strawberry.ID(r.id),
            department=r.department,
            kind=r.kind,
            level=r.level,
            title=r.title,
            reason=r.reason,
            document_number=r.document_number,
            authority=r.authority,
            listed_on=r.listed_on,
            ends_on=view.ends_on,
            active=view.active,
            repaired=r.repaired,
            disputed=r.disputed,
        )


@strawberry.type(description="纳税信用等级 / Current tax credit grade.")
class TaxCredit:
    grade: str
    year: int
    evaluated_on: date | None


@strawberry.type(description="水利建设市场主体信用等级 / Water-sector credit grade.")
class WaterCredit:
    grade: str | None = strawberry.field(
        description="有效等级；过期或被列入黑名单时为空 / The grade while valid; null when "
        "expired or cancelled."
    )
    valid_until: date | None
    cancelled: bool = strawberry.field(
        description="因列入黑名单而取消 / Cancelled by an in-force 黑名单 entry."
    )


@strawberry.type(description="数据源状态 / Health and freshness of a department source.")
class SourceStatus:
    department: Department
    state: SourceState
    as_of: datetime | None = strawberry.field(
        description="数据获取或同步时间 / When the data used was fetched (live sources) or "
        "synced (file sources)."
    )
    message: str | None

    @classmethod
    def from_health(cls, health: SourceHealth) -> SourceStatus:
        """Used by Query.sources and Subject.sources."""
        return cls(
            department=health.department,
            state=health.state,
            as_of=health.as_of,
            message=health.message,
        )


@strawberry.type(description="市场主体 / One market subject stitched from every department.")
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
