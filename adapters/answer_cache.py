"""Department answers kept per key: a short-lived cache, single flights, the last good answer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from cachetools import TTLCache

from adapters.answer_codec import UndecodableAnswer, decode, encode
from adapters.base import SourceConfig
from adapters.deadline import lookup_deadline
from adapters.observe import NoObserver, Observer
from adapters.options import OptionError, knob, read_options
from adapters.shared import ABANDONED, CLAIMED, FAILED, HIT, SharedAnswers, SharedUnavailable
from core.records import Department, PersonFacts, SubjectFacts
from core.sources import FailureKind, SourceError

F = TypeVar("F", SubjectFacts, PersonFacts)
# A caller's own flight ends at the same deadline; this lets it settle (its answer or its
# TIMEOUT, with the last good answer standing in) before the caller stops waiting.
_SETTLE_GRACE_S = 0.1
Results = dict[str, F | SourceError]
Fetch = Callable[[list[str]], Awaitable[Mapping[str, F | SourceError]]]
log = logging.getLogger(__name__)
# Waiting for another replica's fetch (shared store): the first look soon, as an answer
# takes 20-300 ms, then less often; every look is one round trip for all keys waited on.
_POLL_FIRST_S = 0.01
_POLL_MAX_S = 0.05
# A claim outlives its fetch's deadline by this much: a replica that stops mid-fetch holds
# the key no longer (the others then fetch it themselves).
_CLAIM_GRACE_S = 1.0

# A cached answer is still the department's real answer, shown with the as_of of when it
# was fetched; a minute is far inside the departments' own publication lag (courts remove a
# listing within 3 working days, water rebuilds daily) and absorbs repeated lookups.
DEFAULT_TTL_S = 60.0
# Keeps an hour of maintenance on screen. A stale answer is shown, never counted as an answer
# of today: the loaders mark its department missing, so it never makes a subject CLEAR.
DEFAULT_STALE_TTL_S = 3600.0
# An answer takes about 1.5–3.5 KB (market the largest); the stores share their objects, so
# the stale bound decides: about 70 MB per department when full. Kept per part (the loaders
# ask each part alone), a subject's parts together take about what its whole answer took.
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_STALE_MAX_ENTRIES = 20_000
# A department's state changes in seconds at the fastest (a breaker opens after several
# failed calls); 5 s keeps `sources` current while bounding what it costs the department.
DEFAULT_HEALTH_TTL_S = 5.0
# Bounds of the knobs: a week of answers, and entries far beyond any department's register.
MAX_TTL_S = 7 * 86_400.0
MAX_ENTRIES = 10_000_000


@dataclass(frozen=True, slots=True)
class CacheOptions:
    """The answer-cache knobs of a live department's table; 0 seconds switches a store off."""

    cache_ttl_s: float = knob(DEFAULT_TTL_S, minimum=0, maximum=MAX_TTL_S)
    stale_ttl_s: float = knob(DEFAULT_STALE_TTL_S, minimum=0, maximum=MAX_TTL_S)
    cache_max_entries: int = knob(DEFAULT_MAX_ENTRIES, minimum=0, maximum=MAX_ENTRIES)
    stale_max_entries: int = knob(DEFAULT_STALE_MAX_ENTRIES, minimum=0, maximum=MAX_ENTRIES)
    # Health probes (the `sources` query) are shared and kept this long; 0: shared only.
    health_ttl_s: float = knob(DEFAULT_HEALTH_TTL_S, minimum=0, maximum=300)

    def __post_init__(self) -> None:
        if 0 < self.stale_ttl_s < self.cache_ttl_s:
            # A last good answer forgotten before the cached copy would never be served.
            raise OptionError("stale_ttl_s", "must be 0 or at least cache_ttl_s")


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """The cache of one department as AnswerCache uses it."""

    ttl_s: float = DEFAULT_TTL_S
    stale_ttl_s: float = DEFAULT_STALE_TTL_S
    max_entries: int = DEFAULT_MAX_ENTRIES
    stale_max_entries: int = DEFAULT_STALE_MAX_ENTRIES
    health_ttl_s: float = DEFAULT_HEALTH_TTL_S

    @classmethod
    def from_config(cls, config: SourceConfig) -> CacheSettings:
        """Read once at start from the table's CacheOptions."""
        options = read_options(CacheOptions, config.options)
        return cls(
            ttl_s=options.cache_ttl_s,
            stale_ttl_s=options.stale_ttl_s,
            max_entries=options.cache_max_entries,
            stale_max_entries=options.stale_max_entries,
            health_ttl_s=options.health_ttl_s,
        )


