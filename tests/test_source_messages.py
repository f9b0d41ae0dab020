"""What clients read about a failing department: our own fixed texts, never its words."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.clock import Clock
from gateway.app import create_app
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.conftest import TODAY, gateway_config
from tests.servers import KEYS, GatewayServer, GraphQLClient

LEAKED_ID = "610802198001010021"
LEAKED_PATH = "/srv/market/app/query.py"
# market.md: status "0" is a business error and `msg` says why, in the department's words.
BUSINESS_ERROR = {
    "status": "0",
    "msg": f"查询失败: 证件号 {LEAKED_ID} 不一致 ({LEAKED_PATH}:42)",
    "data": None,
}
SUBJECT = """query($uscc: String!) { subject(uscc: $uscc) {
  jointPunishment { status missingSources } sources { department state message } } }"""


class _Talkative(BaseHTTPRequestHandler):
    """A market system that answers every call with a business error quoting internals."""

    def _answer(self) -> None:
        body = json.dumps(BUSINESS_ERROR, ensure_ascii=False).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        """Every GET (single lookups, probes)."""
        self._answer()

    def do_POST(self) -> None:
        """Every POST (batch lookups)."""
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    def log_message(self, *_: Any) -> None:
        """Quiet."""


@pytest.fixture
def talkative_market() -> Iterator[str]:
    """The URL of a market stand-in whose every answer is a business error with internals."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Talkative)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def client(sandbox: SandboxThread, talkative_market: str) -> Iterator[GraphQLClient]:
    """A gateway whose market is the talkative one; the other departments are the sandbox's."""
    urls = {**sandbox.urls, "market": talkative_market}
    server = GatewayServer(create_app(gateway_config(urls), Clock(TODAY))).start()
    yield GraphQLClient(server.url, key=KEYS["bank"])
    server.stop()


def _leaks(text: str) -> list[str]:
    return [s for s in (LEAKED_ID, LEAKED_PATH, "查询失败", "不一致") if s in text]


def test_a_subjects_sources_never_quote_the_department(
    client: GraphQLClient, dataset: Dataset
) -> None:
    response = client.post(SUBJECT, {"uscc": dataset.examples["clean.plain"]}, scan=False)
    assert _leaks(response.text) == []
    subject = response.json()["data"]["subject"]
    market = next(s for s in subject["sources"] if s["department"] == "MARKET")
    assert market == {
        "department": "MARKET",
        "state": "UNAVAILABLE",
        "message": "BAD_PAYLOAD: the department's answer could not be read",
    }
    assert subject["jointPunishment"] == {"status": "INCOMPLETE", "missingSources": ["MARKET"]}


@pytest.mark.parametrize("role", ["bank", "regulator", None])
def test_the_sources_query_never_quotes_the_department(
    client: GraphQLClient, role: str | None
) -> None:
    key = KEYS[role] if role else None
    response = client.post("{ sources { department state message } }", key=key, scan=False)
    assert _leaks(response.text) == []
    market = next(s for s in response.json()["data"]["sources"] if s["department"] == "MARKET")
    assert market["state"] == "UNAVAILABLE"
    assert market["message"] == "the department's answer could not be read"
