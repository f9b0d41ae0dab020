"""The runtime's Observer (adapters/observe.py): department calls into metrics and spans."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from adapters.observe import CallOutcome, DepartmentCall, NoObserver
from core.records import Department
from gateway.metrics import Metrics
from gateway.tracing import DepartmentSpan, Tracing


class GatewayObserver(NoObserver):
    """Passed to every adapter through AdapterDeps; either part may be off (None)."""

    def __init__(self, metrics: Metrics | None, tracing: Tracing | None) -> None:
        self._metrics = metrics
        self._tracing = tracing

    def department_call(self, department: Department) -> DepartmentCall:
        """A call about to be sent: timed for metrics, spanned for traces."""
        if self._metrics is None and self._tracing is None:
            return self
        span = self._tracing.department_span(department) if self._tracing is not None else None
        return _Call(department, self._metrics, span)

    def lookup_settled(self, department: Department, outcome: CallOutcome) -> None:
        """Counted by outcome."""
        if self._metrics is not None:
            self._metrics.lookup_settled(department, outcome)

    def cache_used(self, department: Department, hits: int, misses: int) -> None:
        """Counted as hits and misses."""
        if self._metrics is not None:
            self._metrics.cache_used(department, hits, misses)

    def stale_served(self, department: Department, count: int) -> None:
        """Counted."""
        if self._metrics is not None:
            self._metrics.stale_served(department, count)

    def watch_breaker(self, department: Department, state: Callable[[], str]) -> None:
        """Read at every scrape."""
        if self._metrics is not None:
            self._metrics.watch_breaker(department, state)

    def sync_done(self, department: Department, outcome: CallOutcome) -> None:
        """Counted as background work done."""
        if self._metrics is not None:
            self._metrics.sync_done(department, outcome)


class _Call:
    """One HTTP exchange with a department as the metrics and the trace see it."""

    __slots__ = ("_department", "_metrics", "_span", "_started")

    def __init__(
        self, department: Department, metrics: Metrics | None, span: DepartmentSpan | None
    ) -> None:
        self._department = department
        self._metrics = metrics
        self._span = span
        self._started = time.perf_counter()

    def headers(self, headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
        """The call's headers, with its traceparent when traced."""
        return self._span.headers(headers) if self._span is not None else headers

    def finished(self, outcome: CallOutcome) -> None:
        """Counts and times the call, and ends its span."""
        if self._metrics is not None:
            self._metrics.call_done(self._department, outcome, time.perf_counter() - self._started)
        if self._span is not None:
            self._span.end(outcome.value)
