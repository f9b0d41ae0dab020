"""The response scan every test relies on, and error messages that would echo an ID."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from sandbox.model import Dataset
from tests.pii import full_id_numbers
from tests.sandbox_support import COMPANY_A, PERSON_1, make_id
from tests.servers import KEYS, GraphQLClient

# A valid ID whose check character is X, and PERSON_1 with a wrong check digit.
ENDS_IN_X = make_id("610802", date(1990, 1, 1), "019")
WRONG_CHECK = PERSON_1[:-1] + ("0" if PERSON_1[-1] != "0" else "1")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (f'{{"idNumber": "{PERSON_1}"}}', [PERSON_1]),
        (ENDS_IN_X.lower(), [ENDS_IN_X.lower()]),
        (PERSON_1[:6] + "********" + PERSON_1[-4:], []),
        (COMPANY_A, []),
        (WRONG_CHECK, []),
    ],
)
def test_the_scan_finds_full_ids_only(text: str, found: list[str]) -> None:
    assert full_id_numbers(text) == found


def test_the_client_fails_a_test_on_a_leak(client: GraphQLClient, dataset: Dataset) -> None:
    number = dataset.examples["person.restricted"]
    query = f'{{ person(idNumber: "{number}", purpose: SUPERVISION) {{ idNumber }} }}'
    # The regulator sees the full number; the same body sent to a bank would fail the test.
    body = client.post(query, key=KEYS["regulator"])
    assert body.json()["data"]["person"]["idNumber"] == number
    with pytest.raises(AssertionError, match="full ID numbers"):
        client.post(query, key=KEYS["regulator"], scan=True)


@pytest.mark.parametrize("role", ["bank", "partner", None])
def test_an_error_quoting_the_input_is_masked(
    client: GraphQLClient, dataset: Dataset, role: str | None
) -> None:
    number = dataset.examples["person.restricted"]
    # An unquoted number is no String: graphql-core's message repeats the literal.
    query = f"{{ person(idNumber: {number}, purpose: CREDIT_LOAN) {{ name }} }}"
    response = httpx.post(
        f"{client.base_url}/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {KEYS[role]}"} if role else {},
        timeout=30,
    )
    assert response.json()["errors"]
    assert number not in response.text
    assert number[:6] + "********" + number[-4:] in response.text
