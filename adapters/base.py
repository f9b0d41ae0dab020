"""The one interface every department adapter implements: small, async and batch-first."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp

from core.clock import Clock
from core.records import Department, PersonFacts, SearchPage, SubjectFacts
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


SubjectResult = SubjectFacts | SourceError
PersonResult = PersonFacts | SourceError


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

    def __init__(self, deps: AdapterDeps) -> None:
        self.deps = deps

    # Optional hooks: most departments need no start or stop work, so these are not abstract.
    async def start(self) -> None:  # noqa: B027
        """Called once when the gateway starts (file sources take their first snapshot)."""

    async def close(self) -> None:  # noqa: B027
        """Called once when the gateway stops; background work ends here."""

    @abc.abstractmethod
    async def lookup_subjects(self, usccs: Sequence[str]) -> Mapping[str, SubjectResult]:
        """Facts on each code (valid, normalised USCCs); every code gets a value or an error."""

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
