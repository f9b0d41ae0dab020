"""GraphQL over HTTP media types: application/graphql-response+json for clients that ask."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.servers import GatewayServer

NEW = "application/graphql-response+json"
OLD = "application/json"
CHEAP = "{ measures { code } }"
SYNTAX_ERROR = "{ measures { code }"
VALIDATION_ERROR = "{ measures { noSuchField } }"
COERCION_ERROR = "query($c: [String!]!) { subjects(usccs: $c) { uscc } }"


def _post(
    gateway: GatewayServer, query: str, accept: str | None, variables: Any = None
) -> httpx.Response:
    headers = {"accept": accept} if accept is not None else {}
    body = {"query": query, "variables": variables}
    return httpx.post(f"{gateway.url}/graphql", json=body, headers=headers, timeout=30)


def test_a_client_accepting_the_new_type_gets_it(gateway: GatewayServer) -> None:
    response = _post(gateway, CHEAP, NEW)
    assert response.status_code == 200
    assert response.headers["content-type"] == NEW
    assert response.json()["data"]["measures"]
    # GET as well.
    got = httpx.get(
        f"{gateway.url}/graphql", params={"query": CHEAP}, headers={"accept": NEW}, timeout=30
    )
    assert got.status_code == 200 and got.headers["content-type"] == NEW


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param(SYNTAX_ERROR, None, id="syntax"),
        pytest.param(VALIDATION_ERROR, None, id="validation"),
        pytest.param(COERCION_ERROR, {"c": None}, id="variable-coercion"),
    ],
)
def test_a_request_error_is_400_without_data_in_the_new_type(
    gateway: GatewayServer, query: str, variables: Any
) -> None:
    response = _post(gateway, query, NEW, variables)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == NEW
    body = response.json()
    assert "data" not in body and body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param(SYNTAX_ERROR, None, id="syntax"),
        pytest.param(VALIDATION_ERROR, None, id="validation"),
        pytest.param(COERCION_ERROR, {"c": None}, id="variable-coercion"),
    ],
)
@pytest.mark.parametrize("accept", [OLD, None, "*/*", f"{NEW};q=0.5, {OLD}"])
def test_a_request_error_is_200_with_data_null_in_application_json(
    gateway: GatewayServer, query: str, variables: Any, accept: str | None
) -> None:
    # Clients that know only application/json read nothing but a 200's body: as before.
    response = _post(gateway, query, accept, variables)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == OLD
    body = response.json()
    assert body["data"] is None and body["errors"]


@pytest.mark.parametrize(
    "accept", [f"{NEW}, {OLD};q=0.9", f"{OLD}, {NEW}", f"{OLD};q=0.5, {NEW};q=0.8, */*;q=0.1"]
)
def test_the_new_type_wins_when_preferred_or_as_preferred(
    gateway: GatewayServer, accept: str
) -> None:
    response = _post(gateway, SYNTAX_ERROR, accept)
    assert response.status_code == 400 and response.headers["content-type"] == NEW


def test_a_field_error_is_still_200_in_the_new_type(gateway: GatewayServer) -> None:
    # The operation ran: its result has data, and the error says which field failed.
    response = _post(gateway, '{ subject(uscc: "not-a-code") { name } }', NEW)
    assert response.status_code == 200 and response.headers["content-type"] == NEW
    body = response.json()
    assert body["data"] == {"subject": None}
    assert body["errors"][0]["extensions"]["code"] == "INVALID_USCC"


def test_a_query_too_complex_is_a_request_error_in_the_new_type(gateway: GatewayServer) -> None:
    query = "{ " + " ".join(f"m{n}: measures {{ code }}" for n in range(21)) + " }"
    response = _post(gateway, query, NEW)
    assert response.status_code == 400 and response.headers["content-type"] == NEW
    assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert _post(gateway, query, OLD).status_code == 200
