"""GraphQL types of the personal-information query log (auditLog, regulators only)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from core import audit
from resolvers.subjects import encode_cursor
from schema.enums import AuditOutcome
from schema.page import PageInfo

AUDIT_CURSOR = "a"


@strawberry.type(
    description="个人信息查询日志条目 / One entry of the personal-information query log."
)
class AuditEntry:
    id: strawberry.ID
    at: datetime
    client_id: str
    role: str
    operation: str
    purpose: str | None
    authorization_ref: str | None
    target: str = strawberry.field(description="被查询身份（脱敏）/ Masked identity looked up.")
    outcome: AuditOutcome
    reason: str | None = strawberry.field(
        description="拒绝原因（错误代码）/ Why a call was denied (its error code); null if granted."
    )
    hash: str = strawberry.field(description="SHA-256 over the entry's fields and prevHash.")
    prev_hash: str

    @classmethod
    def of(cls, entry: audit.AuditEntry) -> AuditEntry:
        """Used by Query.auditLog."""
        return cls(
            id=strawberry.ID(str(entry.id)),
            at=entry.at,
            client_id=entry.client_id,
            role=entry.role,
            operation=entry.operation,
            purpose=entry.purpose,
            authorization_ref=entry.authorization_ref,
            target=entry.target,
            outcome=entry.outcome,
            reason=entry.reason,
            hash=entry.hash,
            prev_hash=entry.prev_hash,
        )


@strawberry.type
class AuditEdge:
    cursor: str
    node: AuditEntry


@strawberry.type(description="查询日志分页 / A page of the query log, newest first.")
class AuditConnection:
    edges: list[AuditEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, entries: list[audit.AuditEntry], has_next: bool) -> AuditConnection:
        """Used by Query.auditLog; the cursor is the entry id."""
        edges = [
            AuditEdge(cursor=encode_cursor(e.id, AUDIT_CURSOR), node=AuditEntry.of(e))
            for e in entries
        ]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None
            ),
        )
