"""The answer cache in front of a live department adapter; the registry wraps each one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from adapters.answer_cache import AnswerCache, CacheSettings
from adapters.base import Adapter, PersonResult, SubjectResult
from core.records import PersonFacts, SearchPage, SubjectFacts
from core.sources import SourceHealth


class CachingAdapter(Adapter):
    """A live adapter seen through its AnswerCaches: subjects by USCC, persons by ID number."""

    def __init__(self, inner: Adapter) -> None:
        super().__init__(inner.deps)
        self.inner = inner
        self.department = inner.department
        self.max_batch = inner.max_batch
        self.supports_search = inner.supports_search
        self.holds_persons = inner.holds_persons
        settings = CacheSettings.from_config(inner.deps.config)
        self._subjects = AnswerCache[SubjectFacts](inner.department, settings)
        self._persons = AnswerCache[PersonFacts](inner.department, settings)

    async def start(self) -> None:
        """Starts the wrapped adapter."""
        await self.inner.start()

    async def close(self) -> None:
        """Abandons fetches in flight, then closes the wrapped adapter."""
        self._subjects.close()
        self._persons.close()
        await self.inner.close()

    async def lookup_subjects(self, usccs: Sequence[str]) -> Mapping[str, SubjectResult]:
        """Facts per USCC, asked of the department only for codes not cached or in flight."""
        return await self._subjects.lookup(usccs, self.inner.lookup_subjects)

    async def lookup_persons(self, id_numbers: Sequence[str]) -> Mapping[str, PersonResult]:
        """Facts per ID number, cached like subjects."""
        return await self._persons.lookup(id_numbers, self.inner.lookup_persons)

    async def search(self, name: str, offset: int, limit: int) -> SearchPage:
        """Name searches are not cached: pages shift as the register changes."""
        return await self.inner.search(name, offset, limit)

    async def health(self) -> SourceHealth:
        """Always the live state (and the circuit breaker's), never a cached one."""
        return await self.inner.health()
