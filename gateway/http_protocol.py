"""The HTTP/1.1 connection: uvicorn's h11 protocol with a deadline for each request's headers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

log = logging.getLogger("credit_gateway.http")


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol for every connection, closing one whose request headers are late."""

    # The deadline runs from the moment the connection opens, and again from the end of
    # each response on a kept-alive connection, until a request's headers are complete.
    # Set per server by header_deadline_protocol(): uvicorn builds protocols from the class.
    header_timeout_s: ClassVar[float] = 10.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._deadline: asyncio.TimerHandle | None = None
        # Whether any byte of the awaited request arrived: an idle connection closed at
        # the deadline is ordinary, a partial request is worth a log line.
        self._partial = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Called by asyncio for a new connection; uvicorn arms no timer until a response."""
        super().connection_made(transport)
        self._start_deadline()

    def data_received(self, data: bytes) -> None:
        """Called by asyncio with bytes from the client; uvicorn's keep-alive timer stops here."""
        if self._deadline is not None:
            self._partial = True
        super().data_received(data)

    def handle_events(self) -> None:
        """Called by uvicorn after data arrives; a new scope means a request's headers are in."""
        scope = self.scope
        super().handle_events()
        if self.scope is not scope:
            # From here the body deadline and the app's own limits take over (body_limit.py).
            self._stop_deadline()

    def on_response_complete(self) -> None:
        """Called by uvicorn after each response: the next request's headers start a deadline."""
        if not self.transport.is_closing():
            # Armed before uvicorn looks at pipelined bytes, which may stop it at once. The
            # rest of an unread body (a GET /healthz with a body) counts towards it too:
            # uvicorn discards it, but a client trickling it would hold the connection.
            self._start_deadline()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Called by asyncio when the connection closes, from either side."""
        self._stop_deadline()
        super().connection_lost(exc)

    def _start_deadline(self) -> None:
        self._stop_deadline()
        self._partial = False
        self._deadline = self.loop.call_later(self.header_timeout_s, self._deadline_passed)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._partial:
            peer = self.client[0] if self.client else "-"
            log.info(
                "closed a connection from %s: request headers not complete within %s s",
                peer,
                self.header_timeout_s,
            )
        # No answer: there is no request to answer, and HTTP lets a server close a
        # connection between requests at any time.
        self.transport.close()


def header_deadline_protocol(header_timeout_s: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class for one server's `[limits] header_timeout_s`; used by gateway.server."""
    return type(
        "HeaderDeadlineProtocol",
        (HeaderDeadlineProtocol,),
        {"header_timeout_s": header_timeout_s, "__module__": __name__},
    )
