"""What the adapters tell the gateway about their departments: a port injected through AdapterDeps.

The adapters know nothing of Prometheus or OpenTelemetry: they report calls, lookups, cache
use and breaker state to an `Observer`, which the gateway's runtime implements (metrics,
traces) and which is a no-op by default (tests and tools that build adapters by hand).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Protocol

from core.records import Department
from core.sources import FailureKind, SourceError


class CallOutcome(enum.StrEnum):
    """How a department call or lookup ended; a closed set, so metric labels stay bounded."""

    OK = "ok"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    RATE_LIMITED = "rate_limited"
    BAD_PAYLOAD = "bad_payload"
    NOT_SYNCED = "not_synced"
    # Lookups only: not sent, as the department's pace, or its open breaker, refused it.
    OVER_BUDGET = "over_budget"
    BREAKER_OPEN = "breaker_open"
    # A call abandoned before it ended: its lookup's deadline passed, or the gateway stopped.
    CANCELLED = "cancelled"


_OF_KIND = {
    FailureKind.TIMEOUT: CallOutcome.TIMEOUT,
    FailureKind.UNAVAILABLE: CallOutcome.UNAVAILABLE,
    FailureKind.RATE_LIMITED: CallOutcome.RATE_LIMITED,
    FailureKind.BAD_PAYLOAD: CallOutcome.BAD_PAYLOAD,
    FailureKind.NOT_SYNCED: CallOutcome.NOT_SYNCED,
    FailureKind.OVER_BUDGET: CallOutcome.OVER_BUDGET,
}


def outcome_of(error: SourceError | None) -> CallOutcome:
    """The outcome a call or lookup that ended with this failure (or none) is counted under."""
    if error is None:
        return CallOutcome.OK
    if error.open_since is not None:
        # Refused by the circuit breaker without asking the department.
        return CallOutcome.BREAKER_OPEN
    return _OF_KIND[error.kind]


class DepartmentCall(Protocol):
    """One HTTP exchange with a department, from just before it is sent until it ends."""

    def headers(self, headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
        """The headers to send: the call's own plus the observer's (W3C trace context)."""
        ...

    def finished(self, outcome: CallOutcome) -> None:
        """Called once when the exchange ended, however it ended."""
        ...


class Observer(Protocol):
    """What the adapters report; the gateway's runtime passes one in through AdapterDeps."""

    def department_call(self, department: Department) -> DepartmentCall:
        """Used by SourceHttp right before each HTTP exchange (retries and pages included)."""
        ...

    def lookup_settled(self, department: Department, outcome: CallOutcome) -> None:
        """Used by SourceHttp when a lookup (one batch chunk, or a probe) has its result."""
        ...

    def cache_used(self, department: Department, hits: int, misses: int) -> None:
        """Used by the answer cache: codes answered without a call, and codes asked upstream."""
        ...

    def stale_served(self, department: Department, count: int) -> None:
        """Used by the answer cache when last good answers stand in for failed calls."""
        ...

    def watch_breaker(self, department: Department, state: Callable[[], str]) -> None:
        """Used once per live department at start: its breaker's state, read when scraped."""
        ...

    def sync_done(self, department: Department, outcome: CallOutcome) -> None:
        """Used by a file source after each sync of its snapshot (background work)."""
        ...


class NoObserver:
    """The default observer: nothing is recorded and nothing is added to calls."""

    def department_call(self, department: Department) -> DepartmentCall:
        """The observer itself stands for the call: both are no-ops."""
        return self

    def headers(self, headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
        """The call's own headers, unchanged."""
        return headers

    def finished(self, outcome: CallOutcome) -> None:
        """Nothing to record."""

    def lookup_settled(self, department: Department, outcome: CallOutcome) -> None:
        """Nothing to record."""

    def cache_used(self, department: Department, hits: int, misses: int) -> None:
        """Nothing to record."""

    def stale_served(self, department: Department, count: int) -> None:
        """Nothing to record."""

    def watch_breaker(self, department: Department, state: Callable[[], str]) -> None:
        """Nothing to watch."""

    def sync_done(self, department: Department, outcome: CallOutcome) -> None:
        """Nothing to record."""
