"""No full ID number in any log line: access log, gateway log, exceptions."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.masking import install_log_masking, mask_ids
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.cli import ROOT, write_config
from tests.conftest import audit_url
from tests.pii import full_id_numbers
from tests.sandbox_support import COMPANY_A, PERSON_1
from tests.servers import KEYS, GatewayServer, GraphQLClient, raw_get

# A line a client would like the log to show, as `serve` formats its own: it must never
# start a line of the log.
FORGED = "1999-01-01 00:00:00,000 INFO credit_gateway.access: 10.0.0.1 regulator-test"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _access_lines(collected: _Collect, count: int) -> list[str]:
    """The access log's lines once there are `count`: each is written after its answer is sent."""
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in collected.lines if line.startswith("credit_gateway.access")]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.01)


@pytest.fixture
def collected() -> Iterator[_Collect]:
    """Every line logged anywhere during the test, formatted as a handler would write it."""
    install_log_masking()
    handler = _Collect()
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    loggers = [logging.getLogger(), logging.getLogger("uvicorn.access")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    yield handler
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PERSON_1, PERSON_1[:6] + "*" * 8 + PERSON_1[-4:]),
        (f"GET /graphql?query=person(idNumber:%22{PERSON_1}%22)", PERSON_1[:6]),
        ("61080219800314123x", "610802********123x"),
        (COMPANY_A, COMPANY_A),  # a USCC is not personal information
        # Encoded twice and three times: one round of decoding leaves %22 glued to it.
        (f"query=person(idNumber:%2522{PERSON_1}%2522)", PERSON_1[:6] + "*" * 8),
        (f"query=person(idNumber:%252522{PERSON_1}%252522)", PERSON_1[:6] + "*" * 8),
        # Each digit encoded in its own way, and past the bound of decoding rounds.
        ("".join(f"%{ord(c):02X}" for c in PERSON_1), PERSON_1[:6] + "*" * 8),
        ("%" + "25" * 12 + "22" + PERSON_1, PERSON_1[:6] + "*" * 8),
        ("COURTS:xgl:1234567890123456789", "COURTS:xgl:1234567890123456789"),
    ],
)
def test_mask_ids(text: str, expected: str) -> None:
    masked = mask_ids(text)
    assert expected in masked
    assert full_id_numbers(masked) == []


def test_messages_arguments_and_exceptions_are_masked(collected: _Collect) -> None:
    log = logging.getLogger("credit_gateway.test")
    log.info("looked up %s for %s", PERSON_1, "bank-test")
    try:
        raise RuntimeError(f"GET /api/v1/persons/{PERSON_1}/positions failed")
    except RuntimeError:
        log.exception("upstream failed")
    text = "\n".join(collected.lines)
    assert "looked up 610802********" in text and "RuntimeError" in text
    assert PERSON_1 not in text


