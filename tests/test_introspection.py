"""Introspection per role ([http] introspection_roles), over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import graphql
import pytest

from core.clock import Clock
from core.roles import Role
from gateway.app import create_app
from gateway.config_operations import HttpConfig
from sandbox.runner import SandboxThread
from tests.conftest import TODAY, gateway_config
from tests.servers import KEYS, GatewayServer, GraphQLClient

# GraphiQL's own schema query: graphql-js getIntrospectionQuery() with its defaults, which
# graphql-core prints alike, under the operation name GraphiQL sends.
GRAPHIQL_INTROSPECTION = graphql.get_introspection_query(descriptions=True)
INTROSPECTING = {
    "__schema": "{ __schema { queryType { name } } }",
    "__type": '{ __type(name: "Subject") { name } }',
    "_service": "{ _service { sdl } }",
    "nested __type": '{ subject(uscc: "x") { uscc } __type(name: "Query") { name } }',
}


@pytest.fixture(scope="module")
def limited(sandbox: SandboxThread) -> Iterator[GatewayServer]:
    """A gateway where only banks and regulators may introspect."""
    http = HttpConfig(introspection_roles=(Role.BANK, Role.REGULATOR))
    config = replace(gateway_config(sandbox.urls), http=http)
    server = GatewayServer(create_app(config, Clock(TODAY))).start()
    yield server
    server.stop()


def _ask(server: GatewayServer, role: str | None, query: str, **kw: Any) -> Any:
    key = KEYS[role] if role else None
    return GraphQLClient(server.url, key).query(query, key=key, **kw)


@pytest.mark.parametrize("query", INTROSPECTING.values(), ids=INTROSPECTING.keys())
@pytest.mark.parametrize("role", [None, "partner"])
def test_roles_not_listed_are_refused_introspection(
    limited: GatewayServer, role: str | None, query: str
) -> None:
    body = _ask(limited, role, query)
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert "(introspection) is not allowed for this caller's role" in body["errors"][0]["message"]


@pytest.mark.parametrize("role", [None, "partner"])
def test_typename_and_queries_stay_allowed(limited: GatewayServer, role: str | None) -> None:
    assert _ask(limited, role, "{ __typename }") == {"data": {"__typename": "Query"}}
    body = _ask(limited, role, "{ measures { code } }")
    assert "errors" not in body and body["data"]["measures"]


@pytest.mark.parametrize("role", ["bank", "regulator"])
def test_listed_roles_get_graphiqls_introspection(limited: GatewayServer, role: str) -> None:
    body = _ask(limited, role, GRAPHIQL_INTROSPECTION)
    assert "errors" not in body
    # What GraphiQL builds its docs and completion from.
    schema = graphql.build_client_schema(body["data"])
    assert "subject" in schema.query_type.fields  # type: ignore[union-attr]
    for query in INTROSPECTING.values():
        assert "errors" not in _ask(limited, role, query.replace('subject(uscc: "x") { uscc }', ""))


def test_the_validation_cache_keeps_roles_apart(limited: GatewayServer) -> None:
    # The same small (cached) document, valid for one role and refused for another, in
    # both orders: a cached verdict never crosses from one role to the other.
    query = "{ __schema { mutationType { name } } }"
    for role, allowed in [("bank", True), (None, False), ("bank", True), ("partner", False)]:
        body = _ask(limited, role, query)
        assert ("errors" not in body) is allowed, (role, body)


def test_every_role_may_introspect_by_default(gateway: GatewayServer) -> None:
    for role in (None, "partner", "bank", "regulator"):
        body = _ask(gateway, role, GRAPHIQL_INTROSPECTION)
        assert "errors" not in body and body["data"]["__schema"]["queryType"]["name"] == "Query"
