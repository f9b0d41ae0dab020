"""Load shedding: a fast 503 OVERLOADED instead of a growing queue of GraphQL requests."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import ErrorCode
from gateway.refusals import guarded, refuse

# Requests shed now will find room again as soon as any of those in flight finishes.
RETRY_AFTER_S = 1


class LoadSheddingMiddleware:
    """ASGI middleware: answers at once while max_in_flight requests are being processed."""

    def __init__(self, app: ASGIApp, max_in_flight: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        # One event loop runs every request, so a plain counter needs no lock.
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not guarded(scope):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            message = "the gateway is at capacity; retry shortly"
            retry_after = (b"retry-after", str(RETRY_AFTER_S).encode())
            await refuse(send, 503, ErrorCode.OVERLOADED, message, [retry_after])
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
