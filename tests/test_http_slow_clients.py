"""Slow clients over raw sockets: deadlines for headers and bodies, bytes held per client and
in all; meanwhile the gateway answers everyone else."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from core.clock import Clock
from gateway.app import create_app
from sandbox.runner import SandboxThread
from tests.conftest import TODAY, gateway_config
from tests.servers import KEYS, GatewayServer

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.5
# Deadlines are asserted with this much room: the gateway's timers are not the subject.
SLACK_S = 2.0
CHEAP = "{ measures { code } }"


def _connect(url: str, address: str = "127.0.0.1") -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30, source_address=(address, 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _post_head(length: int, key: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (
        f"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        f"{auth}Content-Length: {length}\r\n\r\n"
    ).encode()


def _padded_body(size: int) -> bytes:
    """A valid GraphQL request of exactly `size` bytes (the padding is a key the view ignores)."""
    empty = json.dumps({"query": CHEAP, "padding": ""}).encode()
    return json.dumps({"query": CHEAP, "padding": "x" * (size - len(empty))}).encode()


def _until_closed(sock: socket.socket, within_s: float) -> bytes:
    """Everything the gateway sent until it closed the connection, which must be within_s."""
    deadline = time.monotonic() + within_s
    received = b""
    try:
        while True:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk
    except TimeoutError:
        pytest.fail(f"the connection was still open after {within_s} s; got {received[:80]!r}")
    except ConnectionResetError:
        return received  # closed with bytes of ours unread: as closed as it gets


def _wait_until(condition: Callable[[], Any], within_s: float = 15.0) -> Any:
    deadline = time.monotonic() + within_s
    while not (result := condition()):
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)
    return result


def _exchange(url: str, request: bytes, address: str = "127.0.0.1") -> tuple[int, Any]:
    """One whole request on a fresh connection: the status and the decoded JSON body."""
    with _connect(url, address) as sock:
        sock.sendall(request)
        answer = _read_answer(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body else None


def _read_answer(sock: socket.socket, timeout_s: float = 30) -> bytes:
    """One answer, read up to its Content-Length: a kept-alive connection stays open."""
    sock.settimeout(timeout_s)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _still_serving(url: str) -> None:
    assert httpx.get(f"{url}/healthz", timeout=10).json() == {"status": "ok"}
    answer = httpx.post(f"{url}/graphql", json={"query": CHEAP}, timeout=10)
    assert answer.status_code == 200 and answer.json()["data"]["measures"]


# --- deadlines ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hurried(sandbox: SandboxThread) -> Iterator[GatewayServer]:
    """A gateway with deadlines short enough to wait for: 1 s for headers, 1.5 s for bodies."""
    limits = {"header_timeout_s": HEADER_TIMEOUT_S, "body_timeout_s": BODY_TIMEOUT_S}
    app = create_app(gateway_config(sandbox.urls, limits=limits), Clock(TODAY))
    server = GatewayServer(app).start()
    yield server
    server.stop()


def test_partial_headers_and_silent_connections_are_closed_at_the_header_deadline(
    hurried: GatewayServer,
) -> None:
    partial = [_connect(hurried.url) for _ in range(20)]
    for sock in partial:
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Le")
    silent = _connect(hurried.url)
    try:
        _still_serving(hurried.url)
        for sock in [*partial, silent]:
            # Measured from when the connections opened: the deadline runs from there.
            assert _until_closed(sock, HEADER_TIMEOUT_S + SLACK_S) == b""
    finally:
        for sock in [*partial, silent]:
            sock.close()
    _still_serving(hurried.url)


def test_a_kept_alive_connection_has_a_header_deadline_for_each_request(
    hurried: GatewayServer,
) -> None:
    with _connect(hurried.url) as sock:
        for _ in range(2):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
            answer = _read_answer(sock)
            assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'{"status":"ok"}')
        # The next request's head, started and never finished.
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        assert _until_closed(sock, HEADER_TIMEOUT_S + SLACK_S) == b""


def test_stalled_bodies_are_answered_408_and_closed_at_the_body_deadline(
    hurried: GatewayServer,
) -> None:
    # Most of a declared 200 KB body, from clients at several addresses, then nothing.
    stalled = [_connect(hurried.url, f"127.0.1.{n % 10 + 1}") for n in range(30)]
    for sock in stalled:
        sock.sendall(_post_head(200_000) + b'{"query": "' + b" " * 150_000)
    try:
        _still_serving(hurried.url)
        for sock in stalled:
            received = _until_closed(sock, BODY_TIMEOUT_S + SLACK_S)
            assert received.startswith(b"HTTP/1.1 408 "), received[:80]
            assert b"connection: close" in received.lower()
    finally:
        for sock in stalled:
            sock.close()
    _still_serving(hurried.url)


def test_a_trickled_body_is_cut_at_the_deadline_for_the_whole_body(
    hurried: GatewayServer,
) -> None:
    with _connect(hurried.url) as sock:
        sock.sendall(_post_head(10_000) + b'{"query": "')
        deadline = time.monotonic() + BODY_TIMEOUT_S + SLACK_S
        # A byte every 0.2 s keeps every single read short; the body as a whole is not.
        sock.settimeout(0.2)
        received = b""
        while not received and time.monotonic() < deadline:
            try:
                received = sock.recv(65536)
            except TimeoutError:
                sock.sendall(b" ")
        assert received.startswith(b"HTTP/1.1 408 "), received[:80]


def test_a_body_in_time_is_served_under_the_deadlines(hurried: GatewayServer) -> None:
    body = _padded_body(50_000)
    with _connect(hurried.url) as sock:
        sock.sendall(_post_head(len(body)) + body[:25_000])
        time.sleep(BODY_TIMEOUT_S / 3)
        sock.sendall(body[25_000:])
        answer = _read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


# --- bytes held by bodies still arriving ---------------------------------------------------

CLIENT_BUDGET = 256 * 1024
TOTAL_BUDGET = 512 * 1024
HELD = 200 * 1024
# Declared beyond what is held: a body's announced length must itself fit the budget.
REST = 20 * 1024


@pytest.fixture(scope="module")
def budgeted(sandbox: SandboxThread) -> Iterator[GatewayServer]:
    """Budgets of 256 KiB per client and 512 KiB in all; bodies may take 30 s."""
    limits = {
        "max_client_buffered_bytes": CLIENT_BUDGET,
        "max_buffered_bytes": TOTAL_BUDGET,
        # The config refuses a client budget smaller than the largest body.
        "max_body_bytes": CLIENT_BUDGET,
        "body_timeout_s": 30.0,
    }
    app = create_app(gateway_config(sandbox.urls, limits=limits), Clock(TODAY))
    server = GatewayServer(app).start()
    yield server
    server.stop()


def _holding(url: str, address: str, key: str | None = None) -> socket.socket:
    """A connection that sent HELD bytes of its body, REST bytes short of the end, and stalls."""
    sock = _connect(url, address)
    sock.sendall(_post_head(HELD + REST, key) + b'{"query": "' + b" " * (HELD - 11))
    return sock


def _answer(url: str, address: str, size: int, key: str | None = None) -> tuple[int, Any]:
    return _exchange(url, _post_head(size, key) + _padded_body(size), address)


def _refused_unread(
    url: str, address: str, size: int, key: str | None = None
) -> tuple[int, Any] | None:
    """The refusal of a body announced and never sent, or None while the gateway waits for it.

    A probe that sends no body holds no bytes itself, so it cannot push a held body out of
    the budget while that body is still arriving.
    """
    with _connect(url, address) as sock:
        sock.sendall(_post_head(size, key))
        try:
            answer = _read_answer(sock, timeout_s=0.5)
        except TimeoutError:
            return None
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _codes(body: Any) -> list[str]:
    assert body["data"] is None, body
    return [e["extensions"]["code"] for e in body["errors"]]


def test_one_client_holding_its_budget_gets_429_and_others_are_served(
    budgeted: GatewayServer,
) -> None:
    url = budgeted.url
    held = _holding(url, "127.0.2.1")
    try:
        # 200 KiB held and 100 KB more would pass the client's 256 KiB.
        status, body = _wait_until(lambda: _refused_unread(url, "127.0.2.1", 100_000))
        assert status == 429 and _codes(body) == ["RATE_LIMITED"]
        assert "bytes" in body["errors"][0]["message"]
        # Small enough to fit beside it, and any other client: served.
        assert _answer(url, "127.0.2.1", 1_000)[0] == 200
        assert _answer(url, "127.0.2.2", 100_000)[0] == 200
    finally:
        held.close()
    # Released when the client gave up on the held body.
    assert _wait_until(lambda: _answer(url, "127.0.2.1", 100_000)[0] == 200)


def test_a_configured_client_is_one_client_from_any_address(budgeted: GatewayServer) -> None:
    url = budgeted.url
    held = _holding(url, "127.0.3.1", KEYS["partner"])
    try:
        status, body = _wait_until(
            lambda: _refused_unread(url, "127.0.3.2", 100_000, KEYS["partner"])
        )
        assert status == 429 and _codes(body) == ["RATE_LIMITED"]
        assert _answer(url, "127.0.3.2", 100_000, KEYS["bank"])[0] == 200
    finally:
        held.close()
    assert _wait_until(lambda: _answer(url, "127.0.3.2", 100_000, KEYS["partner"])[0] == 200)


def test_bodies_over_the_total_budget_get_503_until_held_ones_finish(
    budgeted: GatewayServer,
) -> None:
    url = budgeted.url
    first = _holding(url, "127.0.4.1")
    second = _holding(url, "127.0.4.2")
    try:
        # Both held bodies counted: each client is refused more than its budget leaves.
        for address in ("127.0.4.1", "127.0.4.2"):
            refused = _wait_until(lambda: _refused_unread(url, address, 100_000))  # noqa: B023
            assert refused[0] == 429
        # 400 KiB held in all: a third client's 200 KB would pass the 512 KiB.
        status, body = _wait_until(lambda: _refused_unread(url, "127.0.4.3", 200_000))
        assert status == 503 and _codes(body) == ["OVERLOADED"]
        # A small query still fits, and liveness is never held up.
        assert _answer(url, "127.0.4.3", 1_000)[0] == 200
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        # The held bodies arrive in full: served, and their bytes released.
        for sock in (first, second):
            sock.sendall(b" " * (REST - 2) + b'"}')
            answer = _read_answer(sock)
            assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    finally:
        first.close()
        second.close()
    assert _answer(url, "127.0.4.3", 200_000)[0] == 200