def test_a_person_query_by_get_leaves_no_id_in_the_access_log(
    collected: _Collect, gateway: GatewayServer, dataset: Dataset
) -> None:
    number = dataset.examples["person.restricted"]
    query = (
        f'{{ person(idNumber: "{number}", purpose: CREDIT_LOAN, authorizationRef: "LOAN-1") '
        "{ idNumberMasked } }"
    )
    response = httpx.get(
        f"{gateway.url}/graphql",
        params={"query": query},
        headers={"Authorization": f"Bearer {KEYS['bank']}"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.json()["data"]["person"]["idNumberMasked"] == number[:6] + "*" * 8 + number[-4:]
    access = _access_lines(collected, 1)
    # The gateway's own access line: the path without the query string, and who asked.
    assert len(access) == 1, access
    assert access[0].endswith(" ms") and '"GET /graphql" 200 ' in access[0], access[0]
    assert "bank-test" in access[0] and "?" not in access[0]
    assert all(number not in line for line in collected.lines)


def test_refused_calls_are_answers_not_logged_faults(
    collected: _Collect, client: GraphQLClient, dataset: Dataset
) -> None:
    number = dataset.examples["person.restricted"]
    query = f'{{ person(idNumber: "{number}", purpose: CREDIT_LOAN) {{ name }} }}'
    body = client.query(query, key=KEYS["bank"])
    assert body["errors"][0]["extensions"]["code"] == "AUTHORIZATION_REQUIRED"
    assert not [line for line in collected.lines if line.startswith("strawberry")]
    syntax = client.query(f'{{ person(idNumber: "{number}" }}', key=KEYS["bank"])
    assert syntax["errors"]
    # A malformed query quotes the number; should a line log it, the number is masked.
    assert all(number not in line for line in collected.lines)


def test_control_characters_never_break_a_record_into_lines(collected: _Collect) -> None:
    log = logging.getLogger("credit_gateway.test")
    log.info("argument %s", f"a\r\n{FORGED}\x1b[31m")
    log.info(f"message a\n{FORGED}\u2028{FORGED}")
    try:
        raise ValueError(f"bad input\n{FORGED}")
    except ValueError:
        log.exception("failed on %s", f"x\r\n{FORGED}")
    text = "\n".join(collected.lines)
    assert not [line for line in text.splitlines() if line.startswith(FORGED)], text
    assert "a\\r\\n" + FORGED + "\\x1b[31m" in text
    assert "\\u2028" in text
    # A traceback keeps its lines, each indented below the record's own.
    traceback = collected.lines[2].split("\n")
    assert traceback[0].startswith("credit_gateway.test failed on x\\r\\n")
    assert all(line.startswith("  ") for line in traceback[1:] if line), traceback
    assert "ValueError: bad input" in collected.lines[2]


def _attacks(number: str) -> list[str]:
    """Request targets that carry a forged line (CRLF) or a number hidden by encoding."""
    forged = FORGED.replace(" ", "%20")
    person = f"%7B%20person(idNumber:%20%2522{number}%2522,%20purpose:%20CREDIT_LOAN)%20%7D"
    hidden = f"%7B%20person(idNumber:%20%252522{number}%252522)%20%7D"
    return [
        f"/graphql?query=%7B%20measures%20%7B%20code%20%7D%20%7D%0D%0A{forged}",
        f"/graphql?query=%7Bmeasures%7D%0D%0A{forged}",  # quoted by a syntax error
        f"/graphql%0D%0A{forged}",  # in the path itself: a 404, logged all the same
        f"/graphql?query={person}",
        f"/graphql?query={hidden}",
        f"/graphql%2522{number}%2522",
    ]


def test_a_get_forges_no_log_line_and_leaves_no_encoded_id(
    collected: _Collect, gateway: GatewayServer
) -> None:
    for target in _attacks(PERSON_1):
        assert raw_get(gateway.url, target).startswith(b"HTTP/1.1 ")
    assert len(_access_lines(collected, len(_attacks(PERSON_1)))) == len(_attacks(PERSON_1))
    text = "\n".join(collected.lines)
    assert not [line for line in text.splitlines() if line.startswith(FORGED)], text
    # Not even glued to other digits, as a pattern for IDs standing alone would miss.
    assert PERSON_1 not in text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_serve_writes_no_forged_line_and_no_full_id_to_its_log(
    tmp_path: Path, sandbox: SandboxThread
) -> None:
    config = write_config(tmp_path / "gateway.toml", audit_url(), sandbox.urls)
    port = _free_port()
    command = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config)]
    process = subprocess.Popen(
        [*command, "--port", str(port)], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "serve did not start"
            try:
                if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        for target in _attacks(PERSON_1):
            assert raw_get(url, target).startswith(b"HTTP/1.1 ")
    finally:
        process.send_signal(signal.SIGINT)
        _, log = process.communicate(timeout=60)
    assert "credit_gateway.access" in log and '"GET /graphql" 200' in log, log
    # uvicorn's own access line, which carries the query string, is not written at all.
    assert "GET /graphql?" not in log, log
    assert not [line for line in log.splitlines() if line.startswith(FORGED)], log
    assert PERSON_1 not in log, log
