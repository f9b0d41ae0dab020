"""GraphQL object types of the subject view; each maps a resolver view, nothing more."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from core.sources import SourceHealth
from resolvers.subject_view import RecordView
from schema.enums import Department, ListingLevel, RecordKind, SourceState


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


@strawberry.type(description="批量查询错误 / Why one item of a batch has no subject.")
class LookupError:
    code: str = strawberry.field(description="INVALID_USCC, NOT_FOUND or SOURCE_UNAVAILABLE")
    message: str
