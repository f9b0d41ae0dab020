"""The last resort: an exception no part of the gateway handled is answered as a GraphQL error."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.refusals import refuse

log = logging.getLogger("credit_gateway.errors")

# The same words as a masked resolver error (schema/__init__.py): nothing of the cause.
MESSAGE = "Internal error."


class LastResortMiddleware:
    """ASGI middleware inside the access log: answers 500 with a GraphQL error body, logs why."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def sending(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            # The traceback stays here, in the log; the client learns only that it failed.
            log.exception("unexpected error answering %s %s", scope["method"], scope["path"])
            if response_started:
                return  # too late for a status: uvicorn closes the cut-off response
            # Closed afterwards: whatever failed may have left the request's body unread.
            await refuse(send, 500, None, MESSAGE, [(b"connection", b"close")])
