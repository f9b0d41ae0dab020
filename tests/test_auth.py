"""Authentication of contract §5: API keys, and 401 for a key that is not configured."""

from __future__ import annotations

import pytest

from tests.conftest import KEYS
from tests.servers import GraphQLClient

QUERY = "{ sources { department } }"


@pytest.mark.parametrize("header", ["Bearer not-a-key", "Bearer", "Basic dXNlcjpwYXNz", "key-bank"])
def test_unknown_or_malformed_credentials_are_refused(client: GraphQLClient, header: str) -> None:
    import httpx

    response = httpx.post(
        f"{client.base_url}/graphql", json={"query": QUERY}, headers={"Authorization": header}
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("role", sorted(KEYS))
def test_configured_keys_are_accepted(client: GraphQLClient, role: str) -> None:
    response = client.post(QUERY, key=KEYS[role])
    assert response.status_code == 200 and "errors" not in response.json()


def test_no_header_is_public(client: GraphQLClient) -> None:
    response = client.post(QUERY)
    assert response.status_code == 200 and "errors" not in response.json()
