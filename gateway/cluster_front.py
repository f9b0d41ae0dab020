"""The round-robin TCP front of `credit-gateway cluster`: one upstream per client connection.

Bytes are passed through untouched, so keep-alive, chunked answers and the websocket
upgrade of /graphql subscriptions work as they do against one replica. Each new client
connection goes to the next replica in turn; a replica that refuses the connection (it
was stopped or killed) is skipped for the next one. It is a stand-in for the load balancer
of docs/deployment.md ("Several replicas"), for demos and tests: it does not read HTTP, so
it adds no X-Forwarded-For and does not look at /readyz.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

# How long connecting to one replica may take before the next one is tried.
CONNECT_TIMEOUT_S = 2.0
CHUNK = 65536
# Written when no replica takes the connection: the client sees why rather than a reset.
NO_REPLICA = (
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 34\r\nConnection: close\r\n\r\nno gateway replica is listening.\r\n"
)


@dataclass(frozen=True, slots=True)
class Upstream:
    """One replica the front sends connections to; `number` counts from 1 as in the banner."""

    number: int
    host: str
    port: int

    def __str__(self) -> str:
        return f"replica {self.number} ({self.host}:{self.port})"


class RoundRobinFront:
    """`handle` is an asyncio.start_server callback: each connection to the next replica."""

    def __init__(
        self, upstreams: Sequence[Upstream], connect_timeout_s: float = CONNECT_TIMEOUT_S
    ) -> None:
        if not upstreams:
            raise ValueError("the front needs at least one replica")
        self.upstreams = tuple(upstreams)
        self._connect_timeout_s = connect_timeout_s
        self._turn = 0
        self._numbers = itertools.count(1)
        # Replicas found refusing: said once when they stop answering and once when back.
        self._down: set[int] = set()
        # The connections being relayed and their two ends, for close().
        self._tasks: set[asyncio.Task[None]] = set()
        self._ends: set[asyncio.StreamWriter] = set()

    async def handle(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        """Connect the client to a replica and pass bytes both ways until either side ends."""
        number = next(self._numbers)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._ends.add(client)
        peer = _peer(client)
        try:
            connected = await self._connect()
            if connected is None:
                log.warning("front: connection %d from %s: no replica is listening", number, peer)
                with contextlib.suppress(ConnectionError, OSError):
                    client.write(NO_REPLICA)
                    await client.drain()
                return
            upstream, upstream_reader, upstream_writer = connected
            self._ends.add(upstream_writer)
            log.debug("front: connection %d from %s -> %s", number, peer, upstream)
            try:
                await self._relay(client_reader, client, upstream_reader, upstream_writer)
            finally:
                self._ends.discard(upstream_writer)
        except asyncio.CancelledError:
            # The front is closing. Not raised on: asyncio would log a cancelled connection
            # callback as an error.
            pass
        finally:
            _close(client)
            self._ends.discard(client)
            if task is not None:
                self._tasks.discard(task)

    async def close(self, timeout_s: float = 2.0) -> None:
        """Cut the connections still open (the front's server is closed by its owner)."""
        for end in list(self._ends):
            _close(end)
        tasks = list(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    async def _connect(
        self,
    ) -> tuple[Upstream, asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The next replica in turn that accepts a connection; None when none does."""
        count = len(self.upstreams)
        first = self._turn
        self._turn = (self._turn + 1) % count
        for step in range(count):
            upstream = self.upstreams[(first + step) % count]
            try:
                async with asyncio.timeout(self._connect_timeout_s):
                    reader, writer = await asyncio.open_connection(upstream.host, upstream.port)
            except (OSError, TimeoutError) as exc:
                if upstream.number not in self._down:
                    self._down.add(upstream.number)
                    log.warning("front: %s refuses connections (%s); skipping it", upstream, exc)
                continue
            if upstream.number in self._down:
                self._down.discard(upstream.number)
                log.info("front: %s accepts connections again", upstream)
            return upstream, reader, writer
        return None

    async def _relay(
        self,
        client_reader: asyncio.StreamReader,
        client: asyncio.StreamWriter,
        upstream_reader: asyncio.StreamReader,
        upstream: asyncio.StreamWriter,
    ) -> None:
        # Client to replica may end first (a client that half-closes after its request
        # still gets the answer); once the replica's side ends, the connection is over.
        to_upstream = asyncio.create_task(_pump(client_reader, upstream))
        try:
            await _pump(upstream_reader, client)
        finally:
            to_upstream.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await to_upstream
            _close(upstream)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then pass the end on (half-close); errors end it quietly."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        return


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
