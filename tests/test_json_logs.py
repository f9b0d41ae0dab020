"""JSON logs ([logging] format = "json"): masked objects, one a line; access fields; request ids."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.masking import install_log_masking
from gateway.logging_setup import JsonLineFormatter
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.cli import ROOT, write_config
from tests.conftest import PURPOSES, audit_url
from tests.pii import full_id_numbers
from tests.sandbox_support import PERSON_1
from tests.servers import KEYS, raw_get
from tests.test_metrics import TOUR_SUBJECT

MASKED = PERSON_1[:6] + "*" * 8 + PERSON_1[-4:]
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _clients_toml() -> str:
    tables = []
    for role, key in KEYS.items():
        digest = hashlib.sha256(key.encode()).hexdigest()
        purposes = ", ".join(f'"{p}"' for p in PURPOSES[role])
        tables.append(
            f'[[clients]]\nid = "{role}-test"\nrole = "{role}"\n'
            f'key_sha256 = "{digest}"\npurposes = [{purposes}]\n'
        )
    return "\n".join(tables)


class JsonServe:
    """`credit-gateway serve` as an operator runs it, with `[logging] format = "json"`."""

    def __init__(self, config: Path) -> None:
        port = _free_port()
        command = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config)]
        self.process = subprocess.Popen(
            [*command, "--port", str(port)], cwd=ROOT, stderr=subprocess.PIPE, text=True
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None and time.monotonic() < deadline, "no start"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)

    def stop(self) -> list[str]:
        """Stops it as Ctrl-C does; its stderr, line by line."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        _, log = self.process.communicate(timeout=60)
        return log.splitlines()


@pytest.fixture
def json_serve(tmp_path: Path, sandbox: SandboxThread) -> Iterator[JsonServe]:
    """The gateway over the sandbox with JSON logs and the test clients; stopped after."""
    extra = '[logging]\nformat = "json"\n\n[limits]\nrate_per_s = 1000\nburst = 1000\n\n'
    path = tmp_path / "gateway.toml"
    served = JsonServe(write_config(path, audit_url(), sandbox.urls, extra + _clients_toml()))
    yield served
    served.stop()


def _records(lines: list[str]) -> list[dict[str, Any]]:
    # Every line is one JSON object, or json.loads fails the test.
    return [json.loads(line) for line in lines if line.strip()]


def test_serve_writes_one_masked_json_object_a_line(
    json_serve: JsonServe, dataset: Dataset
) -> None:
    url = json_serve.url
    uscc = dataset.examples["clean.plain"]
    answered = httpx.post(
        f"{url}/graphql",
        json={"query": TOUR_SUBJECT, "variables": {"uscc": uscc}},
        headers={"Authorization": f"Bearer {KEYS['partner']}", "X-Request-Id": "lb-7f3a.19_x"},
        timeout=30,
    )
    assert answered.status_code == 200 and answered.json()["data"]["subject"]
    # A proxy's plain id is kept and answered back; one shaped otherwise is replaced.
    assert answered.headers["x-request-id"] == "lb-7f3a.19_x"
    odd = httpx.get(f"{url}/healthz", headers={"X-Request-Id": f"id-{PERSON_1}"}, timeout=10)
    assert GENERATED_ID.fullmatch(odd.headers["x-request-id"])
    # A path quoting a full ID number (encoded twice, glued to quotes): a 404, logged.
    assert raw_get(url, f"/graphql%2522{PERSON_1}%2522").startswith(b"HTTP/1.1 404")
    lines = json_serve.stop()
    records = _records(lines)
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    # uvicorn's own lines are JSON objects too.
    assert any(r["logger"].startswith("uvicorn") for r in records), records
    access = [r for r in records if r["logger"] == "credit_gateway.access"]
    [query] = [r for r in access if r["request_id"] == "lb-7f3a.19_x"]
    fields = ("client_id", "operation", "outcome", "method", "path", "status")
    assert {k: query[k] for k in fields} == {
        "client_id": "partner-test",
        "operation": "TourSubject",
        "outcome": "ok",
        "method": "POST",
        "path": "/graphql",
        "status": 200,
    }
    assert isinstance(query["duration_ms"], int) and query["time"].endswith("+00:00")
    [health] = [r for r in access if r["request_id"] == odd.headers["x-request-id"]]
    assert health["path"] == "/healthz" and health["client_id"] == "anonymous"
    [refused] = [r for r in access if r["status"] == 404]
    assert MASKED in refused["path"] and MASKED in refused["message"]
    text = "\n".join(lines)
    assert PERSON_1 not in text and full_id_numbers(text) == []


def test_a_traceback_in_json_is_the_masked_one(dataset: Dataset) -> None:
    install_log_masking()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    log = logging.getLogger("credit_gateway.test_json")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise RuntimeError(f"GET /api/v1/persons/{PERSON_1}/positions failed")
        except RuntimeError:
            log.exception("upstream failed for %s", PERSON_1, extra={"note": f"for {PERSON_1}"})
    finally:
        log.removeHandler(handler)
        log.propagate = True
    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == f"upstream failed for {MASKED}"
    assert MASKED in record["exc_info"] and "RuntimeError" in record["exc_info"]
    # An extra field no record factory sees is masked with the whole line.
    assert record["note"] == f"for {MASKED}"
    assert PERSON_1 not in line
