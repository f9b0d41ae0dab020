"""The one interface every department adapter implements: small, async and batch-first."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import aiohttp

from adapters.observe import NoObserver, Observer
from adapters.shared import SharedState
from core.clock import Clock
from core.records import PARTS_OF, Department, Part, PersonFacts, SearchPage, SubjectFacts
from core.sources import SourceError, SourceHealth


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One [sources.<name>] table of the config file."""

    name: str
    url: str
    timeout_s: float = 2.0
    max_concurrency: int = 8
    # The table's other keys: knobs the adapter declares (registry.declared_options),
    # checked when the config is read and read typed by each part with read_options.
    options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AdapterDeps:
    """Everything an adapter may use, handed in by the app's lifespan."""

    config: SourceConfig
    session: aiohttp.ClientSession
    clock: Clock
    # Where calls, lookups, cache use and breaker state are reported (the runtime's
    # metrics and traces); recording nothing unless the runtime passes one.
    observer: Observer = field(default_factory=NoObserver)
    # contract §11: the department paces and answers all replicas share ([cache] url);
    # None keeps them in-process (one replica, or the embedded default).
    shared: SharedState | None = None


SubjectResult = SubjectFacts | SourceError
PersonResult = PersonFacts | SourceError
# The parts a subject lookup asks for; None for everything the department holds.
Parts: TypeAlias = frozenset[Part] | None
# Merge order: departments' parts in the order their combined facts list them.
_RANK = {part: rank for rank, part in enumerate(Part)}


class Adapter(abc.ABC):
    """A department seen through the gateway; created and closed by the app's lifespan."""

    # Set by each department's class; instance attributes only so that a wrapper
    # (CachingAdapter) can stand in for the adapter it wraps.
    department: Department
    # The most codes one upstream call takes; the loaders chunk batches by it.
    max_batch: int = 1
    supports_search: bool = False
    # True for a department that keeps anything by citizen ID (court cases, positions):
    # only those are asked about persons, so a person's sources name no department that
    # was never consulted.
    holds_persons: bool = False
    # True for a source answered from its own synced snapshot (water): it has its own
    # STALE, and the registry puts no answer cache in front of it.
    answers_from_snapshot: bool = False
    # The options dataclasses this adapter reads from its [sources.<name>] table.
    option_types: tuple[type, ...] = ()
    # Calls in flight at once unless [sources.<name>] max_concurrency says otherwise: each
    # department's own, from what it publishes (docs/configuration.md says why each).
    default_max_concurrency: int = 8

    def __init__(self, deps: AdapterDeps) -> None:
        self.deps = deps

    # Optional hooks: most departments need no start or stop work, so these are not abstract.
    async def start(self) -> None:  # noqa: B027
        """Called once when the gateway starts (file sources take their first snapshot)."""

    async def close(self) -> None:  # noqa: B027
        """Called once when the gateway stops; background work ends here."""

    def fresh_subjects(
        self, usccs: Sequence[str], parts: Parts = None
    ) -> Mapping[str, SubjectFacts]:
        """The codes an answer cache holds fresh facts on, without a call; used by the loaders."""
        return {}

    def background_pace_s(self, codes: int, share: float) -> float:
        """Used by background work to size its budget: the least time its pace needs for codes."""
        return 0.0  # no published rate: batches answer in one call's time

    @abc.abstractmethod
    async def lookup_subjects(
        self, usccs: Sequence[str], parts: Parts = None
    ) -> Mapping[str, SubjectResult]:
        """Facts on each code (valid, normalised USCCs); every code gets a value or an error.

        `parts` names what is wanted (None: everything). An adapter that can split asks only
        for those and says so in SubjectFacts.parts; one that cannot answers everything.
        """

    async def lookup_persons(self, id_numbers: Sequence[str]) -> Mapping[str, PersonResult]:
        """Facts on each full ID number; asked only where holds_persons, else empty facts."""
        now = self.deps.clock.now()
        return {n: PersonFacts(self.department, n, now) for n in id_numbers}

    async def search(self, name: str, offset: int, limit: int) -> SearchPage:
        """Subjects whose name contains the text; only where supports_search is True."""
        raise TypeError(f"{self.department.value} does not search by name")

    @abc.abstractmethod
    async def health(self) -> SourceHealth:
        """Current state of the source: a cheap live probe, or the file sync state."""


def asked_parts(department: Department, parts: Parts) -> frozenset[Part]:
    """The department's own parts a lookup asks for; used by the adapters that can split."""
    own = PARTS_OF[department]
    if parts is None:
        return own
    wanted = parts & own
    if not wanted:
        raise ValueError(f"no part of {department.value} asked")
    return wanted


def merge_parts(facts: Sequence[SubjectFacts]) -> SubjectFacts:
    """One department's facts on one code from lookups of its parts, as one lookup of all gives.

    Used by the loaders, which ask each part on its own. Facts already covered by a wider
    answer (a department that cannot split answered everything) are left out.
    """
    ordered = sorted(facts, key=lambda f: min((_RANK[p] for p in f.parts), default=len(_RANK)))
    kept: list[SubjectFacts] = []
    covered: frozenset[Part] = frozenset()
    for item in ordered:
        if item.parts <= covered:
            continue
        if item.parts & covered:
            # Two answers for one part could list its records twice.
            raise ValueError("facts of overlapping parts")
        kept.append(item)
        covered |= item.parts
    if not kept:
        raise ValueError("no facts to merge")
    first = kept[0]
    if len(kept) == 1:
        return first
    if any(f.department is not first.department or f.uscc != first.uscc for f in kept):
        raise ValueError("facts of different departments or codes")
    return SubjectFacts(
        department=first.department,
        uscc=first.uscc,
        # The oldest part is the honest "as of" of the whole.
        as_of=min(f.as_of for f in kept),
        known=any(f.known for f in kept),
        stale=any(f.stale for f in kept),
        refresh_failed=any(f.refresh_failed for f in kept),
        # As the adapters do: the first part that names the subject (market: its register;
        # tax: its ratings, then its cases).
        name=next((f.name for f in kept if f.name), None),
        registration=next((f.registration for f in kept if f.registration), None),
        legal_rep=next((f.legal_rep for f in kept if f.legal_rep), None),
        records=tuple(r for f in kept for r in f.records),
        tax_ratings=tuple(r for f in kept for r in f.tax_ratings),
        water_grade=next((f.water_grade for f in kept if f.water_grade), None),
        parts=covered,
    )
