"""The machine's Redis for the [cache] tests: a key prefix of each test's own, and outages.

Redis is the machine's (127.0.0.1:6379, or CREDIT_GATEWAY_TEST_REDIS). Each test gets a key
prefix of its own, whose keys are deleted afterwards, so tests never see each other's
answers or budgets. Without a server the tests skip with the reason, except under
CI=true, where they fail: CI must run them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

SERVER = os.environ.get("CREDIT_GATEWAY_TEST_REDIS", "redis://127.0.0.1:6379/0")


@contextlib.contextmanager
def redis_prefix() -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted when the block ends."""
    import redis

    client = redis.Redis.from_url(SERVER, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        reason = f"no Redis at {SERVER}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the [cache] tests")
        pytest.skip(reason)
    prefix = f"cg-test-{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def redis_keys(prefix: str) -> list[str]:
    """The keys under a prefix now, sorted."""
    import redis

    with redis.Redis.from_url(SERVER, socket_timeout=3) as client:
        return sorted(k.decode() for k in client.scan_iter(match=f"{prefix}*", count=1000))


def cache_table(prefix: str, url: str = SERVER, **extra: Any) -> dict[str, Any]:
    """A [cache] table over the test Redis with the test's prefix."""
    return {"url": url, "key_prefix": prefix, **extra}


def closed_port() -> int:
    """A loopback port nothing listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TcpProxy:
    """A loopback TCP proxy to Redis that a test can make stop answering, or close.

    `pause()` holds every byte either way (Redis seems hung: operations time out), `resume()`
    lets them through again, `close()` refuses new connections and cuts the open ones.
    """

    def __init__(self, url: str = SERVER) -> None:
        host_port = url.removeprefix("redis://").split("/", 1)[0]
        host, port = host_port.rsplit(":", 1)
        self._target = (host, int(port))
        self._database = url.rsplit("/", 1)[1] if url.count("/") >= 3 else "0"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._closed = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="redis-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        """The Redis URL through the proxy."""
        return f"redis://127.0.0.1:{self.port}/{self._database}"

    def pause(self) -> None:
        """Stop passing bytes: every operation through the proxy hangs."""
        self._open.clear()

    def resume(self) -> None:
        """Pass bytes again."""
        self._open.set()

    def close(self) -> None:
        """Refuse connections and cut those open."""
        self._closed = True
        self._open.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
            self._sockets.clear()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=3)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, target), name="redis-proxy-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                while not self._open.wait(0.05):
                    if self._closed:
                        return
                if self._closed:
                    return
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