class AnswerCache(Generic[F]):
    """One per cached adapter and kind of key; used by CachingAdapter.

    Keys are USCCs (one cache per set of a department's parts, so the facts kept always
    cover exactly what was asked) or ID numbers.

    Three stores: answers younger than `ttl_s` are served as they are; a key being fetched
    is joined rather than fetched again (single flight); the last good answer of a key is
    kept for `stale_ttl_s` and served, marked stale, when a refresh fails. Errors are never
    stored: a failure is always asked again next time.

    With a shared store (`shared`, contract §11) the three are the deployment's: a fresh
    answer any replica fetched is served, a key another replica is fetching is waited for
    (single flight across replicas), and the last good answer any replica kept stands in.
    The in-process stores stay beneath: answers this replica fetched are served from them
    first, and whenever the shared store cannot be reached the lookup is the in-process one.
    """

    def __init__(
        self,
        department: Department,
        settings: CacheSettings,
        timeout_s: float,
        observer: Observer | None = None,
        shared: SharedAnswers | None = None,
        namespace: str = "",
        kind: type[F] | None = None,
    ) -> None:
        self._department = department
        self._timeout_s = timeout_s
        self._settings = settings
        # Shared only with a fresh tier: it is how an answer reaches the replicas waiting.
        shares = shared is not None and kind is not None and settings.ttl_s > 0
        self._shared = shared if shares else None
        self._kind: type[F] | None = kind
        # Keys in the shared store: "<department>:<parts>:<code>".
        self._namespace = namespace or department.value
        # Told of hits, misses and stand-ins once per call, never per key.
        self._observer = observer or NoObserver()
        self._fresh: TTLCache[str, F] | None = None
        if settings.ttl_s > 0 and settings.max_entries > 0:
            self._fresh = TTLCache(maxsize=settings.max_entries, ttl=settings.ttl_s)
        self._good: TTLCache[str, F] | None = None
        if settings.stale_ttl_s > 0 and settings.stale_max_entries > 0:
            self._good = TTLCache(maxsize=settings.stale_max_entries, ttl=settings.stale_ttl_s)
        self._flights: dict[str, asyncio.Task[Results[F]]] = {}

    def fresh(self, keys: Sequence[str]) -> dict[str, F]:
        """The keys answered less than ttl_s ago, with their answers; nothing is fetched."""
        if self._fresh is None:
            return {}
        found = {key: self._fresh.get(key) for key in keys}
        fresh = {key: answer for key, answer in found.items() if answer is not None}
        if fresh:
            # The warm path: the keys not found here are counted by the lookup that follows.
            self._observer.cache_used(self._department, len(fresh), 0)
        return fresh

    async def lookup(self, keys: Sequence[str], fetch: Fetch[F]) -> Results[F]:
        """Every key's answer: cached, joined to a fetch in flight, or fetched in one call."""
        unique = list(dict.fromkeys(keys))
        if self._shared is not None:
            try:
                return await self._shared_lookup(self._shared, unique, fetch)
            except SharedUnavailable:
                pass  # this lookup in-process; the store counts the fallback
        return await self._local_lookup(unique, fetch)

    async def _local_lookup(self, unique: list[str], fetch: Fetch[F]) -> Results[F]:
        results: Results[F] = {}
        missing: list[str] = []
        for key in unique:
            cached = self._fresh.get(key) if self._fresh is not None else None
            if cached is not None:
                results[key] = cached
            elif key not in self._flights:
                missing.append(key)
        # A key joining a fetch already in flight costs no call either: it counts as a hit.
        self._observer.cache_used(self._department, len(unique) - len(missing), len(missing))
        if missing:
            # A task of its own: a caller that goes away (its request cancelled) does not
            # take the answer away from the callers that joined it.
            flight = asyncio.create_task(self._refresh(missing, fetch))
            for key in missing:
                self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(missing, done))
        waiting = {key: self._flights[key] for key in unique if key not in results}
        if not waiting:
            return {key: results[key] for key in unique}
        # A flight another request started runs on that request's budget: this caller
        # waits only as long as its own (contract §6, one deadline per request).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(lookup_deadline(self._timeout_s) + _SETTLE_GRACE_S):
                for flight in set(waiting.values()):
                    await asyncio.shield(flight)
        late: list[F | SourceError] = []
        for key, flight in waiting.items():
            if flight.done():
                results[key] = flight.result()[key]
            else:
                error = SourceError(self._department, FailureKind.TIMEOUT, "no answer in time")
                results[key] = self._failed(key, error)
                late.append(results[key])
        self._count_stand_ins(late)
        return {key: results[key] for key in unique}

    async def _shared_lookup(
        self, shared: SharedAnswers, unique: list[str], fetch: Fetch[F]
    ) -> Results[F]:
        """The lookup across replicas; SharedUnavailable before anything was started."""
        results: Results[F] = {}
        fresh = self._fresh
        for key in unique:
            cached = fresh.get(key) if fresh is not None else None
            if cached is not None:
                results[key] = cached
        joined = {k: self._flights[k] for k in unique if k not in results and k in self._flights}
        ask = [k for k in unique if k not in results and k not in joined]
        token = uuid.uuid4().hex
        found = (
            await shared.lookup([self._key(k) for k in ask], token, self._claim_s()) if ask else {}
        )
        claimed: list[str] = []
        waiting: list[str] = []
        for key in ask:
            entry = found[self._key(key)]
            if entry.state == HIT and entry.value is not None:
                facts = self._decoded(entry.value)
                if facts is not None:
                    results[key] = self._kept(key, facts)
                    continue
                claimed.append(key)  # unreadable: fetched again and overwritten
            elif entry.state == CLAIMED:
                claimed.append(key)
            else:
                waiting.append(key)
        # Joining a fetch in flight here or on another replica costs no call: a hit.
        self._observer.cache_used(self._department, len(unique) - len(claimed), len(claimed))
        if claimed:
            flight = asyncio.create_task(self._refresh_shared(shared, claimed, fetch, token))
            for key in claimed:
                self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(claimed, done))
            joined.update((key, flight) for key in claimed)
        deadline = lookup_deadline(self._timeout_s) + _SETTLE_GRACE_S
        failed: dict[str, SourceError] = {}
        if waiting:
            answered, failed = await self._wait_elsewhere(shared, waiting, fetch, deadline)
            results.update(answered)
        if joined:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    for flight in set(joined.values()):
                        await asyncio.shield(flight)
            for key, flight in joined.items():
                if flight.done():
                    results[key] = flight.result()[key]
                else:
                    failed[key] = SourceError(
                        self._department, FailureKind.TIMEOUT, "no answer in time"
                    )
        if failed:
            stand_ins = await self._stand_ins(failed)
            self._count_stand_ins(stand_ins.values())
            results.update(stand_ins)
        return {key: results[key] for key in unique}

    async def _wait_elsewhere(
        self, shared: SharedAnswers, keys: list[str], fetch: Fetch[F], deadline: float
    ) -> tuple[Results[F], dict[str, SourceError]]:
        """Keys another replica is fetching: its answers, or why there is none."""
        loop = asyncio.get_running_loop()
        answered: Results[F] = {}
        failed: dict[str, SourceError] = {}
        abandoned: list[str] = []
        pending = keys
        pause = _POLL_FIRST_S
        while pending and loop.time() < deadline:
            await asyncio.sleep(min(pause, max(deadline - loop.time(), 0)))
            pause = min(pause * 1.5, _POLL_MAX_S)
            try:
                states = await shared.poll([self._key(k) for k in pending])
            except SharedUnavailable:
                # The store went away while we waited: ask in-process (this replica's own
                # single flight), within what is left of the budget.
                answered.update(await self._local_lookup(pending, fetch))
                return answered, failed
            still: list[str] = []
            for key in pending:
                entry = states[self._key(key)]
                facts = self._decoded(entry.value) if entry.state == HIT and entry.value else None
                if facts is not None:
                    answered[key] = self._kept(key, facts)
                elif entry.state == HIT or entry.state == FAILED:
                    failed[key] = self._failure_of(entry.value if entry.state == FAILED else None)
                elif entry.state == ABANDONED:
                    abandoned.append(key)
                else:
                    still.append(key)
            pending = still
        for key in pending:
            failed[key] = SourceError(self._department, FailureKind.TIMEOUT, "no answer in time")
        if abandoned:
            # Nobody is fetching these any more: looked up afresh (a claim of our own, or
            # another replica's newer one), within what is left of the budget.
            try:
                answered.update(await self._shared_lookup(shared, abandoned, fetch))
            except SharedUnavailable:
                answered.update(await self._local_lookup(abandoned, fetch))
        return answered, failed

    async def _refresh_shared(
        self, shared: SharedAnswers, keys: list[str], fetch: Fetch[F], token: str
    ) -> Results[F]:
        try:
            answers = await fetch(keys)
        except Exception:
            # An adapter bug: the replicas waiting are told at once rather than at their
            # deadlines, and the caller gets the exception as in-process.
            with contextlib.suppress(SharedUnavailable):
                failed_keys = {self._key(k): FailureKind.UNAVAILABLE.value for k in keys}
                await shared.land({}, failed_keys, token, 0.0, 0.0)
            raise
        settled: Results[F] = {}
        kept: dict[str, bytes] = {}
        failed: dict[str, SourceError] = {}
        for key in keys:
            answer = answers.get(key)
            if answer is None or isinstance(answer, SourceError):
                failed[key] = answer or SourceError(
                    self._department, FailureKind.UNAVAILABLE, "no answer for this code"
                )
                continue
            settled[key] = self._settle(key, answer)
            if not answer.stale:
                kept[self._key(key)] = encode(answer)
        # An answer a source marks stale is no answer to keep: it is released like a failure.
        released = [self._key(k) for k in keys if k not in failed and self._key(k) not in kept]
        with contextlib.suppress(SharedUnavailable):
            # Unreachable: the others' claims run out; this replica's answers stay in-process.
            await shared.land(
                kept,
                {
                    **{self._key(k): e.kind.value for k, e in failed.items()},
                    **dict.fromkeys(released, FailureKind.UNAVAILABLE.value),
                },
                token,
                self._settings.ttl_s,
                self._settings.stale_ttl_s if self._good is not None else 0.0,
            )
        if failed:
            settled.update(await self._stand_ins(failed))
        self._count_stand_ins(settled.values())
        return settled

    async def _stand_ins(self, failed: Mapping[str, SourceError]) -> Results[F]:
        """The last good answer, here or kept by any replica, in place of each failure."""
        results: Results[F] = {key: self._failed(key, error) for key, error in failed.items()}
        missing = [key for key, result in results.items() if isinstance(result, SourceError)]
        if not missing or self._shared is None or self._good is None:
            return results
        try:
            kept = await self._shared.last_good([self._key(k) for k in missing])
        except SharedUnavailable:
            return results
        for key in missing:
            data = kept.get(self._key(key))
            facts = self._decoded(data) if data is not None else None
            if facts is not None:
                self._good[key] = facts
                results[key] = replace(facts, stale=True, refresh_failed=True)
        return results

    def _kept(self, key: str, facts: F) -> F:
        # Another replica's answer: kept here as a last good answer too, for when the shared
        # store cannot be reached; never as fresh (its age here is unknown).
        if self._good is not None:
            self._good[key] = facts
        return facts

    def _decoded(self, data: bytes) -> F | None:
        assert self._kind is not None
        try:
            facts: F = decode(data, self._kind)
            return facts
        except UndecodableAnswer as exc:
            log.warning("shared answer of %s unreadable (%s): asked again", self._department, exc)
            return None

    def _failure_of(self, kind: bytes | None) -> SourceError:
        try:
            failure = FailureKind(kind.decode()) if kind else FailureKind.UNAVAILABLE
        except ValueError:
            failure = FailureKind.UNAVAILABLE
        # The department's failure as the fetching replica saw it (SourceError keeps the
        # clients' text by kind; this message is for the log).
        return SourceError(self._department, failure, "no answer (asked by another replica)")

    def _key(self, key: str) -> str:
        return f"{self._namespace}:{key}"

    def _claim_s(self) -> float:
        # At most a caller's budget: a replica stopping mid-fetch holds the key no longer
        # than that (background work's longer fetches may then be asked twice).
        left = lookup_deadline(self._timeout_s) - asyncio.get_running_loop().time()
        return min(max(left, 0.0), self._timeout_s) + _CLAIM_GRACE_S

    def close(self) -> None:
        """Used when the gateway stops: fetches still in flight are abandoned."""
        for flight in set(self._flights.values()):
            flight.cancel()
        self._flights.clear()

    async def _refresh(self, keys: list[str], fetch: Fetch[F]) -> Results[F]:
        answers = await fetch(keys)
        settled = {key: self._settle(key, answers.get(key)) for key in keys}
        self._count_stand_ins(settled.values())
        return settled

    def _settle(self, key: str, answer: F | SourceError | None) -> F | SourceError:
        """A fresh answer is stored; a failure is replaced by the last good answer, if any."""
        if answer is None:
            answer = SourceError(
                self._department, FailureKind.UNAVAILABLE, "no answer for this code"
            )
        if isinstance(answer, SourceError):
            return self._failed(key, answer)
        if not answer.stale:
            # An answer a source already marks stale (a snapshot) is no answer to keep.
            if self._fresh is not None:
                self._fresh[key] = answer
            if self._good is not None:
                self._good[key] = answer
        return answer

    def _count_stand_ins(self, answers: Iterable[F | SourceError]) -> None:
        # Only _failed marks a kept answer refresh_failed: those are the stand-ins.
        count = sum(1 for a in answers if not isinstance(a, SourceError) and a.refresh_failed)
        if count:
            self._observer.stale_served(self._department, count)

    def _failed(self, key: str, error: SourceError) -> F | SourceError:
        good = self._good.get(key) if self._good is not None else None
        # The department's own earlier answer, with its own as_of, shown as STALE. It is
        # still no answer of today: the loaders count the department as missing, so the
        # status is never CLEAR on it (contract §3). Without one the failure stands.
        if good is None:
            return error
        return replace(good, stale=True, refresh_failed=True)

    def _landed(self, keys: list[str], flight: asyncio.Task[Results[F]]) -> None:
        for key in keys:
            if self._flights.get(key) is flight:
                del self._flights[key]
        if not flight.cancelled():
            # Its callers have (or had) the exception; this keeps asyncio from reporting
            # it a second time when nobody was left waiting.
            flight.exception()
