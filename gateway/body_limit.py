"""Request bodies: size (413, 414 for a GET query), deadline (408), bytes held (503, 429)."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import ErrorCode
from core.roles import ANONYMOUS, Caller, Role
from gateway.config import LimitsConfig
from gateway.rate_limit import address_key
from gateway.refusals import guarded, refuse

CODE = ErrorCode.REQUEST_TOO_LARGE
# Bodies still arriving hold the budget for at most body_timeout_s; most finish far sooner.
RETRY_AFTER_S = 1
# The rest of the body stays unread; closing the connection discards it rather than leaving
# it to be taken for the next request.
_CLOSE = (b"connection", b"close")
_RETRY = (b"retry-after", str(RETRY_AFTER_S).encode())


class _BodyTooLarge(Exception):
    """The body grew past the limit while it was read."""


class _OverBudget(Exception):
    """Holding one more chunk would pass a buffered-bytes budget."""

    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class BufferBudget:
    """Bytes of request bodies being read, in all and per client; one per app."""

    def __init__(self, max_total: int, max_client: int) -> None:
        self.max_total = max_total
        self.max_client = max_client
        # One event loop runs every request, so plain counters need no lock.
        self.total = 0
        self.by_client: dict[str, int] = {}

    def check(self, client: str, size: int) -> None:
        """Raises _OverBudget if `size` more bytes for this client would pass a budget."""
        # The client's own budget first: a client over it is told so (429), not shed as if
        # the gateway were full.
        if self.by_client.get(client, 0) + size > self.max_client:
            message = (
                f"request bodies still arriving from this client exceed "
                f"{self.max_client} bytes; retry when they have arrived"
            )
            raise _OverBudget(429, ErrorCode.RATE_LIMITED, message)
        if self.total + size > self.max_total:
            message = "the gateway is receiving too many request bodies at once; retry shortly"
            raise _OverBudget(503, ErrorCode.OVERLOADED, message)

    def take(self, client: str, size: int) -> None:
        """Counts `size` bytes of this client's body as held, or raises _OverBudget."""
        self.check(client, size)
        self.total += size
        self.by_client[client] = self.by_client.get(client, 0) + size

    def release(self, client: str, size: int) -> None:
        """Called once a body is read, refused or abandoned: its bytes are no longer counted."""
        self.total -= size
        left = self.by_client.get(client, 0) - size
        if left > 0:
            self.by_client[client] = left
        else:
            # Forgotten at zero: the map holds only clients with a body in flight.
            self.by_client.pop(client, None)


class _Hold:
    """The bytes of one request's body counted in the budget so far."""

    def __init__(self, budget: BufferBudget, client: str) -> None:
        self.budget = budget
        self.client = client
        self.size = 0

    def take(self, size: int) -> None:
        """Called for each chunk as it arrives; raises _OverBudget."""
        self.budget.take(self.client, size)
        self.size += size

    def release(self) -> None:
        """Called when the read ends, however it ends."""
        self.budget.release(self.client, self.size)
        self.size = 0


def bulk_body_bytes(max_codes: int) -> int:
    """The body a startBulkCheck of `max_codes` codes needs: 24 bytes a code and the query."""
    return max_codes * 24 + 64 * 1024


class BodyLimitMiddleware:
    """ASGI middleware: reads a body within its limits before the app sees any of it."""

    def __init__(self, app: ASGIApp, limits: LimitsConfig, keyed_max_bytes: int = 0) -> None:
        self.app = app
        self.public_max_bytes = limits.max_body_bytes
        # Callers with a key may send more: a startBulkCheck of [background] max_bulk_codes
        # codes is about 21 bytes a code (contract §8: 50,000 codes, over 1 MiB).
        self.keyed_max_bytes = min(
            max(limits.max_body_bytes, keyed_max_bytes), limits.max_client_buffered_bytes
        )
        self.max_query_string_bytes = limits.max_query_string_bytes
        self.body_timeout_s = limits.body_timeout_s
        self.budget = BufferBudget(limits.max_buffered_bytes, limits.max_client_buffered_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not guarded(scope):
            await self.app(scope, receive, send)
            return
        if len(scope.get("query_string", b"")) > self.max_query_string_bytes:
            message = f"the query string exceeds {self.max_query_string_bytes} bytes; use POST"
            await refuse(send, 414, CODE, message)
            return
        hold = _Hold(self.budget, _client_key(scope))
        declared = _content_length(scope)
        caller: Caller | None = scope.get("state", {}).get("caller")
        keyed = caller is not None and caller.role is not Role.PUBLIC
        limit = self.keyed_max_bytes if keyed else self.public_max_bytes
        try:
            if declared is not None and declared > limit:
                raise _BodyTooLarge
            if declared:
                # Refused before any of it is read when it could not fit now. Only bytes
                # that arrived are counted: an announced length alone holds no memory.
                self.budget.check(hold.client, declared)
            async with asyncio.timeout(self.body_timeout_s):
                body = await self._read(receive, hold, limit)
        except _BodyTooLarge:
            message = f"the request body exceeds {limit} bytes"
            await refuse(send, 413, CODE, message, [_CLOSE])
            return
        except _OverBudget as over:
            await refuse(send, over.status, over.code, over.message, [_RETRY, _CLOSE])
            return
        except TimeoutError:
            await _timed_out(send)
            return
        finally:
            # The body, once read, is the app's; its bound is then max_in_flight bodies.
            hold.release()
        if body is None:
            return  # the client left while sending; there is no one to answer
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive, hold: _Hold, limit: int) -> bytes | None:
        """The whole body, counted as it arrives (a lying Content-Length or chunks alike)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _BodyTooLarge
            hold.take(len(chunk))
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def _timed_out(send: Send) -> None:
    # 408 and the connection closed (RFC 9110 §15.5.9), without a GraphQL body: there is
    # no error code for "the request never arrived" (none of ErrorCode's describes it),
    # and a client that stalled mid-upload is rarely reading; the status says it all.
    await send(
        {
            "type": "http.response.start",
            "status": 408,
            "headers": [(b"content-length", b"0"), _CLOSE],
        }
    )
    await send({"type": "http.response.body", "body": b""})


def _client_key(scope: Scope) -> str:
    # The client as the rate limit counts it: a configured client by its id, an anonymous
    # one by its address. The prefixes keep an id from ever naming an address.
    caller: Caller = scope.get("state", {}).get("caller", ANONYMOUS)
    if caller is not ANONYMOUS:
        return f"client:{caller.client_id}"
    peer = scope.get("client")
    return f"address:{address_key(peer[0] if peer else '')}"


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
