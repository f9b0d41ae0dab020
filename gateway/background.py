"""Background work (contract §7–§8): bulk checks worked off the store, within [background] share.

One scheduler per process. Its workers claim up to CHUNK codes of the oldest check with due
work (a lease of [background] lease_s, renewed while they work), ask the departments for
them in one batch per department (market 100 codes a call, tax 50, the courts paced at
their share of the rate), and freeze each code's result. A code a department failed for
is asked again with backoff until [background] retry_window_s has passed since its first
failure; then its result is final, INCOMPLETE (or PUNISHED), never CLEAR.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

from adapters.deadline import background_work
from core.clock import Clock
from core.records import Part
from gateway.config_state import BackgroundConfig
from gateway.metrics import WATCH_MEMBER, Metrics
from gateway.watch_checks import WatchChecks
from resolvers.catalogue import Scenario
from resolvers.loaders import Loaders
from resolvers.plan import Plan
from resolvers.subject_view import SubjectView
from resolvers.subjects import views_of
from schema.bulk_result import NOT_FOUND, freeze
from schema.context import Services
from schema.subject import FIELD_PLANS
from store.bulk import BulkStore, Claim, Outcome
from store.database import RELEASE_WAIT_S
from store.watch import DueMember, WatchStore

log = logging.getLogger(__name__)

# A market batch: the largest call any department takes; tax's 50 make two calls.
CHUNK = 100
# Chunks worked at once: while one waits for the courts' last answers the next is asked.
WORKERS = 2
# Results of a chunk are frozen and stored by groups of this many codes, as the courts'
# answers come (one code a call, paced): progress shows every second or so, not every 100.
SETTLE_GROUP = 10
# Groups asking the courts at once: enough that the pace never waits between groups.
GROUPS_IN_FLIGHT = 2
# How often an idle worker looks for work another replica, or a retry, made due.
POLL_S = 1.0
# A code a department failed for is asked again after this long, doubling up to the cap.
RETRY_FIRST_S = 5.0
RETRY_MAX_S = 120.0
# What a result holds (contract §8): subject(uscc) { name jointPunishment supervision sources }.
RESULT_PLAN = Plan.union(
    FIELD_PLANS[f] for f in ("name", "jointPunishment", "supervision", "sources")
)
# What a chunk asks first, in one batch per department: everyone but the courts.
BATCHED_PLAN = Plan(RESULT_PLAN.parts - {Part.COURTS}, RESULT_PLAN.name)


class BackgroundScheduler:
    """Started and stopped with the runtime; `wake` is called when new work is stored."""

    def __init__(
        self,
        store: BulkStore,
        config: BackgroundConfig,
        services: Services,
        clock: Clock,
        metrics: Metrics | None = None,
        watch: WatchStore | None = None,
        changed: Callable[[int], None] | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._watch = watch
        self._config = config
        self._services = services
        self._clock = clock
        # Unique per process: a lease names who holds it.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._checks = (
            WatchChecks(
                watch,
                services,
                config.refresh_interval_s,
                self.owner,
                changed or _no_changes,
                (lambda n: metrics.background_finished(WATCH_MEMBER, "checked", n))
                if metrics is not None
                else None,
            )
            if watch is not None
            else None
        )
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        """Used by startBulkCheck: an idle worker looks for work now."""
        self._wakeup.set()

    async def start(self) -> None:
        """Starts the workers and the lease heartbeat."""
        self._tasks = [
            asyncio.create_task(self._work(watch_first=n % 2 == 1), name=f"background-{n}")
            for n in range(WORKERS)
        ]
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="bulk-leases"))

    async def close(self) -> None:
        """Stops the workers; their leases are given back for the next process to take."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        # Bounded: with the store gone, its leases simply run out (lease_s) instead.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(RELEASE_WAIT_S):
                await self._store.release(self.owner)
        if self._watch is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(RELEASE_WAIT_S):
                    await self._watch.release(self.owner)

    async def _work(self, watch_first: bool) -> None:
        while True:
            try:
                if not await self._step(watch_first):
                    await self._idle()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The store or a bug: nothing is lost (the leases run out and the codes are
                # claimed again); wait a little rather than spin.
                log.exception("background work failed; it is taken up again")
                await asyncio.sleep(POLL_S)

    async def _step(self, watch_first: bool) -> bool:
        """One piece of work, if any is due; False when there was none."""
        # One worker looks at watched members first, the other at bulk checks: a refresh
        # is not held up for hours by a 50,000-code check, nor a check by a big refresh.
        kinds = (self._watch_step, self._bulk_step)
        for step in kinds if watch_first else reversed(kinds):
            if await step():
                return True
        return False

    async def _bulk_step(self) -> bool:
        claim = await self._store.claim(self.owner, time.time(), self._config.lease_s, CHUNK)
        if claim is None:
            return False
        if self._metrics is not None:
            self._metrics.bulk_waiting(await self._store.waiting())
        await self._check(claim)
        return True

    async def _watch_step(self) -> bool:
        members = await self._claim_members()
        if not members:
            return False
        await self._check_members(members)
        return True

    async def _idle(self) -> None:
        if self._metrics is not None:
            self._metrics.bulk_waiting(await self._store.waiting())
        dues = [await self._store.next_due()]
        if self._watch is not None:
            dues.append(await self._watch.next_due())
        due = min((d for d in dues if d is not None), default=None)
        delay = POLL_S if due is None else min(POLL_S, max(0.05, due - time.time()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), delay)
        self._wakeup.clear()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._config.lease_s / 3)
            try:
                await self._store.renew(self.owner, time.time() + self._config.lease_s)
                if self._watch is not None:
                    await self._watch.renew(self.owner, time.time() + self._config.lease_s)
            except Exception:
                log.exception("bulk-check leases not renewed")

    async def _check(self, claim: Claim) -> None:
        async def settle(loaders: Loaders, group: list[str]) -> None:
            await self._settle_group(claim, loaders, group)

        await self._in_groups(claim.codes, settle)

    async def _in_groups(
        self, codes: Sequence[str], settle: Callable[[Loaders, list[str]], Awaitable[None]]
    ) -> None:
        """Asks the departments for a chunk of codes and settles it group by group."""
        adapters = self._services.adapters
        share = self._config.share
        # The lookups of a chunk may take as long as the slowest department's pace needs
        # for every chunk in flight, plus a normal answer's time.
        pace = max((a.background_pace_s(CHUNK * WORKERS, share) for a in adapters), default=0)
        timeout = max((a.deps.config.timeout_s for a in adapters), default=2.0)
        loaders = Loaders(adapters, one_by_one_batch=SETTLE_GROUP)
        groups = [list(codes[i : i + SETTLE_GROUP]) for i in range(0, len(codes), SETTLE_GROUP)]
        in_flight = asyncio.Semaphore(GROUPS_IN_FLIGHT)

        async def one(group: list[str]) -> None:
            async with in_flight:
                await settle(loaders, group)

        with background_work(share, pace * 1.25 + 2 * timeout):
            # One batch per department for the whole chunk first (market 100 codes a call,
            # tax 50)...
            await loaders.subjects(codes, BATCHED_PLAN)
            # ...then the courts, one code a call, a few groups at a time: their bookings of
            # the pace run at most a couple of seconds ahead, so other background work (a
            # watchlist's refresh, another check) takes its turn in between, and results
            # are stored as they come.
            await asyncio.gather(*(one(g) for g in groups))

    async def _settle_group(self, claim: Claim, loaders: Loaders, codes: list[str]) -> None:
        views = await views_of(loaders, self._clock.today(), codes, RESULT_PLAN)
        outcomes = await self._outcomes(claim, codes, views)
        now = self._clock.now()
        written = await self._store.settle(
            self.owner, claim.check_id, outcomes, time.time(), now.isoformat()
        )
        if self._metrics is not None:
            retried = sum(1 for o in outcomes if o.retry_at is not None)
            self._metrics.bulk_settled(written, retried)

    async def _claim_members(self) -> list[DueMember]:
        if self._watch is None:
            return []
        return await self._watch.claim(self.owner, time.time(), self._config.lease_s, CHUNK)

    async def _check_members(self, members: list[DueMember]) -> None:
        """Watched members due now: checked like a chunk of a bulk check, changes stored."""
        by_code = {m.uscc: m for m in members}
        # A code watched by two lists is one lookup, checked for each list.
        lists: dict[str, list[DueMember]] = {}
        for member in members:
            lists.setdefault(member.uscc, []).append(member)

        async def settle(loaders: Loaders, codes: list[str]) -> None:
            await self._check_group(loaders, [m for c in codes for m in lists[c]])

        await self._in_groups(list(by_code), settle)

    async def _check_group(self, loaders: Loaders, members: list[DueMember]) -> None:
        assert self._checks is not None
        codes = [m.uscc for m in members]
        views = await views_of(loaders, self._clock.today(), codes, RESULT_PLAN)
        await self._checks.settle(members, views, self._clock.now())

    async def _outcomes(
        self, claim: Claim, codes: Sequence[str], views: Sequence[SubjectView]
    ) -> list[Outcome]:
        failed_since = await self._store.first_failures(claim.check_id, codes)
        scenario = Scenario(claim.scenario) if claim.scenario else None
        services = self._services
        now, moment = time.time(), self._clock.now()
        outcomes = []
        for code, view in zip(codes, views, strict=True):
            if view.missing:
                first = failed_since.get(code, now)
                ends = first + self._config.retry_window_s
                if now < ends:
                    wait = min(RETRY_MAX_S, max(RETRY_FIRST_S, now - first))
                    outcomes.append(Outcome(code, retry_at=min(now + wait, ends)))
                    continue
            if not view.known and not view.missing:
                # Every department answered and none knows the code (contract §8).
                outcomes.append(Outcome(code, NOT_FOUND, {"checkedAt": moment.isoformat()}))
                continue
            status, result = freeze(
                view, services.catalogue, scenario, services.spot_check_ratios, moment
            )
            outcomes.append(Outcome(code, status, result))
        return outcomes


def _no_changes(count: int) -> None:
    """Without webhooks nothing is told of new changes."""
