"""The access log: one line per HTTP request, written by the gateway instead of uvicorn.

It is the outermost middleware, so it also gives every request its id (X-Request-Id) and
counts the /graphql requests in the metrics, refusals of the inner middleware included.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.masking import mask_ids
from core.roles import Caller
from gateway.metrics import Metrics
from gateway.request_record import UNNAMED, RequestRecord, refusal_outcome, request_id

log = logging.getLogger("credit_gateway.access")

GRAPHQL_PATH = "/graphql"
_REQUEST_ID_HEADER = b"x-request-id"


class AccessLogMiddleware:
    """ASGI middleware, outermost: logs each request once its answer is sent or abandoned."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None
        record = RequestRecord(request_id(_header(scope, _REQUEST_ID_HEADER)))
        record.put(scope)
        id_header = (_REQUEST_ID_HEADER, record.request_id.encode("ascii"))

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Every answer names its request, so a caller can quote it to operators.
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            path: str = scope["path"]
            operation, outcome = record.operation, record.outcome
            if path.removeprefix(scope.get("root_path", "")) == GRAPHQL_PATH:
                if outcome is None:
                    # Refused before GraphQL ran (401, 429, 413, 503 …), or not a query.
                    outcome = refusal_outcome(status)
                if outcome is not None and self.metrics is not None:
                    self.metrics.request_done(operation or UNNAMED, outcome, seconds)
            client = scope.get("client")
            caller: Caller | None = scope.get("state", {}).get("caller")
            address = client[0] if client else "-"
            client_id = caller.client_id if caller is not None else "-"
            milliseconds = round(seconds * 1000)
            # The path without the query string: a GET query carries the caller's whole
            # query, ID numbers and all. What is left (method, path) is client text as
            # well, which the record factory of core/masking.py masks and escapes in the
            # line; the fields for JSON logs are masked here, as the factory leaves extras.
            log.info(
                '%s %s %s %s "%s %s" %s %d ms',
                address,
                client_id,
                record.request_id,
                operation or "-",
                scope["method"],
                path,
                status if status is not None else "-",
                milliseconds,
                extra={
                    "request_id": record.request_id,
                    "client_address": address,
                    "client_id": client_id,
                    "operation": operation,
                    "outcome": outcome,
                    "method": mask_ids(scope["method"]),
                    "path": mask_ids(path),
                    "status": status,
                    "duration_ms": milliseconds,
                    "trace_id": record.trace_id,
                },
            )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None
