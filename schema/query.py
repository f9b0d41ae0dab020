"""The Query root: each field checks the caller, calls the query logic and maps the result."""

from __future__ import annotations

import asyncio

import strawberry

from core.audit import AuditUnavailable
from core.errors import ErrorCode, GatewayError
from core.identity import normalize_id_number
from core.sources import SourceHealth, SourceState
from resolvers.persons import find_person
from resolvers.subjects import decode_cursor, find_subject, find_subjects, search_subjects
from schema.audit import AUDIT_CURSOR, AuditConnection
from schema.bulk import BulkQueries
from schema.determination import Measure
from schema.enums import QueryPurpose, Scenario
from schema.page import PageInfo
from schema.permissions import context, require_not_public, require_regulator
from schema.person import Person
from schema.personal_access import AuditedPersonQuery
from schema.subject import Subject, plan_of
from schema.types import LookupError, SourceStatus
from schema.watch import WatchQueries

# The most audit entries one auditLog page returns.
AUDIT_PAGE_MAX = 500


@strawberry.type(description="批量查询结果项 / One item of a batch, in input order.")
class SubjectLookup:
    uscc: str
    subject: Subject | None
    error: LookupError | None


@strawberry.type
class SubjectEdge:
    cursor: str
    node: Subject


@strawberry.type
class SubjectConnection:
    edges: list[SubjectEdge]
    page_info: PageInfo
    total_count: int | None


@strawberry.type
class Query(BulkQueries, WatchQueries):
    @strawberry.field(
        description="按统一社会信用代码查询市场主体，各部门数据合并；无部门知晓该代码时为空 / One "
        "market subject stitched from every department; null when no department knows the code."
    )
    async def subject(self, info: strawberry.Info, uscc: str) -> Subject | None:
        ctx = context(info)
        view = await find_subject(ctx.loaders, ctx.today, uscc, plan_of(info))
        return Subject(view=view) if view else None

    @strawberry.field(
        description="批量查询，按输入顺序返回，至多1000个代码；匿名调用者不可用 / Many subjects "
        "in one call, answers in input order; at most 1000 codes. Not for anonymous callers."
    )
    async def subjects(self, info: strawberry.Info, usccs: list[str]) -> list[SubjectLookup]:
        require_not_public(info, "subjects")
        ctx = context(info)
        lookups = await find_subjects(
            ctx.loaders, ctx.today, usccs, ctx.services.max_batch, plan_of(info, "subject")
        )
        return [
            SubjectLookup(
                uscc=item.uscc,
                subject=Subject(view=item.view) if item.view else None,
                error=LookupError(code=item.error_code, message=item.error_message or "")
                if item.error_code
                else None,
            )
            for item in lookups
        ]

    @strawberry.field(
        description="按名称模糊查询市场主体 / Subjects whose registered name contains the text."
    )
    async def search_subjects(
        self,
        info: strawberry.Info,
        name: str,
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
    ) -> SubjectConnection:
        ctx = context(info)
        result = await search_subjects(
            ctx.services.searcher(),
            ctx.loaders,
            ctx.today,
            name,
            20 if first is None else first,
            after or None,
            ctx.services.search_page_max,
            plan_of(info, "edges", "node"),
        )
        edges = [SubjectEdge(cursor=c, node=Subject(view=v)) for c, v in result.edges]
        return SubjectConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=result.has_next,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=result.total,
        )

    @strawberry.field(
        description="联合奖惩措施目录清单；目录外不实施任何措施 / The measure catalog "
        "(联合奖惩措施目录清单). No measure outside it is ever applied."
    )
    def measures(
        self, info: strawberry.Info, scenario: Scenario | None = strawberry.UNSET
    ) -> list[Measure]:
        measures = context(info).services.catalogue.for_scenario(scenario or None)
        return [Measure.of(m) for m in measures]

    @strawberry.field(
        description="各部门数据源的健康与新鲜度 / Health and freshness of each department source."
    )
    async def sources(self, info: strawberry.Info) -> list[SourceStatus]:
        adapters = context(info).services.adapters
        healths = await asyncio.gather(*(a.health() for a in adapters), return_exceptions=True)
        statuses = []
        for adapter, health in zip(adapters, healths, strict=True):
            if isinstance(health, BaseException):
                health = SourceHealth(
                    adapter.department, SourceState.UNAVAILABLE, None, "probe failed"
                )
            statuses.append(SourceStatus.from_health(health))
        return statuses

    @strawberry.field(
        description="自然人（法定代表人、负责人、实际控制人）；仅限有权角色，每次查询均留痕 / "
        "A natural person (legal representative, principal, controller). Only for roles "
        "allowed personal information; every call is audited.",
        extensions=[AuditedPersonQuery()],
    )
    async def person(
        self,
        info: strawberry.Info,
        id_number: str,
        purpose: QueryPurpose,
        authorization_ref: str | None = strawberry.UNSET,
    ) -> Person | None:
        # AuditedPersonQuery has checked the caller and written the audit entry by now.
        ctx = context(info)
        number = normalize_id_number(id_number, ctx.today)
        return Person(view=await find_person(ctx.loaders, ctx.today, number))

    @strawberry.field(
        description="个人信息查询日志，新在前；仅监管部门 / The personal-information query log, "
        "newest first. Regulators only."
    )
    async def audit_log(
        self,
        info: strawberry.Info,
        first: int | None = 50,
        after: str | None = strawberry.UNSET,
        client_id: str | None = strawberry.UNSET,
    ) -> AuditConnection:
        require_regulator(info, "auditLog")
        size = 50 if first is None else first
        if not 1 <= size <= AUDIT_PAGE_MAX:
            raise GatewayError(
                ErrorCode.INVALID_ARGUMENT, f"first must be between 1 and {AUDIT_PAGE_MAX}"
            )
        before = decode_cursor(after, AUDIT_CURSOR) if after else None
        try:
            entries, has_next = await context(info).services.audit.page(
                size, before, client_id or None
            )
        except AuditUnavailable:
            raise GatewayError(
                ErrorCode.AUDIT_UNAVAILABLE, "the audit log cannot be read"
            ) from None
        return AuditConnection.of(entries, has_next)
