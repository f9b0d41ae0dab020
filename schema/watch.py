"""GraphQL of watchlists and changes (contract §9): types, queries, mutations, subscription."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry

from resolvers.regions import region_name
from resolvers.watchlists import (
    Watchlists,
    change_cursor,
    member_cursor,
)
from schema.bulk import Count
from schema.bulk_result import thaw_record
from schema.enums import CreditClass, JointStatus
from schema.page import PageInfo
from schema.permissions import context
from schema.types import CreditRecord
from store.changes import ChangeRow
from store.watch import MemberRow, WatchlistRow

# How often a subscription looks for new changes in the store (every replica's changes).
FOLLOW_POLL_S = 1.0


@strawberry.enum(description="变动类型 / What changed on a watched subject.")
class ChangeKind(enum.Enum):
    LISTED = "LISTED"
    DELISTED = "DELISTED"
    STATUS_CHANGED = "STATUS_CHANGED"


@strawberry.enum(description="统计维度 / What statistics group by.")
class StatDimension(enum.Enum):
    STATUS = "STATUS"
    CREDIT_CLASS = "CREDIT_CLASS"
    REGION = "REGION"
    LISTING_KIND = "LISTING_KIND"
    LISTING_MONTH = "LISTING_MONTH"
    DEPARTMENT = "DEPARTMENT"


@strawberry.type(description="监控对象 / One watched subject and its latest check.")
class WatchMember:
    uscc: str
    name: str | None
    status: JointStatus | None = strawberry.field(
        description="Null until the member's first check."
    )
    complete: bool | None
    credit_class: CreditClass | None
    since: datetime | None = strawberry.field(
        description="Since when the status has been what it is."
    )
    checked_at: datetime | None

    @classmethod
    def of(cls, row: MemberRow) -> WatchMember:
        """A stored member as the contract shows it."""
        return cls(
            uscc=row.uscc,
            name=row.name,
            status=JointStatus(row.status) if row.status else None,
            complete=row.complete,
            credit_class=CreditClass(row.credit_class) if row.credit_class else None,
            since=datetime.fromisoformat(row.since) if row.since else None,
            checked_at=datetime.fromisoformat(row.checked_at) if row.checked_at else None,
        )


@strawberry.type
class WatchMemberEdge:
    cursor: str
    node: WatchMember


@strawberry.type
class WatchMemberConnection:
    edges: list[WatchMemberEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type(description="监控名单 / A named set of subjects re-checked on a schedule.")
class Watchlist:
    row: strawberry.Private[WatchlistRow]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.row.id)

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    async def size(self, info: strawberry.Info) -> int:
        return await _watch(info).size(self.row.id)

    @strawberry.field
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.row.created_at)

    @strawberry.field
    def webhook_url(self) -> str | None:
        return self.row.webhook_url

    @strawberry.field(
        description="When every member had been checked at least once since it was added; "
        "null before."
    )
    async def checked_at(self, info: strawberry.Info) -> datetime | None:
        _, at = await _watch(info).summary(self.row.id)
        return datetime.fromisoformat(at) if at else None

    @strawberry.field(
        description="Members by current status (JointStatus names; UNCHECKED before a "
        "member's first check)."
    )
    async def counts(self, info: strawberry.Info) -> list[Count]:
        found, _ = await _watch(info).summary(self.row.id)
        return [Count(key=k, count=n) for k, n in sorted(found.items())]

    @strawberry.field
    async def members(
        self,
        info: strawberry.Info,
        first: int | None = 100,
        after: str | None = strawberry.UNSET,
        status: JointStatus | None = strawberry.UNSET,
    ) -> WatchMemberConnection:
        size = 100 if first is None else first
        wanted = status.value if status else None
        rows, total = await _watch(info).members(self.row.id, size + 1, after or None, wanted)
        edges = [
            WatchMemberEdge(cursor=member_cursor(r), node=WatchMember.of(r)) for r in rows[:size]
        ]
        return WatchMemberConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=len(rows) > size, end_cursor=edges[-1].cursor if edges else None
            ),
            total_count=total,
        )


@strawberry.type
class WatchlistCreated:
    watchlist: Watchlist
    webhook_secret: str | None = strawberry.field(
        description="HMAC-SHA256 key of the webhook signatures; returned only here, null "
        "without a webhookUrl."
    )


@strawberry.type(description="主体变动 / A change found on a watched subject.")
class SubjectChange:
    id: strawberry.ID
    at: datetime = strawberry.field(description="When the gateway found the change.")
    watchlist_id: strawberry.ID
    uscc: str
    name: str | None
    kind: ChangeKind
    record: CreditRecord | None = strawberry.field(
        description="The record, for LISTED and DELISTED."
    )
    previous_status: JointStatus | None
    status: JointStatus | None

    @classmethod
    def of(cls, row: ChangeRow) -> SubjectChange:
        """A stored change as the contract shows it."""
        return cls(
            id=strawberry.ID(row.id),
            at=datetime.fromisoformat(row.at),
            watchlist_id=strawberry.ID(row.watchlist_id),
            uscc=row.uscc,
            name=row.name,
            kind=ChangeKind(row.kind),
            record=thaw_record(row.record) if row.record else None,
            previous_status=JointStatus(row.previous_status) if row.previous_status else None,
            status=JointStatus(row.status) if row.status else None,
        )


@strawberry.type
class ChangeEdge:
    cursor: str
    node: SubjectChange


@strawberry.type
class ChangeConnection:
    edges: list[ChangeEdge]
    page_info: PageInfo


@strawberry.type(description="统计行 / One row of statistics.")
class StatRow:
    key: str
    label: str | None = strawberry.field(
        description="Human-readable name of the key where there is one (region names)."
    )
    subjects: int
    records: int | None = strawberry.field(
        description="Active listings counted (LISTING_* and DEPARTMENT); null for subject "
        "dimensions."
    )


def _watch(info: strawberry.Info) -> Watchlists:
    watch = context(info).services.watchlists
    if watch is None:
        raise RuntimeError("watchlists are not set up")
    return watch


@strawberry.type
class WatchQueries:
    """The watchlist fields of Query (contract §9)."""

    @strawberry.field(
        description="A watchlist by id: its owner, or a regulator. Null when there is none."
    )
    async def watchlist(self, info: strawberry.Info, id: strawberry.ID) -> Watchlist | None:
        row = await _watch(info).get(context(info).caller, str(id))
        return Watchlist(row=row) if row is not None else None

    @strawberry.field(description="The caller's watchlists (a regulator: everyone's).")
    async def watchlists(self, info: strawberry.Info) -> list[Watchlist]:
        return [Watchlist(row=r) for r in await _watch(info).lists(context(info).caller)]

    @strawberry.field(
        description="Changes found on watched subjects, oldest first; without watchlistId, on "
        "all the caller's watchlists."
    )
    async def changes(
        self,
        info: strawberry.Info,
        watchlist_id: strawberry.ID | None = strawberry.UNSET,
        after: str | None = strawberry.UNSET,
        first: int | None = 100,
    ) -> ChangeConnection:
        size = 100 if first is None else first
        rows = await _watch(info).changes(
            context(info).caller,
            str(watchlist_id) if watchlist_id else None,
            after or None,
            size + 1,
        )
        edges = [ChangeEdge(cursor=change_cursor(r), node=SubjectChange.of(r)) for r in rows[:size]]
        # At the end of the list the cursor is still given: the next page starts after it.
        end = edges[-1].cursor if edges else (after or None)
        return ChangeConnection(
            edges=edges, page_info=PageInfo(has_next_page=len(rows) > size, end_cursor=end)
        )

    @strawberry.field(
        description="Counts over the members of a watchlist (regulators may omit watchlistId: "
        "every watched subject)."
    )
    async def statistics(
        self,
        info: strawberry.Info,
        watchlist_id: strawberry.ID | None = strawberry.UNSET,
        *,
        group_by: StatDimension,
    ) -> list[StatRow]:
        rows = await _watch(info).statistics(
            context(info).caller, str(watchlist_id) if watchlist_id else None, group_by.value
        )
        region = group_by is StatDimension.REGION
        return [
            StatRow(
                key=r.key,
                label=region_name(r.key) if region else None,
                subjects=r.subjects,
                records=r.records,
            )
            for r in rows
        ]


@strawberry.type
class WatchMutations:
    """The watchlist fields of Mutation (contract §9)."""

    @strawberry.mutation(
        description="信用监控: a named set of subjects re-checked on a schedule; changes are "
        "reported. Not for anonymous callers."
    )
    async def create_watchlist(
        self,
        info: strawberry.Info,
        name: str,
        usccs: list[str],
        webhook_url: str | None = strawberry.UNSET,
    ) -> WatchlistCreated:
        row, secret = await _watch(info).create(
            context(info).caller, name, usccs, webhook_url or None
        )
        return WatchlistCreated(watchlist=Watchlist(row=row), webhook_secret=secret)

    @strawberry.mutation
    async def add_to_watchlist(
        self, info: strawberry.Info, id: strawberry.ID, usccs: list[str]
    ) -> Watchlist:
        return Watchlist(row=await _watch(info).add(context(info).caller, str(id), usccs))

    @strawberry.mutation
    async def remove_from_watchlist(
        self, info: strawberry.Info, id: strawberry.ID, usccs: list[str]
    ) -> Watchlist:
        return Watchlist(row=await _watch(info).remove(context(info).caller, str(id), usccs))

    @strawberry.mutation
    async def delete_watchlist(self, info: strawberry.Info, id: strawberry.ID) -> bool:
        return await _watch(info).delete(context(info).caller, str(id))

    @strawberry.mutation(
        description="Re-checks every member now instead of at its next scheduled time."
    )
    async def refresh_watchlist(self, info: strawberry.Info, id: strawberry.ID) -> Watchlist:
        return Watchlist(row=await _watch(info).refresh(context(info).caller, str(id)))


@strawberry.type
class Subscription:
    """The Subscription root (contract §9): changes as they are found."""

    @strawberry.subscription(
        description="Changes on the caller's watchlists as they are found (graphql-transport-ws "
        "on /graphql)."
    )
    async def subject_changes(
        self, info: strawberry.Info, watchlist_id: strawberry.ID | None = strawberry.UNSET
    ) -> AsyncGenerator[SubjectChange, None]:
        watch = _watch(info)
        ctx = context(info)
        wanted = str(watchlist_id) if watchlist_id else None
        owner = await watch.may_follow(ctx.caller, wanted)
        changes = ctx.services.change_feed
        assert changes is not None
        position = await changes.latest()
        while True:
            # From the store, so a change any replica found reaches every subscriber.
            rows = await changes.page(position, 500, watchlist_id=wanted, client_id=owner)
            for row in rows:
                position = row.seq
                yield SubjectChange.of(row)
            if not rows:
                await asyncio.sleep(FOLLOW_POLL_S)
