"""The access log: one line per HTTP request, written by the gateway instead of uvicorn."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.roles import Caller

log = logging.getLogger("credit_gateway.access")


class AccessLogMiddleware:
    """ASGI middleware, outermost: logs each request once its answer is sent or abandoned."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # The path without the query string: a GET query carries the caller's whole
            # query, ID numbers and all. What is left (method, path) is client text as
            # well, which the record factory of core/masking.py masks and escapes.
            client = scope.get("client")
            caller: Caller | None = scope.get("state", {}).get("caller")
            log.info(
                '%s %s "%s %s" %s %d ms',
                client[0] if client else "-",
                caller.client_id if caller is not None else "-",
                scope["method"],
                scope["path"],
                status if status is not None else "-",
                round((time.perf_counter() - started) * 1000),
            )
