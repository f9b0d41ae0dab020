"""Malformed requests over real HTTP: each is a 400 with a GraphQL error body, never a 500."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from core.clock import Clock
from gateway.app import create_app
from sandbox.runner import SandboxThread
from tests.conftest import TODAY, gateway_config
from tests.servers import GatewayServer, GraphQLClient

CHEAP = "{ measures { code } }"
JSON = {"content-type": "application/json"}


def _refused(response: httpx.Response, status: int = 400, code: str = "INVALID_ARGUMENT") -> str:
    """The refusal's message, once it is the documented GraphQL error body."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["data"] is None, body
    assert [e["extensions"]["code"] for e in body["errors"]] == [code], body
    message: str = body["errors"][0]["message"]
    assert "Traceback" not in message and "File " not in message
    return message


@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param(b'{"query": "{ measures { code } }\xff"}', "UTF-8", id="invalid-utf8"),
        pytest.param('{"query": "{ 名称 }"}'.encode("gbk"), "UTF-8", id="gbk"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "JSON", id="array-100k-deep"),
        pytest.param(
            b'{"query": "{ x }", "variables": {"v": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001,
            "JSON",
            id="object-100k-deep",
        ),
        pytest.param(b'"{ measures { code } }"', "JSON object", id="top-level-string"),
        pytest.param(b"9" * 5000, "JSON", id="top-level-5000-digits"),
        pytest.param(
            b'{"query": "{ x }", "variables": {"n": ' + b"9" * 5000 + b"}}",
            "JSON",
            id="variable-5000-digits",
        ),
        pytest.param(b"null", "JSON object", id="null"),
        pytest.param(b"", "JSON", id="empty"),
        pytest.param(b'{"query": "{ x }"', "JSON", id="truncated"),
        pytest.param(b'{"query": NaN}', "JSON", id="nan"),
        pytest.param(b'[{"query": "{ measures { code } }"}]', "batch", id="batch-array"),
        pytest.param(b"[]", "batch", id="empty-batch"),
        pytest.param(b'{"query": 5}', "`query`", id="query-number"),
        pytest.param(b"{}", "`query`", id="no-query"),
        pytest.param(b'{"query": null}', "`query`", id="query-null"),
        pytest.param(b'{"query": "{ x }", "variables": "str"}', "`variables`", id="variables-str"),
        pytest.param(b'{"query": "{ x }", "variables": [1]}', "`variables`", id="variables-list"),
        pytest.param(b'{"query": "{ x }", "extensions": 1}', "`extensions`", id="extensions-num"),
        pytest.param(b'{"query": "{ x }", "operationName": 5}', "`operationName`", id="opname"),
        # A lone surrogate escape read by the standard library, nested past its stack.
        pytest.param(
            b'{"query": "\\ud800", "v": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "JSON",
            id="surrogate-and-deep",
        ),
    ],
)
def test_a_malformed_body_is_400_with_a_graphql_error(
    client_url: str, body: bytes, says: str
) -> None:
    response = httpx.post(f"{client_url}/graphql", content=body, headers=JSON, timeout=30)
    assert says in _refused(response)


@pytest.fixture
def client_url(gateway: GatewayServer) -> str:
    """The session gateway's address."""
    return gateway.url


def test_a_body_that_is_not_json_by_its_content_type_is_415(client_url: str) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"content-type": content_type} if content_type else {}
        response = httpx.post(
            f"{client_url}/graphql",
            content=b'{"query": "{ measures { code } }"}',
            headers=headers,
            timeout=30,
        )
        assert "application/json" in _refused(response, status=415)


