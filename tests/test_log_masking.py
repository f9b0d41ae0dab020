"""No full ID number in any log line: access log, gateway log, exceptions."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from core.masking import install_log_masking, mask_ids
from sandbox.model import Dataset
from tests.pii import full_id_numbers
from tests.sandbox_support import COMPANY_A, PERSON_1
from tests.servers import KEYS, GatewayServer, GraphQLClient


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


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
    access = [line for line in collected.lines if line.startswith("uvicorn.access")]
    assert access, "the access log line was not emitted"
    assert all(number not in line for line in collected.lines)
    assert number[:6] + "********" in "\n".join(access)


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
    # A malformed query is logged, quoting the query: the number in it is masked.
    logged = "\n".join(line for line in collected.lines if line.startswith("strawberry"))
    assert number[:6] + "********" + number[-4:] in logged
    assert number not in logged
