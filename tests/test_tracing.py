"""Traces (optional extra `tracing`): spans to an OTLP/HTTP receiver, traceparent to departments."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from core.clock import Clock
from gateway.app import create_app
from gateway.config_operations import TracingConfig
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.cli import ROOT, write_config
from tests.conftest import TODAY, audit_url, gateway_config
from tests.servers import KEYS, GatewayServer, GraphQLClient
from tests.test_metrics import TOUR_SUBJECT, upstream_calls

LIVE = ("courts", "market", "tax")
# The trace-flags bit for "sampled" (W3C Trace Context); 0x02 says the trace id is random.
SAMPLED = 0x01


class Collector:
    """A tiny OTLP/HTTP receiver: POST /v1/traces, protobuf, as an OpenTelemetry collector."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                collector.paths.append(self.path)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                assert self.headers["Content-Type"] == "application/x-protobuf"
                collector.requests.append(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def spans(self) -> list[Span]:
        """Every span received so far."""
        return [
            span
            for request in self.requests
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def service_names(self) -> set[str]:
        """The service.name of every resource that sent spans."""
        return {
            attribute.value.string_value
            for request in self.requests
            for resource in request.resource_spans
            for attribute in resource.resource.attributes
            if attribute.key == "service.name"
        }

    def stop(self) -> None:
        """Stops listening."""
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    """An OTLP/HTTP receiver on a free loopback port."""
    receiver = Collector()
    yield receiver
    receiver.stop()


def _traced_gateway(sandbox: SandboxThread, tracing: TracingConfig) -> GatewayServer:
    config = replace(gateway_config(sandbox.urls), tracing=tracing)
    return GatewayServer(create_app(config, Clock(TODAY))).start()


def _traceparent(headers: dict[str, str]) -> tuple[str, str, int]:
    """Trace id, parent span id and flags of a W3C traceparent header (version 00)."""
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert version == "00"
    return trace_id, span_id, int(flags, 16)


def _attributes(span: Span) -> dict[str, str]:
    return {a.key: a.value.string_value for a in span.attributes}


def test_spans_reach_the_collector_and_the_trace_reaches_the_departments(
    collector: Collector, faults: SandboxThread, dataset: Dataset
) -> None:
    # The collector's base URL, as operators write it: /v1/traces is added.
    tracing = TracingConfig(otlp_endpoint=collector.url, service_name="gateway-under-test")
    server = _traced_gateway(faults, tracing)
    uscc = dataset.examples["stitched.all_departments"]
    try:
        faults.reset_counts()
        client = GraphQLClient(server.url, key=KEYS["partner"])
        response = client.post(TOUR_SUBJECT, {"uscc": uscc})
        assert "errors" not in response.json()
        request_id = response.headers["x-request-id"]
        calls = {name: upstream_calls(faults, name) for name in LIVE}
        headers = {name: faults.request_headers(name) for name in LIVE}
        faults.set_faults("market", down=True)
        failed = client.query(TOUR_SUBJECT.replace("TourSubject", "Failing"), {"uscc": uscc})
        assert failed["errors"][0]["extensions"]["department"] == "MARKET"
    finally:
        server.stop()  # spans still queued are sent when the gateway stops
    assert collector.paths and set(collector.paths) == {"/v1/traces"}
    assert collector.service_names() == {"gateway-under-test"}
    spans = collector.spans()
    [operation] = [s for s in spans if s.name == "query TourSubject"]
    assert operation.kind == Span.SPAN_KIND_SERVER and not operation.parent_span_id
    assert _attributes(operation) == {
        "graphql.operation.type": "query",
        "graphql.operation.name": "TourSubject",
        "credit_gateway.outcome": "ok",
        "credit_gateway.request_id": request_id,
        "credit_gateway.client_id": "partner-test",
    }
    children = [s for s in spans if s.parent_span_id == operation.span_id]
    assert {s.trace_id for s in children} == {operation.trace_id}
    for name in LIVE:
        mine = [s for s in children if s.name == f"{name} call"]
        # One span per HTTP call the department received, each with its outcome.
        assert len(mine) == calls[name] > 0, name
        assert all(s.kind == Span.SPAN_KIND_CLIENT for s in mine)
        assert all(
            _attributes(s) == {"credit_gateway.department": name, "credit_gateway.outcome": "ok"}
            for s in mine
        )
        # Each call carried its own span's W3C trace context to the department, sampled.
        sent = [_traceparent(h) for _, h in headers[name]]
        assert {(trace, span) for trace, span, _ in sent} == {
            (operation.trace_id.hex(), s.span_id.hex()) for s in mine
        }, name
        assert all(flags & SAMPLED for _, _, flags in sent)
    [failing] = [s for s in spans if s.name == "query Failing"]
    assert _attributes(failing)["credit_gateway.outcome"] == "source_unavailable"
    assert failing.status.code == Status.STATUS_CODE_ERROR
    market = [s for s in spans if s.parent_span_id == failing.span_id and s.name == "market call"]
    assert market and {_attributes(s)["credit_gateway.outcome"] for s in market} == {"unavailable"}
    # Never an argument: the USCC asked appears in no span.
    assert all(uscc not in str(span) for span in spans)


def test_an_unsampled_trace_sends_no_spans_but_still_says_so_downstream(
    collector: Collector, sandbox: SandboxThread, dataset: Dataset
) -> None:
    tracing = TracingConfig(otlp_endpoint=f"{collector.url}/v1/traces", sample_ratio=0.0)
    server = _traced_gateway(sandbox, tracing)
    try:
        sandbox.reset_counts()
        client = GraphQLClient(server.url)
        assert client.query(TOUR_SUBJECT, {"uscc": dataset.examples["clean.plain"]})["data"]
        sent = [_traceparent(h) for _, h in sandbox.request_headers("market")]
    finally:
        server.stop()
    assert collector.spans() == []
    # The departments learn the decision (not sampled), so they do not sample it either.
    assert sent and not [flags for _, _, flags in sent if flags & SAMPLED]


def test_without_an_endpoint_nothing_is_traced(
    gateway: GatewayServer, sandbox: SandboxThread, dataset: Dataset
) -> None:
    sandbox.reset_counts()
    body = GraphQLClient(gateway.url).query(TOUR_SUBJECT, {"uscc": dataset.examples["clean.plain"]})
    assert body["data"]["subject"]
    sent = [h for _, h in sandbox.request_headers("market")]
    assert sent and not [h for h in sent if "traceparent" in {k.lower() for k in h}]


def test_tracing_configured_without_the_package_stops_the_start(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "gateway.toml",
        audit_url(),
        extra='[tracing]\notlp_endpoint = "http://127.0.0.1:4318"\n',
    )
    # The gateway as installed without the extra: OpenTelemetry cannot be imported.
    program = (
        "import sys; sys.modules['opentelemetry'] = None; "
        "from gateway.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program, "serve", "--config", str(config), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2, result.stderr
    assert "[tracing] otlp_endpoint is set, but OpenTelemetry is not installed" in result.stderr
    assert "pip install 'credit-gateway[tracing]'" in result.stderr
