"""The answer cache in front of a live department adapter; the registry wraps each one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from adapters.answer_cache import AnswerCache, CacheSettings
from adapters.base import Adapter, Parts, PersonResult, SubjectResult, asked_parts
from core.records import Part, PersonFacts, SearchPage, SubjectFacts
from core.sources import SourceHealth


class CachingAdapter(Adapter):
    """A live adapter seen through its AnswerCaches: subjects by USCC, persons by ID number.

    Subjects are kept per set of parts asked: facts of fewer parts are never served where
    more were asked. The loaders ask each part on its own, so in practice each part of a
    subject is kept (and refreshed, and stands in when stale) by itself, and a full lookup
    reuses a registration-only one exactly for the parts still fresh.
    """

    def __init__(self, inner: Adapter) -> None:
        super().__init__(inner.deps)
        self.inner = inner
        self.department = inner.department
        self.max_batch = inner.max_batch
        self.supports_search = inner.supports_search
        self.holds_persons = inner.holds_persons
        settings = CacheSettings.from_config(inner.deps.config)
        timeout_s = inner.deps.config.timeout_s
        self._settings = settings
        self._subjects: dict[frozenset[Part], AnswerCache[SubjectFacts]] = {}
        # Persons stay in-process even with a shared store (contract §11): their answers
        # carry full ID numbers and names, which docs/privacy.md keeps in memory only.
        self._persons = AnswerCache[PersonFacts](
            inner.department, settings, timeout_s, inner.deps.observer
        )
        self._health = SharedProbe(inner.health, settings.health_ttl_s)

    async def start(self) -> None:
        """Starts the wrapped adapter."""
        await self.inner.start()

    async def close(self) -> None:
        """Abandons fetches in flight, then closes the wrapped adapter."""
        for cache in self._subjects.values():
            cache.close()
        self._persons.close()
        await self.inner.close()

    def fresh_subjects(
        self, usccs: Sequence[str], parts: Parts = None
    ) -> Mapping[str, SubjectFacts]:
        """Facts still fresh in the store of exactly these parts, asked of no one."""
        cache = self._subjects.get(asked_parts(self.department, parts))
        return cache.fresh(usccs) if cache is not None else {}

    def background_pace_s(self, codes: int, share: float) -> float:
        """The wrapped adapter's pace (the cache does not know which codes it holds)."""
        return self.inner.background_pace_s(codes, share)

    async def lookup_subjects(
        self, usccs: Sequence[str], parts: Parts = None
    ) -> Mapping[str, SubjectResult]:
        """Facts per USCC, asked of the department only for codes not cached or in flight."""
        wanted = asked_parts(self.department, parts)
        cache = self._subjects.get(wanted)
        if cache is None:
            # At most one store per set of the department's parts (16 for market's four).
            shared = self.deps.shared
            cache = AnswerCache[SubjectFacts](
                self.department,
                self._settings,
                self.deps.config.timeout_s,
                self.deps.observer,
                shared=shared.answers if shared is not None else None,
                namespace=f"{self.department.value}:{'+'.join(sorted(wanted))}",
                kind=SubjectFacts,
            )
            self._subjects[wanted] = cache

        async def fetch(codes: list[str]) -> Mapping[str, SubjectResult]:
            return await self.inner.lookup_subjects(codes, wanted)

        return await cache.lookup(usccs, fetch)

    async def lookup_persons(self, id_numbers: Sequence[str]) -> Mapping[str, PersonResult]:
        """Facts per ID number, cached like subjects."""
        return await self._persons.lookup(id_numbers, self.inner.lookup_persons)

    async def search(self, name: str, offset: int, limit: int) -> SearchPage:
        """Name searches are not cached: pages shift as the register changes."""
        return await self.inner.search(name, offset, limit)

    async def health(self) -> SourceHealth:
        """The live state (and the breaker's), probed at most once per health_ttl_s."""
        return await self._health.state()


class SharedProbe:
    """One department's health probe, shared by every caller and kept for `ttl_s`.

    The `sources` query is open to anonymous callers: however often it is asked, and with
    however many aliases, the department sees one probe at a time and at most one per
    `ttl_s`, so no caller can spend a department's budget on health checks.
    """

    def __init__(
        self, probe: Callable[[], Coroutine[Any, Any, SourceHealth]], ttl_s: float
    ) -> None:
        self._probe = probe
        self._ttl_s = ttl_s
        self._kept: tuple[float, SourceHealth] | None = None
        self._flight: asyncio.Task[SourceHealth] | None = None

    async def state(self) -> SourceHealth:
        """The kept state while fresh, else the probe in flight, else a new probe."""
        kept = self._kept
        if kept is not None and time.monotonic() - kept[0] < self._ttl_s:
            return kept[1]
        if self._flight is None:
            self._flight = asyncio.create_task(self._probe())
            self._flight.add_done_callback(self._landed)
        # Shielded: a caller that goes away does not cancel the others' probe.
        return await asyncio.shield(self._flight)

    def _landed(self, flight: asyncio.Task[SourceHealth]) -> None:
        self._flight = None
        if not flight.cancelled() and flight.exception() is None:
            self._kept = (time.monotonic(), flight.result())
