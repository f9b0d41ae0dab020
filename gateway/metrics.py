"""Prometheus metrics (contract §10): one registry per runtime, served at /metrics.

Every label value comes from a closed set: departments, outcomes (adapters/observe.py,
gateway/request_record.py), breaker states, and operation labels bounded by
OperationNames. No code, ID number or other free text of a client ever becomes a label.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from starlette.requests import Request
from starlette.responses import Response

from adapters.base import Adapter
from adapters.breaker import BreakerState
from adapters.observe import CallOutcome
from core.clock import Clock
from core.records import Department

# The text format every Prometheus version reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A rendered page is reused this long: /metrics is never rate limited (a scrape must get
# through while the gateway is busy), so however often anyone asks, the page is built at
# most four times a second. Prometheus scrapes every 15 s or so.
PAGE_KEPT_S = 0.25
# Request latency: a warm lookup answers in milliseconds, a cold one in tens to hundreds,
# and the departments' budget (timeout_s, 2 s by default) bounds the rest.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
# Department calls: the departments answer in 20-300 ms, water's files take seconds.
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 30.0)
# An audit commit is an fsync of the write-ahead log: about a millisecond on SSDs.
AUDIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
# Kinds of background work (label `kind`): entries the audit writer commits, codes of bulk
# checks, and each file source's syncs ("water_sync"); a closed set, like every label here.
AUDIT_ENTRY = "audit_entry"
BULK_CODE = "bulk_code"
WATCH_MEMBER = "watch_member"
WEBHOOK = "webhook"


class Metrics:
    """The runtime's registry and its metrics; built when the app is, never at import."""

    def __init__(self, departments: Iterable[Department]) -> None:
        # Without the *_created series (one more per counter and histogram): Prometheus
        # infers resets itself. prometheus-client keeps this switch process-wide.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        registry = self.registry
        self.graphql_requests = Counter(
            "credit_gateway_graphql_requests",
            "GraphQL requests (/graphql) by operation label and outcome",
            ["operation", "outcome"],
            registry=registry,
        )
        self.graphql_duration = Histogram(
            "credit_gateway_graphql_request_duration_seconds",
            "Time from a /graphql request's arrival until its answer was sent",
            ["operation"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.department_calls = Counter(
            "credit_gateway_department_calls",
            "HTTP calls sent to a department (each retry and page counts) by outcome",
            ["department", "outcome"],
            registry=registry,
        )
        self.department_call_duration = Histogram(
            "credit_gateway_department_call_duration_seconds",
            "Duration of one HTTP call to a department, whatever its outcome",
            ["department"],
            buckets=CALL_BUCKETS,
            registry=registry,
        )
        self.department_lookups = Counter(
            "credit_gateway_department_lookups",
            "Lookups (one per batch chunk or health probe) by outcome, also those never sent",
            ["department", "outcome"],
            registry=registry,
        )
        self.cache_hits = Counter(
            "credit_gateway_answer_cache_hits",
            "Codes answered from the answer cache, or joined to a call in flight",
            ["department"],
            registry=registry,
        )
        self.cache_misses = Counter(
            "credit_gateway_answer_cache_misses",
            "Codes the answer cache had to ask the department for",
            ["department"],
            registry=registry,
        )
        self.cache_stale = Counter(
            "credit_gateway_answer_cache_stale_served",
            "Last good answers served, marked STALE, in place of a failed call",
            ["department"],
            registry=registry,
        )
        self.snapshot_age = Gauge(
            "credit_gateway_source_snapshot_age_seconds",
            "Age of a file source's snapshot (since its last successful sync)",
            ["department"],
            registry=registry,
        )
        # Work done off the requests' path, by kind (BACKGROUND_KINDS): audit entries the
        # writer commits, file sources' syncs; bulk checks join here when they exist.
        self.background_waiting = Gauge(
            "credit_gateway_background_jobs_waiting",
            "Background work queued and not yet taken up, by kind",
            ["kind"],
            registry=registry,
        )
        self.background_done = Counter(
            "credit_gateway_background_jobs_done",
            "Background work finished, by kind and outcome",
            ["kind", "outcome"],
            registry=registry,
        )
        self.audit_write_duration = Histogram(
            "credit_gateway_audit_write_duration_seconds",
            "Time to commit one batch of audit entries (queueing on the writer included)",
            ["outcome"],
            buckets=AUDIT_BUCKETS,
            registry=registry,
        )
        ProcessCollector(registry=registry)
        self._breakers: dict[Department, Callable[[], str]] = {}
        registry.register(_BreakerStates(self._breakers))
        # Children bound once per label set: a call's cost is a dict lookup and an add.
        self._requests: dict[tuple[str, str], Counter] = {}
        self._request_durations: dict[str, Histogram] = {}
        self._calls: dict[tuple[Department, CallOutcome], Counter] = {}
        self._lookups: dict[tuple[Department, CallOutcome], Counter] = {}
        self._call_durations: dict[Department, Histogram] = {}
        self._hits: dict[Department, Counter] = {}
        self._misses: dict[Department, Counter] = {}
        for department in departments:
            # Shown at 0 from the start, so rates and ratios have a series to work on.
            self._call(department, CallOutcome.OK)
            self._lookup(department, CallOutcome.OK)
            self.department_call_duration.labels(department.value.lower())
        self.audit_write_duration.labels("ok")
        self.background_done.labels(AUDIT_ENTRY, "ok")
        self.background_waiting.labels(AUDIT_ENTRY)
        self.background_waiting.labels(BULK_CODE)
        self.background_done.labels(BULK_CODE, "final")
        self._page: tuple[float, bytes] | None = None
        self._cache_fallbacks: Counter | None = None

    def request_done(self, operation: str, outcome: str, seconds: float) -> None:
        """Used by the access log once a /graphql request was answered (or refused)."""
        key = (operation, outcome)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self.graphql_requests.labels(operation, outcome)
        counter.inc()
        histogram = self._request_durations.get(operation)
        if histogram is None:
            histogram = self._request_durations[operation] = self.graphql_duration.labels(operation)
        histogram.observe(seconds)

    def call_done(self, department: Department, outcome: CallOutcome, seconds: float) -> None:
        """One HTTP exchange with a department ended."""
        self._call(department, outcome).inc()
        histogram = self._call_durations.get(department)
        if histogram is None:
            histogram = self._call_durations[department] = self.department_call_duration.labels(
                department.value.lower()
            )
        histogram.observe(seconds)

    def lookup_settled(self, department: Department, outcome: CallOutcome) -> None:
        """One lookup (a batch chunk or a probe) has its result."""
        self._lookup(department, outcome).inc()

    def cache_used(self, department: Department, hits: int, misses: int) -> None:
        """Used by the answer caches on every lookup, the warm path included."""
        if hits:
            counter = self._hits.get(department)
            if counter is None:
                counter = self._hits[department] = self.cache_hits.labels(department.value.lower())
            counter.inc(hits)
        if misses:
            counter = self._misses.get(department)
            if counter is None:
                counter = self._misses[department] = self.cache_misses.labels(
                    department.value.lower()
                )
            counter.inc(misses)

    def stale_served(self, department: Department, count: int) -> None:
        """Used by the answer caches when last good answers stood in for failed calls."""
        self.cache_stale.labels(department.value.lower()).inc(count)

    def audit_written(self, seconds: float, entries: int, ok: bool) -> None:
        """Used by the audit store after each batch it tried to commit."""
        outcome = "ok" if ok else "failed"
        self.audit_write_duration.labels(outcome).observe(seconds)
        self.background_done.labels(AUDIT_ENTRY, outcome).inc(entries)

    def watch_audit_queue(self, waiting: Callable[[], int]) -> None:
        """Used by the runtime once: the audit entries queued for the writer, read at scrape."""
        self.background_waiting.labels(AUDIT_ENTRY).set_function(waiting)

    def bulk_settled(self, final: int, retried: int) -> None:
        """Used by the background scheduler: codes given their final result, or a later try."""
        if final:
            self.background_done.labels(BULK_CODE, "final").inc(final)
        if retried:
            self.background_done.labels(BULK_CODE, "retry").inc(retried)

    def background_finished(self, kind: str, outcome: str, count: int = 1) -> None:
        """Used by the scheduler and the webhook sender: watched members checked, deliveries."""
        self.background_done.labels(kind, outcome).inc(count)

    def bulk_waiting(self, codes: int) -> None:
        """Used by the background scheduler: codes of active checks without a final result."""
        self.background_waiting.labels(BULK_CODE).set(codes)

    def sync_done(self, department: Department, outcome: CallOutcome) -> None:
        """Used (through the observer) by a file source after each sync of its snapshot."""
        self.background_done.labels(_sync_kind(department), outcome.value).inc()

    def watch_breaker(self, department: Department, state: Callable[[], str]) -> None:
        """A live department's breaker, read at every scrape."""
        self._breakers[department] = state

    def watch_cache(self, up: Callable[[], bool], kinds: Iterable[str]) -> None:
        """Used by the runtime once with [cache] url: whether Redis answers, read at scrape."""
        gauge = Gauge(
            "credit_gateway_cache_backend_up",
            "1 while the shared cache ([cache] url, Redis) answers, 0 while in-process",
            registry=self.registry,
        )
        gauge.set_function(lambda: 1.0 if up() else 0.0)
        self._cache_fallbacks = Counter(
            "credit_gateway_cache_fallbacks",
            "Operations done in-process because Redis could not be reached, by what",
            ["what"],
            registry=self.registry,
        )
        for kind in kinds:
            self._cache_fallbacks.labels(kind)  # shown at 0 from the start

    def cache_fell_back(self, what: str) -> None:
        """Used by the Redis backend for each operation it could not do (what: closed set)."""
        if self._cache_fallbacks is not None:
            self._cache_fallbacks.labels(what).inc()

    async def page(self, adapters: Sequence[Adapter], clock: Clock) -> bytes:
        """The text page: snapshot ages read now, the rest as recorded; kept PAGE_KEPT_S."""
        now = time.monotonic()
        if self._page is not None and now - self._page[0] < PAGE_KEPT_S:
            return self._page[1]
        for adapter in adapters:
            if adapter.answers_from_snapshot:
                # A snapshot source's health is its sync state: no call to the department.
                health = await adapter.health()
                if health.as_of is not None:
                    age = (clock.now() - health.as_of).total_seconds()
                    self.snapshot_age.labels(adapter.department.value.lower()).set(max(age, 0.0))
        body = generate_latest(self.registry)
        self._page = (now, body)
        return body

    def _call(self, department: Department, outcome: CallOutcome) -> Counter:
        key = (department, outcome)
        counter = self._calls.get(key)
        if counter is None:
            counter = self._calls[key] = self.department_calls.labels(
                department.value.lower(), outcome.value
            )
        return counter

    def _lookup(self, department: Department, outcome: CallOutcome) -> Counter:
        key = (department, outcome)
        counter = self._lookups.get(key)
        if counter is None:
            counter = self._lookups[key] = self.department_lookups.labels(
                department.value.lower(), outcome.value
            )
        return counter


def _sync_kind(department: Department) -> str:
    return f"{department.value.lower()}_sync"


class _BreakerStates:
    """Collector of each live department's breaker state, one series per state (1 = current)."""

    def __init__(self, breakers: dict[Department, Callable[[], str]]) -> None:
        self._breakers = breakers

    def collect(self) -> Iterator[Metric]:
        """Called by the registry at every scrape."""
        family = GaugeMetricFamily(
            "credit_gateway_breaker_state",
            "Circuit breaker of a department: 1 for its current state, 0 for the others",
            labels=["department", "state"],
        )
        for department, state in sorted(self._breakers.items()):
            current = state()
            for each in BreakerState:
                family.add_metric(
                    [department.value.lower(), each.value.lower()], 1.0 if each == current else 0.0
                )
        yield family


async def metrics_page(request: Request) -> Response:
    """GET /metrics while `[metrics] enabled`: the runtime's registry in Prometheus text."""
    runtime = request.app.state.runtime
    metrics: Metrics = runtime.metrics
    body = await metrics.page(runtime.adapters, runtime.clock)
    return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})
