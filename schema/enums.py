"""GraphQL enums; the domain's own enums exposed under the contract's names."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

from adapters import base, records

if TYPE_CHECKING:
    # strawberry.enum registers and returns the very same class; type checkers see it as is.
    from adapters.base import SourceState
    from adapters.records import Department, ListingLevel, RecordKind
else:
    Department = strawberry.enum(records.Department, description="部门 / A departmental system.")
    RecordKind = strawberry.enum(
        records.RecordKind, description="信用记录种类 / Kind of credit record."
    )
    ListingLevel = strawberry.enum(
        records.ListingLevel, description="记录等级 / Weight of a record in the joint status."
    )
    SourceState = strawberry.enum(base.SourceState, description="数据源状态 / Health of a source.")

__all__ = ["Department", "ListingLevel", "RecordKind", "SourceState"]
