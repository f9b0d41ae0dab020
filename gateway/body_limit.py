"""Request size limits: the body (HTTP 413) and a GET query string (414), REQUEST_TOO_LARGE."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import ErrorCode
from gateway.refusals import guarded, refuse

CODE = ErrorCode.REQUEST_TOO_LARGE


class _BodyTooLarge(Exception):
    """The body grew past the limit while it was read."""


class BodyLimitMiddleware:
    """ASGI middleware: reads at most max_body_bytes of a body before the app sees any of it."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_query_string_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_query_string_bytes = max_query_string_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not guarded(scope):
            await self.app(scope, receive, send)
            return
        if len(scope.get("query_string", b"")) > self.max_query_string_bytes:
            message = f"the query string exceeds {self.max_query_string_bytes} bytes; use POST"
            await refuse(send, 414, CODE, message)
            return
        declared = _content_length(scope)
        try:
            if declared is not None and declared > self.max_body_bytes:
                raise _BodyTooLarge
            body = await self._read(receive)
        except _BodyTooLarge:
            # The rest of the body stays unread; closing the connection discards it rather
            # than leaving it to be taken for the next request.
            message = f"the request body exceeds {self.max_body_bytes} bytes"
            await refuse(send, 413, CODE, message, [(b"connection", b"close")])
            return
        if body is None:
            return  # the client left while sending; there is no one to answer
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, counted as it arrives (a lying Content-Length or chunks alike)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before the app runs
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then the real channel (disconnect)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
