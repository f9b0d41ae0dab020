"""Which departments answered: the one place deciding what counts as an answer (CLEAR or not)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from core.records import Department, PersonFacts, SubjectFacts
from core.sources import (
    SNAPSHOT_TEXT,
    STAND_IN_TEXT,
    FailureKind,
    SourceError,
    SourceHealth,
    SourceState,
)

F = TypeVar("F", SubjectFacts, PersonFacts)


@dataclass(frozen=True, slots=True)
class Answer(Generic[F]):
    """One department's answer for one key: facts, an error, or both (a last good answer)."""

    department: Department
    facts: F | None = None
    error: SourceError | None = None

    @classmethod
    def of(cls, department: Department, result: F | SourceError | None) -> Answer[F]:
        """What an adapter's result for one key means; used by the loaders for every key."""
        if isinstance(result, SourceError):
            return cls(department, error=result)
        if result is None:
            error = SourceError(department, FailureKind.UNAVAILABLE, "no answer for this code")
            return cls(department, error=error)
        if result.refresh_failed:
            # Its last good answer is shown, but the department did not answer now: a
            # listing made since may be missing, so it counts as failed (INCOMPLETE,
            # SOURCE_UNAVAILABLE) while its facts stay on screen as STALE.
            stale = SourceError(department, FailureKind.UNAVAILABLE, "last good answer served")
            return cls(department, facts=result, error=stale)
        return cls(department, facts=result)

    @property
    def answered(self) -> bool:
        """True only when the department answered now; anything else may hide a listing."""
        return self.error is None


class Coverage:
    """The answers one determination rests on: who answered, who is missing, source states."""

    def __init__(self, answers: Iterable[Answer[Any] | None]) -> None:
        self._answers: dict[Department, list[Answer[Any]]] = {}
        for answer in answers:
            if answer is not None:
                self._answers.setdefault(answer.department, []).append(answer)

    @property
    def missing(self) -> tuple[Department, ...]:
        """Departments that did not answer for one of the lookups, in department order."""
        return tuple(d for d in Department if any(not a.answered for a in self._answers.get(d, ())))

    @property
    def complete(self) -> bool:
        """True when every department consulted answered now."""
        return not self.missing

    def states(self) -> list[SourceHealth]:
        """Each department consulted, in department order; one not asked is not listed."""
        return [_state(d, self._answers[d]) for d in Department if d in self._answers]


def _state(department: Department, answers: list[Answer[Any]]) -> SourceHealth:
    # A last good answer standing in (facts and error) shows as STALE: its facts are on
    # screen, while `missing` already counts the department as not having answered.
    errors = [a.error for a in answers if a.error is not None and a.facts is None]
    if errors:
        message = f"{errors[0].kind.value}: {errors[0].public_message}"
        return SourceHealth(department, SourceState.UNAVAILABLE, None, message)
    facts = [a.facts for a in answers if a.facts is not None]
    # The oldest answer used is the honest "as of" for what the view shows.
    as_of: datetime | None = min((f.as_of for f in facts), default=None)
    # contract §6: a STALE source always says why, in a fixed text of ours.
    if any(a.facts is not None and a.error is not None for a in answers):
        return SourceHealth(department, SourceState.STALE, as_of, STAND_IN_TEXT)
    if any(f.stale for f in facts):
        return SourceHealth(department, SourceState.STALE, as_of, SNAPSHOT_TEXT)
    return SourceHealth(department, SourceState.OK, as_of)
