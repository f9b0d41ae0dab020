"""GraphQL of bulk checks (contract §8): the types, the queries and the two mutations."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from resolvers.bulk import BulkChecks, check_cursor, result_cursor
from resolvers.catalogue import Catalogue
from schema.bulk_result import NOT_FOUND, thaw_joint, thaw_sources, thaw_supervision
from schema.determination import JointPunishment, Supervision
from schema.enums import JointStatus, Scenario
from schema.page import PageInfo
from schema.permissions import context
from schema.types import LookupError, SourceStatus
from store.bulk import CheckRow, ResultRow


@strawberry.enum(description="批量核查状态 / Where a bulk check stands.")
class BulkCheckState(enum.Enum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    CANCELLED = "CANCELLED"


@strawberry.type(description="计数 / A key and how many have it.")
class Count:
    key: str
    count: int


@strawberry.type(description="批量核查结果 / One submitted code's result, frozen at checkedAt.")
class BulkResult:
    index: int = strawberry.field(description="Position in the submitted list, from 0.")
    uscc: str = strawberry.field(description="The code as submitted.")
    error: LookupError | None = strawberry.field(
        description="INVALID_USCC or NOT_FOUND; then the fields below are null."
    )
    name: str | None
    joint_punishment: JointPunishment | None = strawberry.field(
        description="The determination as made at checkedAt (not re-evaluated later)."
    )
    supervision: Supervision | None
    sources: list[SourceStatus] | None
    checked_at: datetime | None

    @classmethod
    def of(cls, row: ResultRow, catalogue: Catalogue) -> BulkResult:
        """Used by BulkCheck.results: a stored row as the contract shows it."""
        if row.error is not None:
            return cls._error(row, row.error, row.message or "")
        result = row.result
        assert result is not None
        if row.status == NOT_FOUND:
            error = cls._error(row, NOT_FOUND, "no department knows this code")
            error.checked_at = datetime.fromisoformat(result["checkedAt"])
            return error
        return cls(
            index=row.index,
            uscc=row.uscc,
            error=None,
            name=result["name"],
            joint_punishment=thaw_joint(result["jointPunishment"], catalogue),
            supervision=thaw_supervision(result["supervision"]),
            sources=thaw_sources(result["sources"]),
            checked_at=datetime.fromisoformat(result["checkedAt"]),
        )

    @classmethod
    def _error(cls, row: ResultRow, code: str, message: str) -> BulkResult:
        return cls(
            index=row.index,
            uscc=row.uscc,
            error=LookupError(code=code, message=message),
            name=None,
            joint_punishment=None,
            supervision=None,
            sources=None,
            checked_at=None,
        )


@strawberry.type
class BulkResultEdge:
    cursor: str
    node: BulkResult


@strawberry.type
class BulkResultConnection:
    edges: list[BulkResultEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type(description="批量核查 / Many subjects checked in the background.")
class BulkCheck:
    row: strawberry.Private[CheckRow]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.row.id)

    @strawberry.field
    def label(self) -> str | None:
        return self.row.label

    @strawberry.field
    def state(self) -> BulkCheckState:
        return BulkCheckState(self.row.state)

    @strawberry.field
    def scenario(self) -> Scenario | None:
        return Scenario(self.row.scenario) if self.row.scenario else None

    @strawberry.field(description="Codes submitted, invalid ones included.")
    def total(self) -> int:
        return self.row.total

    @strawberry.field(description="Codes with a final result so far.")
    async def done(self, info: strawberry.Info) -> int:
        return sum((await _bulk(info).counts(self.row.id)).values())

    @strawberry.field
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.row.created_at)

    @strawberry.field
    def finished_at(self) -> datetime | None:
        return datetime.fromisoformat(self.row.finished_at) if self.row.finished_at else None

    @strawberry.field(
        description="Results so far by key: a JointStatus name, or INVALID_USCC / NOT_FOUND."
    )
    async def counts(self, info: strawberry.Info) -> list[Count]:
        found = await _bulk(info).counts(self.row.id)
        return [Count(key=key, count=count) for key, count in sorted(found.items())]

    @strawberry.field
    async def results(
        self,
        info: strawberry.Info,
        first: int | None = 100,
        after: str | None = strawberry.UNSET,
        status: JointStatus | None = strawberry.UNSET,
    ) -> BulkResultConnection:
        wanted = status.value if status else None
        size = 100 if first is None else first
        rows, total = await _bulk(info).results(self.row.id, size + 1, after or None, wanted)
        catalogue = context(info).services.catalogue
        shown = rows[:size]
        edges = [
            BulkResultEdge(cursor=result_cursor(r.index), node=BulkResult.of(r, catalogue))
            for r in shown
        ]
        return BulkResultConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=len(rows) > size,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=total,
        )


@strawberry.type
class BulkCheckEdge:
    cursor: str
    node: BulkCheck


@strawberry.type
class BulkCheckConnection:
    edges: list[BulkCheckEdge]
    page_info: PageInfo


def _bulk(info: strawberry.Info) -> BulkChecks:
    bulk = context(info).services.bulk
    if bulk is None:
        # Only a runtime without a store (never one the gateway serves) lacks it.
        raise RuntimeError("bulk checks are not set up")
    return bulk


@strawberry.type
class BulkQueries:
    """The bulk-check fields of Query (contract §8)."""

    @strawberry.field(
        description="A bulk check by id: its creator, or a regulator. Null when there is none."
    )
    async def bulk_check(self, info: strawberry.Info, id: strawberry.ID) -> BulkCheck | None:
        found = await _bulk(info).get(context(info).caller, str(id))
        return BulkCheck(row=found) if found is not None else None

    @strawberry.field(
        description="The caller's bulk checks, newest first (a regulator: everyone's)."
    )
    async def bulk_checks(
        self, info: strawberry.Info, first: int | None = 20, after: str | None = strawberry.UNSET
    ) -> BulkCheckConnection:
        size = 20 if first is None else first
        rows = await _bulk(info).page(context(info).caller, size + 1, after or None)
        edges = [BulkCheckEdge(cursor=check_cursor(r), node=BulkCheck(row=r)) for r in rows[:size]]
        return BulkCheckConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=len(rows) > size, end_cursor=edges[-1].cursor if edges else None
            ),
        )


@strawberry.type
class BulkMutations:
    """The bulk-check fields of Mutation (contract §8)."""

    @strawberry.mutation(
        description="批量核查: checks many subjects in the background within the departments' "
        "limits. Not for anonymous callers."
    )
    async def start_bulk_check(
        self,
        info: strawberry.Info,
        usccs: list[str],
        scenario: Scenario | None = strawberry.UNSET,
        label: str | None = strawberry.UNSET,
    ) -> BulkCheck:
        text = label or None
        chosen = scenario.value if scenario else None
        row = await _bulk(info).start(context(info).caller, usccs, chosen, text)
        return BulkCheck(row=row)

    @strawberry.mutation(description="Stops a bulk check; results found so far are kept.")
    async def cancel_bulk_check(self, info: strawberry.Info, id: strawberry.ID) -> BulkCheck:
        return BulkCheck(row=await _bulk(info).cancel(context(info).caller, str(id)))
