"""Per-request DataLoaders: one per part a department is asked for, so codes become batches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TypeVar

from strawberry.dataloader import DataLoader

from adapters.base import Adapter, SubjectResult, merge_parts
from adapters.deadline import request_budget
from core.records import DEPARTMENT_OF_PART, PARTS_OF, Department, Part, PersonFacts, SubjectFacts
from core.sources import FailureKind, SourceError
from resolvers.answers import Answer
from resolvers.plan import FULL, Plan

log = logging.getLogger(__name__)
F = TypeVar("F", SubjectFacts, PersonFacts)


class Loaders:
    """Created for each request; every resolver goes through these, never the adapters."""

    def __init__(self, adapters: Sequence[Adapter], one_by_one_batch: int | None = None) -> None:
        """`one_by_one_batch`: for a department asked one code a call (the courts), how many
        codes one batch of this loader holds; background work settles its results by them."""
        # contract §6: one budget per request. Every round of department calls this request
        # makes (a person, then their subjects) ends by this start plus timeout_s.
        self.started = asyncio.get_running_loop().time()
        # One loader per part (market's register and each of its lists, tax's two operations,
        # the courts, water): a query's codes become one batched call per part asked, and a
        # part two fields (or a later round) need for the same code is asked once.
        self._parts: dict[Part, DataLoader[str, Answer[SubjectFacts]]] = {
            part: DataLoader(
                self._part_batch(a, part),
                max_batch_size=one_by_one_batch if a.max_batch == 1 else None,
            )
            for a in adapters
            for part in PARTS_OF[a.department]
        }
        self._adapters: dict[Part, Adapter] = {
            part: a for a in adapters for part in PARTS_OF[a.department]
        }
        # Only departments keeping anything by citizen ID are asked about a person.
        self._persons: dict[Department, DataLoader[str, Answer[PersonFacts]]] = {
            a.department: DataLoader(self._batch(a.department, a.lookup_persons))
            for a in adapters
            if a.holds_persons
        }
        self.failures: dict[Department, SourceError] = {}

    async def subject(self, uscc: str, plan: Plan = FULL) -> dict[Department, Answer[SubjectFacts]]:
        """The answer of each department the plan asks, on one subject."""
        return (await self.subjects([uscc], plan))[0]

    async def subjects(
        self, usccs: Sequence[str], plan: Plan = FULL
    ) -> list[dict[Department, Answer[SubjectFacts]]]:
        """The answers of each department the plan asks, on many subjects, batched per part."""
        parts = [p for p in Part if p in plan.parts and p in self._parts]
        for part in parts:
            self._prime_fresh(part, usccs)
        per_part = await asyncio.gather(*(self._parts[p].load_many(list(usccs)) for p in parts))
        for answers in per_part:
            for answer in answers:
                self._note(answer)
        results = []
        for i in range(len(usccs)):
            by_department: dict[Department, list[Answer[SubjectFacts]]] = {}
            for part, answers in zip(parts, per_part, strict=True):
                by_department.setdefault(DEPARTMENT_OF_PART[part], []).append(answers[i])
            results.append({d: _joined(d, a) for d, a in by_department.items()})
        return results

    def _prime_fresh(self, part: Part, usccs: Sequence[str]) -> None:
        # Answers an answer cache holds fresh go straight into this request's loader: a warm
        # lookup schedules no batch, task or call for them (most of a warm lookup's CPU).
        adapter = self._adapters[part]
        loader = self._parts[part]
        for key, facts in adapter.fresh_subjects(usccs, frozenset({part})).items():
            loader.prime(key, Answer.of(adapter.department, _holding(part, key, facts)))

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

    def _part_batch(
        self, adapter: Adapter, part: Part
    ) -> Callable[[list[str]], Awaitable[list[Answer[SubjectFacts]]]]:
        wanted = frozenset({part})

        async def lookup(keys: Sequence[str]) -> Mapping[str, SubjectResult]:
            results = await adapter.lookup_subjects(keys, wanted)
            return {key: _holding(part, key, result) for key, result in results.items()}

        return self._batch(adapter.department, lookup)


def _holding(part: Part, key: str, result: SubjectResult) -> SubjectResult:
    """An adapter's result for a part, kept only when its facts hold that part."""
    if isinstance(result, SubjectFacts) and part not in result.parts:
        # Facts without the part asked would read as "nothing on record": an adapter bug,
        # counted like any adapter failure (the department has not answered).
        log.error("adapter %s answered %s without part %s", result.department.value, key, part)
        return SourceError(
            result.department, FailureKind.UNAVAILABLE, "the answer lacks the part asked"
        )
    return result


def _joined(department: Department, answers: list[Answer[SubjectFacts]]) -> Answer[SubjectFacts]:
    """One department's answer on a subject from the answers of its parts."""
    if len(answers) == 1:
        return answers[0]
    failed = next((a for a in answers if a.facts is None), None)
    if failed is not None:
        # A part without an answer fails the department whole, as its one combined lookup
        # did: part of its facts could pass for all of them.
        return failed
    facts = [a.facts for a in answers if a.facts is not None]
    # A part served from its last good answer keeps the department missing (STALE).
    error = next((a.error for a in answers if a.error is not None), None)
    return Answer(department, facts=merge_parts(facts), error=error)
