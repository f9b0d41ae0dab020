"""Per-request DataLoaders: one per department, so a query's codes become batched calls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TypeVar

from strawberry.dataloader import DataLoader

from adapters.base import Adapter
from adapters.deadline import request_budget
from core.records import Department, PersonFacts, SubjectFacts
from core.sources import SourceError
from resolvers.answers import Answer

log = logging.getLogger(__name__)
F = TypeVar("F", SubjectFacts, PersonFacts)


class Loaders:
    """Created for each request; every resolver goes through these, never the adapters."""

    def __init__(self, adapters: Sequence[Adapter]) -> None:
        # contract §6: one budget per request. Every round of department calls this request
        # makes (a person, then their subjects) ends by this start plus timeout_s.
        self.started = asyncio.get_running_loop().time()
        self._subjects: dict[Department, DataLoader[str, Answer[SubjectFacts]]] = {
            a.department: DataLoader(self._batch(a.department, a.lookup_subjects)) for a in adapters
        }
        # Only departments keeping anything by citizen ID are asked about a person.
        self._persons: dict[Department, DataLoader[str, Answer[PersonFacts]]] = {
            a.department: DataLoader(self._batch(a.department, a.lookup_persons))
            for a in adapters
            if a.holds_persons
        }
        self.failures: dict[Department, SourceError] = {}

    async def subject(self, uscc: str) -> dict[Department, Answer[SubjectFacts]]:
        """Every department's answer on one subject."""
        return (await self.subjects([uscc]))[0]

    async def subjects(self, usccs: Sequence[str]) -> list[dict[Department, Answer[SubjectFacts]]]:
        """Every department's answers on many subjects, batched per department."""
        return await self._gather(self._subjects, usccs)

    def person(self, id_number: str) -> dict[Department, Awaitable[Answer[PersonFacts]]]:
        """Each department's answer on one person, to be awaited one by one as they come."""
        return {d: self._noted(loader.load(id_number)) for d, loader in self._persons.items()}

    async def _noted(self, pending: Awaitable[Answer[F]]) -> Answer[F]:
        answer = await pending
        self._note(answer)
        return answer

    def _note(self, answer: Answer[F]) -> None:
        # The request's SOURCE_UNAVAILABLE errors name every department that failed once.
        if not answer.answered and answer.error is not None:
            self.failures.setdefault(answer.department, answer.error)

    async def _gather(
        self, loaders: Mapping[Department, DataLoader[str, Answer[F]]], keys: Sequence[str]
    ) -> list[dict[Department, Answer[F]]]:
        departments = list(loaders)
        per_department = await asyncio.gather(
            *(loaders[d].load_many(list(keys)) for d in departments)
        )
        for answers in per_department:
            for answer in answers:
                self._note(answer)
        return [
            {d: answers[i] for d, answers in zip(departments, per_department, strict=True)}
            for i in range(len(keys))
        ]

    def budget(self) -> AbstractContextManager[None]:
        """Around a department call of this request made outside the loaders (a name search)."""
        return request_budget(self.started)

    def _batch(
        self,
        department: Department,
        lookup: Callable[[Sequence[str]], Awaitable[Mapping[str, F | SourceError]]],
    ) -> Callable[[list[str]], Awaitable[list[Answer[F]]]]:
        async def load(keys: list[str]) -> list[Answer[F]]:
            try:
                with self.budget():
                    results = await lookup(keys)
            except Exception:
                # An adapter bug must cost this department's answer, not the query, and never
                # read as "nothing found": the department counts as not having answered.
                log.exception("adapter %s failed", department.value)
                results = {}
            return [Answer.of(department, results.get(key)) for key in keys]

        return load