def test_get_parameters_are_checked_like_a_body(client_url: str) -> None:
    url = f"{client_url}/graphql"
    bad_json = httpx.get(url, params={"query": CHEAP, "variables": "{nope"}, timeout=30)
    assert "JSON" in _refused(bad_json)
    not_object = httpx.get(url, params={"query": CHEAP, "variables": "[1]"}, timeout=30)
    assert "`variables`" in _refused(not_object)
    # 1100 levels, past orjson's 1024, and still short enough for a query string.
    deep = httpx.get(url, params={"query": CHEAP, "variables": "[" * 1100 + "]" * 1100})
    assert "JSON" in _refused(deep)
    # An empty parameter is no parameter, as a form sends it.
    served = httpx.get(url, params={"query": CHEAP, "variables": ""}, timeout=30)
    assert served.status_code == 200 and served.json()["data"]["measures"]


def test_well_formed_requests_are_still_served(client_url: str) -> None:
    url = f"{client_url}/graphql"
    plain = {"query": CHEAP, "variables": None, "operationName": None, "extensions": None}
    for body in (plain, {"query": CHEAP}, {"query": CHEAP, "variables": {}, "extensions": {}}):
        response = httpx.post(url, json=body, timeout=30)
        assert response.status_code == 200 and response.json()["data"]["measures"], body
    # A charset parameter, and a BOM-less UTF-8 body with Chinese text in it.
    utf8 = '{"query": "{ measures { code } } # 名称"}'.encode()
    headers = {"content-type": "application/json; charset=utf-8"}
    response = httpx.post(url, content=utf8, headers=headers, timeout=30)
    assert response.status_code == 200 and response.json()["data"]["measures"]


def test_random_bytes_never_reach_a_500(client_url: str) -> None:
    # Mutations of a good body: whatever they turn into, the answer is 200 or 400.
    good = b'{"query": "query($c: [String!]!) { subjects(usccs: $c) { uscc } }", '
    good += b'"variables": {"c": ["91110000MA01B2C34B"]}, "operationName": null}'
    rng = random.Random(20260520)
    statuses = set()
    with httpx.Client(timeout=30) as http:
        for _ in range(150):
            body = bytearray(good)
            for _ in range(rng.randint(1, 6)):
                position = rng.randrange(len(body))
                body[position : position + rng.randint(0, 3)] = rng.randbytes(rng.randint(0, 3))
            response = http.post(f"{client_url}/graphql", content=bytes(body), headers=JSON)
            statuses.add(response.status_code)
            assert response.status_code in (200, 400), (bytes(body), response.text[:300])
            assert response.headers["content-type"] == "application/json"
    assert 400 in statuses


# --- the last resort -------------------------------------------------------------------


class _Failure(RuntimeError):
    """An exception no part of the gateway expects."""


async def _fail(request: Request) -> Response:
    raise _Failure("secret detail of the failure")


@pytest.fixture(scope="module")
def failing(sandbox: SandboxThread) -> Iterator[GatewayServer]:
    """The gateway with one more route, whose handler raises, behind all the middleware."""
    app = create_app(gateway_config(sandbox.urls), Clock(TODAY))
    app.add_route("/fail", _fail, methods=["POST"])
    server = GatewayServer(app).start()
    yield server
    server.stop()


def test_an_unexpected_exception_is_a_500_graphql_error_and_logged(
    failing: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = httpx.post(f"{failing.url}/fail", json={"query": CHEAP}, timeout=30)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body == {"data": None, "errors": [{"message": "Internal error."}]}
    assert "secret" not in response.text
    # The cause is in the server's log, with its traceback.
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is _Failure]
    assert logged and "POST /fail" in logged[0].getMessage()
    # The next request on the gateway is answered as ever.
    after = httpx.post(f"{failing.url}/graphql", json={"query": CHEAP}, timeout=30)
    assert after.status_code == 200


def test_an_operation_name_with_a_lone_surrogate_is_answered_not_a_500(
    client: GraphQLClient,
) -> None:
    # Strawberry's refusal quotes the operation name; a lone surrogate in it made the
    # refusal itself fail (orjson cannot encode it) and answered 500.
    body = '{"query": "query A { sources { state } }", "operationName": "\\ud800"}'
    response = httpx.post(
        f"{client.base_url}/graphql",
        content=body.encode("ascii"),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"
