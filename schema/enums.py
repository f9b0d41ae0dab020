"""GraphQL enums; the domain's own enums exposed under the contract's names."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

from core import audit, records, roles, sources
from resolvers import catalogue, determination

if TYPE_CHECKING:
    # strawberry.enum registers and returns the very same class; type checkers see it as is.
    from core.audit import AuditOutcome
    from core.records import Department, ListingLevel, RecordKind
    from core.roles import QueryPurpose
    from core.sources import SourceState
    from resolvers.catalogue import MeasureCategory, MeasureKind, Scenario, SubjectType
    from resolvers.determination import CreditClass, JointStatus
else:
    Department = strawberry.enum(records.Department, description="部门 / A departmental system.")
    RecordKind = strawberry.enum(
        records.RecordKind, description="信用记录种类 / Kind of credit record."
    )
    ListingLevel = strawberry.enum(
        records.ListingLevel, description="记录等级 / Weight of a record in the joint status."
    )
    SourceState = strawberry.enum(
        sources.SourceState, description="数据源状态 / Health of a source."
    )
    Scenario = strawberry.enum(catalogue.Scenario, description="应用场景 / Where measures apply.")
    MeasureKind = strawberry.enum(catalogue.MeasureKind, description="惩戒或激励 / Kind.")
    MeasureCategory = strawberry.enum(catalogue.MeasureCategory, description="措施类别 / Category.")
    SubjectType = strawberry.enum(catalogue.SubjectType, description="适用对象 / Applies to.")
    JointStatus = strawberry.enum(
        determination.JointStatus, description="联合奖惩状态 / Joint status (contract §3)."
    )
    CreditClass = strawberry.enum(
        determination.CreditClass, description="分级分类监管等级 / Supervision class."
    )

    QueryPurpose = strawberry.enum(
        roles.QueryPurpose,
        description="查询目的 / Why personal information is asked for.",
    )
    AuditOutcome = strawberry.enum(
        audit.AuditOutcome, description="准予或拒绝 / Granted or denied."
    )

__all__ = [
    "AuditOutcome",
    "CreditClass",
    "Department",
    "JointStatus",
    "ListingLevel",
    "MeasureCategory",
    "MeasureKind",
    "QueryPurpose",
    "RecordKind",
    "Scenario",
    "SourceState",
    "SubjectType",
]
