"""OpenTelemetry traces (optional extra `tracing`): a span per operation and per department call.

Nothing of OpenTelemetry is imported unless `[tracing] otlp_endpoint` is set; then a missing
package stops the start with a ConfigError naming [tracing]. Spans never carry arguments,
variables, the query text or department URLs: all of them can hold codes and ID numbers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from core.records import Department
from core.roles import Caller
from gateway.config import ConfigError
from gateway.config_operations import TracingConfig

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

# OTLP/HTTP's path for traces, added to an endpoint given without a path (the collector's
# base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is written).
TRACES_PATH = "/v1/traces"
# Bounds the stop: a collector that is down costs at most this per export, and at shutdown.
EXPORT_TIMEOUT_S = 5.0
INSTALL_HINT = "pip install 'credit-gateway[tracing]'"


class _Recorded(Protocol):
    """What a span is told about the request it belongs to (gateway.request_record)."""

    request_id: str


class Tracing:
    """The runtime's tracer provider and the spans the gateway makes; None when tracing is off."""

    def __init__(self, config: TracingConfig, endpoint: str) -> None:
        # Imported here, once: checked by from_config, so only a configured gateway needs them.
        from opentelemetry import context, trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._context = context
        self._trace = trace
        self._propagator = TraceContextTextMapPropagator()
        # Our own provider, never the process-wide one: each app (tests build many) has its
        # own, shut down with it. Department calls follow their operation's decision.
        self._provider: TracerProvider = TracerProvider(
            resource=Resource.create({"service.name": config.service_name}),
            sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
        )
        exporter = OTLPSpanExporter(endpoint=endpoint, timeout=EXPORT_TIMEOUT_S)
        self._provider.add_span_processor(
            BatchSpanProcessor(exporter, export_timeout_millis=EXPORT_TIMEOUT_S * 1000)
        )
        self._tracer: Tracer = self._provider.get_tracer("credit-gateway")
        self._server_kind = trace.SpanKind.SERVER
        self._client_kind = trace.SpanKind.CLIENT
        self._error = trace.StatusCode.ERROR

    @classmethod
    def from_config(cls, config: TracingConfig) -> Tracing | None:
        """Used by the runtime when the app is built: None without an endpoint."""
        if config.otlp_endpoint is None:
            return None
        try:
            import opentelemetry.exporter.otlp.proto.http.trace_exporter
            import opentelemetry.sdk.trace  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                f"[tracing] otlp_endpoint is set, but OpenTelemetry is not installed "
                f"({exc.name or 'opentelemetry'} is missing): {INSTALL_HINT}"
            ) from None
        return cls(config, traces_url(config.otlp_endpoint))

    def operation_span(self) -> OperationSpan:
        """Used by the GraphQL extension: a new trace's root span, current until finished."""
        # A root on purpose: /graphql is public, so a caller's traceparent is not followed
        # (it would choose the trace id and force sampling). An empty context is no parent.
        span = self._tracer.start_span(
            "graphql.operation", context=self._context.Context(), kind=self._server_kind
        )
        token = self._context.attach(self._trace.set_span_in_context(span))
        return OperationSpan(self, span, token)

    def department_span(self, department: Department) -> DepartmentSpan:
        """Used for each department call: a child of the current operation (a root if none)."""
        span = self._tracer.start_span(
            f"{department.value.lower()} call",
            kind=self._client_kind,
            attributes={"credit_gateway.department": department.value.lower()},
        )
        return DepartmentSpan(self, span)

    def inject(self, span: Span, headers: Mapping[str, str] | None) -> dict[str, str]:
        """The headers with the span's W3C trace context (traceparent) added."""
        carrier = dict(headers or {})
        self._propagator.inject(carrier, context=self._trace.set_span_in_context(span))
        return carrier

    def end(self, span: Span, outcome: str, attributes: Mapping[str, str] | None = None) -> None:
        """Ends a span with its outcome; anything but ok marks it an error."""
        span.set_attribute("credit_gateway.outcome", outcome)
        for key, value in (attributes or {}).items():
            span.set_attribute(key, value)
        if outcome != "ok":
            span.set_status(self._error, outcome)
        span.end()

    def detach(self, token: Token[Context]) -> None:
        """Restores the context an operation span replaced."""
        self._context.detach(token)

    async def close(self) -> None:
        """Used when the gateway stops: spans still queued are sent (bounded), then stop."""
        # Off the event loop: the exporter posts with a blocking HTTP client.
        await asyncio.to_thread(self._provider.shutdown)


class OperationSpan:
    """The span of one GraphQL operation, current from its start until `finish`."""

    __slots__ = ("_span", "_token", "_tracing")

    def __init__(self, tracing: Tracing, span: Span, token: Token[Context]) -> None:
        self._tracing = tracing
        self._span = span
        self._token = token

    def finish(
        self,
        operation_type: str,
        label: str,
        outcome: str,
        record: _Recorded | None,
        caller: Caller | None,
    ) -> str | None:
        """Names and ends the span; the trace id (hex) when the trace is sampled."""
        # The operation's label (OperationNames), never the name as sent, nor its variables.
        self._span.update_name(f"{operation_type} {label}")
        attributes: dict[str, Any] = {
            "graphql.operation.type": operation_type,
            "graphql.operation.name": label,
        }
        if record is not None:
            attributes["credit_gateway.request_id"] = record.request_id
        if caller is not None:
            attributes["credit_gateway.client_id"] = caller.client_id
        self._tracing.end(self._span, outcome, attributes)
        self._tracing.detach(self._token)
        context = self._span.get_span_context()
        return format(context.trace_id, "032x") if context.trace_flags.sampled else None


class DepartmentSpan:
    """The span of one HTTP exchange with a department."""

    __slots__ = ("_span", "_tracing")

    def __init__(self, tracing: Tracing, span: Span) -> None:
        self._tracing = tracing
        self._span = span

    def headers(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        """The call's headers with its traceparent, so the department can join the trace."""
        return self._tracing.inject(self._span, headers)

    def end(self, outcome: str) -> None:
        """Ends the span with the call's outcome."""
        self._tracing.end(self._span, outcome)


def traces_url(endpoint: str) -> str:
    """The URL spans are posted to: the endpoint as given, or its base URL plus /v1/traces."""
    parts = urlsplit(endpoint)
    if parts.path in ("", "/"):
        return urlunsplit(parts._replace(path=TRACES_PATH))
    return endpoint
