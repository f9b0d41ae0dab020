"""The gateway served by uvicorn on a free loopback port, in a thread, for tests and benchmarks."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from gateway.server import uvicorn_config
from tests.pii import full_id_numbers

# Test API keys by role; only the regulator may ever see a full ID number (contract §1).
KEYS = {"partner": "key-partner", "bank": "key-bank", "regulator": "key-regulator"}


class GatewayServer:
    """Starts the app like `credit-gateway serve` does and stops it again."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1") -> None:
        # The configuration `serve` and `demo` use (gateway/server.py), on a free port.
        self._server = uvicorn.Server(uvicorn_config(app, host=host, port=0, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, name="gateway", daemon=True)
        self.url = ""

    def start(self, timeout_s: float = 30.0) -> GatewayServer:
        """Blocks until the gateway listens (its lifespan, incl. the first water sync, is done)."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        """Asks uvicorn to exit and waits for the lifespan to close the adapters."""
        self._server.should_exit = True
        self._thread.join(timeout=30)


class GraphQLClient:
    """Posts GraphQL over real HTTP, as an external client would."""

    def __init__(self, base_url: str, key: str | None = None) -> None:
        self.base_url = base_url
        self.key = key

    def post(
        self,
        query: str,
        variables: dict[str, object] | None = None,
        key: str | None = None,
        timeout_s: float = 60.0,
        scan: bool | None = None,
    ) -> httpx.Response:
        """The raw response; a non-regulator's (or, with scan=True, any) is scanned for IDs."""
        headers = {}
        key = key or self.key
        if key:
            headers["Authorization"] = f"Bearer {key}"
        response = httpx.post(
            f"{self.base_url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers=headers,
            timeout=timeout_s,
        )
        if key != KEYS["regulator"] if scan is None else scan:
            # Every non-regulator answer of every test is scanned: a leak fails the test.
            leaked = full_id_numbers(response.text)
            assert not leaked, f"full ID numbers in a non-regulator response: {leaked}"
        return response

    def query(self, query: str, variables: dict[str, object] | None = None, **kw: Any) -> Any:
        """The decoded JSON body (data and errors)."""
        return self.post(query, variables, **kw).json()


def raw_get(url: str, target: str) -> bytes:
    """The answer to a GET of target exactly as written (no client re-encodes it)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n".encode()
        )
        return b"".join(iter(lambda: sock.recv(65536), b""))
