"""Request limits over real HTTP: query complexity, body size, rate per client, load shedding."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query
from stdnum.iso7064 import mod_11_2

from core.clock import Clock
from gateway.app import create_app
from gateway.config import GraphiQLConfig
from gateway.graphql_view import GatewayGraphQL
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from schema import build_schema
from schema.query_cache import SmallDocumentValidationCache
from tests.conftest import TODAY, gateway_config
from tests.servers import KEYS, GatewayServer, GraphQLClient

# The README tour's deepest path: person → representedSubjects → subject → jointPunishment
# → measures → measure → code, seven fields.
DEEP = """
query($id: String!) {
  person(idNumber: $id, purpose: CREDIT_LOAN, authorizationRef: "LOAN-2026-0042") {
    idNumberMasked
    representedSubjects { uscc role subject { name
      jointPunishment(scenario: CREDIT_LOAN) { status measures { measure { code } } } } }
  }
}"""
# The same path one field shorter: six fields.
SIX_DEEP = DEEP.replace("measures { measure { code } }", "measures { triggeredBy }")
TOUR_SUBJECT = """
query($uscc: String!) {
  subject(uscc: $uscc) {
    uscc name region { code name }
    registration { entityType status registeredCapitalWan establishedOn authority }
    legalRepresentative { name idNumberMasked }
    records { id department kind level title listedOn endsOn active disputed }
    taxCredit { grade year }
    waterCredit { grade validUntil cancelled }
    sources { department state asOf message }
    jointPunishment(scenario: CREDIT_LOAN) {
      status complete missingSources
      listings { id kind title listedOn }
      measures { measure { code name legalBasis } triggeredBy }
      incentives { measure { code name } triggeredBy }
    }
    supervision { creditClass spotCheckRatio basis }
  }
}"""
CHEAP = "{ measures { code } }"


def _refused(body: Any, code: str) -> None:
    assert body["data"] is None, body
    assert [e["extensions"]["code"] for e in body["errors"]] == [code], body["errors"]


def _aliases(count: int) -> str:
    return "{ " + " ".join(f"m{n}: measures {{ code }}" for n in range(count)) + " }"


@pytest.fixture(scope="module")
def strict(sandbox: SandboxThread) -> Iterator[GraphQLClient]:
    """A gateway with small complexity limits, so that valid queries reach them."""
    # max_field_repeats lifted: the token test fills its query with one repeated field.
    limits = {"max_depth": 6, "max_aliases": 2, "max_tokens": 100, "max_field_repeats": 200}
    app = create_app(gateway_config(sandbox.urls, limits=limits), Clock(TODAY))
    server = GatewayServer(app).start()
    yield GraphQLClient(server.url)
    server.stop()


# --- query complexity ------------------------------------------------------------------


def test_readme_tour_queries_pass_the_default_limits(
    client: GraphQLClient, dataset: Dataset
) -> None:
    person = client.query(DEEP, {"id": dataset.examples["person.relocation"]}, key=KEYS["bank"])
    assert "errors" not in person, person["errors"]
    represented = person["data"]["person"]["representedSubjects"]
    assert any(r["subject"]["jointPunishment"]["measures"] for r in represented if r["subject"])
    uscc = dataset.examples["stitched.all_departments"]
    subject = client.query(TOUR_SUBJECT, {"uscc": uscc})
    assert "errors" not in subject, subject["errors"]
    assert subject["data"]["subject"]["uscc"] == uscc


def test_graphiql_introspection_passes_the_default_limits(client: GraphQLClient) -> None:
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    body = client.query(query)
    assert "errors" not in body, body["errors"]
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


def test_too_deep_is_query_too_complex(strict: GraphQLClient, dataset: Dataset) -> None:
    variables = {"id": dataset.examples["person.relocation"]}
    passed = strict.query(SIX_DEEP, variables, key=KEYS["bank"])
    assert "errors" not in passed and passed["data"]["person"]
    _refused(strict.query(DEEP, variables, key=KEYS["bank"]), "QUERY_TOO_COMPLEX")
    # Fragments are measured where they are spread.
    fragment = "query($id: String!) { ...P }\nfragment P on Query " + DEEP.split("$id: String!)")[1]
    _refused(strict.query(fragment, variables, key=KEYS["bank"]), "QUERY_TOO_COMPLEX")


def test_too_many_aliases_is_query_too_complex(strict: GraphQLClient) -> None:
    passed = strict.query(_aliases(2))
    assert "errors" not in passed and passed["data"]["m1"]
    _refused(strict.query(_aliases(3)), "QUERY_TOO_COMPLEX")


def test_too_many_tokens_is_query_too_complex(strict: GraphQLClient) -> None:
    passed = strict.query("{ measures { " + "code " * 90 + "} }")
    assert "errors" not in passed and passed["data"]["measures"]
    _refused(strict.query("{ measures { " + "code " * 100 + "} }"), "QUERY_TOO_COMPLEX")
    # Comments cost memory too, and count.
    _refused(strict.query("{ measures { code " + "#\n" * 100 + "} }"), "QUERY_TOO_COMPLEX")


def test_default_limits_refuse_aliases_and_nested_introspection(client: GraphQLClient) -> None:
    assert "errors" not in client.query(_aliases(20))
    _refused(client.query(_aliases(21)), "QUERY_TOO_COMPLEX")
    nested = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    _refused(client.query(nested), "QUERY_TOO_COMPLEX")
    _refused(client.query("{ measures { " + "code " * 2000 + "} }"), "QUERY_TOO_COMPLEX")


def test_a_repeated_query_is_validated_once(client: GraphQLClient) -> None:
    # The same (shared, module-level) LRU the gateway's validation step goes through.
    cache_info = SmallDocumentValidationCache().cached_validate_document.cache_info
    query = "{ measures(scenario: HONORS) { code kind } }"
    first = client.query(query)
    before = cache_info()
    second = client.query(query)
    after = cache_info()
    assert first == second and "errors" not in second
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)


def test_a_syntax_error_quoting_an_id_number_is_still_masked(client: GraphQLClient) -> None:
    # A valid ID number without a final X, which the lexer reads as one Int and quotes.
    bodies = (f"61080219900101{serial:03d}" for serial in range(1000))
    id_number = next(b + d for b in bodies if (d := mod_11_2.calc_check_digit(b)) != "X")
    # GraphQLClient fails the test if a full ID number is anywhere in the response.
    body = client.query("{ " + id_number + " }")
    assert "610802********" in body["errors"][0]["message"]


# --- request size ------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413(gateway: GatewayServer) -> None:
    padding = b" " * (1024 * 1024)
    response = httpx.post(
        f"{gateway.url}/graphql",
        content=b'{"query": "{ measures { code } }' + padding + b'"}',
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    _refused(response.json(), "REQUEST_TOO_LARGE")


def test_a_body_just_under_the_limit_is_served(gateway: GatewayServer) -> None:
    padding = b" " * (1024 * 1024 - 64)
    response = httpx.post(
        f"{gateway.url}/graphql",
        content=b'{"query": "{ measures { code } }' + padding + b'"}',
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200 and response.json()["data"]["measures"]


def test_a_chunked_body_that_never_ends_is_413(gateway: GatewayServer) -> None:
    def endless() -> Iterator[bytes]:
        yield b'{"query": "'
        while True:
            yield b" " * 65536

    # Had the gateway read the whole stream, this request would never be answered.
    response = httpx.post(
        f"{gateway.url}/graphql",
        content=endless(),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    _refused(response.json(), "REQUEST_TOO_LARGE")


def test_a_declared_length_over_the_limit_is_refused_before_the_body(
    gateway: GatewayServer,
) -> None:
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        # 2 MiB announced, a few bytes sent: the answer must not wait for the rest.
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2097152\r\n\r\n{}"
        )
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b'"REQUEST_TOO_LARGE"' in body


def test_an_overlong_query_string_is_414(gateway: GatewayServer) -> None:
    served = httpx.get(f"{gateway.url}/graphql", params={"query": CHEAP}, timeout=30)
    assert served.status_code == 200 and served.json()["data"]["measures"]
    padded = CHEAP + " " * 8192
    response = httpx.get(f"{gateway.url}/graphql", params={"query": padded}, timeout=30)
    assert response.status_code == 414
    _refused(response.json(), "REQUEST_TOO_LARGE")


# --- rate per client ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def rated(sandbox: SandboxThread) -> Iterator[GatewayServer]:
    """Buckets of 3 (bank: 1) refilled once in 100 s, so none refills during a test."""
    limits = {"rate_per_s": 0.01, "burst": 3, "bank": {"burst": 1}}
    app = create_app(gateway_config(sandbox.urls, limits=limits), Clock(TODAY))
    server = GatewayServer(app).start()
    yield server
    server.stop()


def _post(url: str, key: str | None = None, address: str = "127.0.0.1") -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(transport=transport, timeout=30) as http:
        return http.post(f"{url}/graphql", json={"query": CHEAP}, headers=headers)


def test_a_client_over_its_rate_gets_429_and_others_do_not(rated: GatewayServer) -> None:
    assert [_post(rated.url).status_code for _ in range(3)] == [200, 200, 200]
    limited = _post(rated.url)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    _refused(limited.json(), "RATE_LIMITED")
    # Another address, a client with a key, and liveness are not affected.
    assert _post(rated.url, address="127.0.0.2").status_code == 200
    assert _post(rated.url, key=KEYS["partner"]).status_code == 200
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.1")) as http:
        assert http.get(f"{rated.url}/healthz").status_code == 200
    # Authentication comes first: an unknown key is refused as such, not rate limited.
    unknown = _post(rated.url, key="not-a-key")
    assert unknown.status_code == 401
    _refused(unknown.json(), "UNAUTHENTICATED")


def test_a_role_table_overrides_the_default_rate(rated: GatewayServer) -> None:
    assert [_post(rated.url, key=KEYS["bank"]).status_code for _ in range(2)] == [200, 429]
    regulator = [_post(rated.url, key=KEYS["regulator"]).status_code for _ in range(4)]
    assert regulator == [200, 200, 200, 429]


# --- load shedding -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def single_flight(sandbox: SandboxThread) -> Iterator[GatewayServer]:
    """One GraphQL request at a time; tax calls held up to 3 s by a hanging department."""
    config = gateway_config(sandbox.urls, limits={"max_in_flight": 1}, tax={"timeout_s": 3.0})
    server = GatewayServer(create_app(config, Clock(TODAY))).start()
    yield server
    server.stop()


def _wait_until(condition: Callable[[], object]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def test_requests_beyond_max_in_flight_are_shed(
    single_flight: GatewayServer, faults: SandboxThread, dataset: Dataset
) -> None:
    client = GraphQLClient(single_flight.url)
    uscc = dataset.examples["clean.with_grade_a"]
    faults.set_faults("tax", hang=True)
    faults.reset_counts()
    with ThreadPoolExecutor(max_workers=1) as pool:
        # taxCredit: a subject query asks tax only when it reads something of tax's.
        held = pool.submit(
            client.query,
            "query($u: String!) { subject(uscc: $u) { name taxCredit { grade } } }",
            {"u": uscc},
        )
        # The held request is inside the gateway once its tax call reached the department.
        _wait_until(lambda: faults.request_counts("tax"))
        shed = httpx.post(f"{single_flight.url}/graphql", json={"query": CHEAP}, timeout=30)
        assert shed.status_code == 503
        assert int(shed.headers["retry-after"]) >= 1
        _refused(shed.json(), "OVERLOADED")
        assert httpx.get(f"{single_flight.url}/healthz", timeout=30).status_code == 200
        answered = held.result()
    assert answered["data"]["subject"]["name"]
    assert client.post(CHEAP).status_code == 200


def test_a_lone_surrogate_in_a_batch_item_is_refused_at_the_boundary(
    client: GraphQLClient, dataset: Dataset
) -> None:
    # A lone surrogate is no text: it is refused before any resolver runs (schema/text.py),
    # never echoed back, and never a 500.
    good = dataset.examples["clean.plain"]
    query = "query($c: [String!]!) { subjects(usccs: $c) { uscc error { code } } }"
    body = json.dumps({"query": query, "variables": {"c": ["\ud800", good]}})  # ASCII
    response = httpx.post(
        f"{client.base_url}/graphql",
        content=body.encode("ascii"),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEYS['bank']}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["data"] is None
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["INVALID_ARGUMENT"]


def test_text_utf8_cannot_carry_is_answered_escaped() -> None:
    # Department data decoded with errors could hold a lone surrogate; orjson refuses it,
    # and the answer falls back to escaped JSON rather than failing.
    view = GatewayGraphQL(build_schema(), graphiql=GraphiQLConfig())
    encoded = view.encode_json({"data": {"name": "名\ud800"}})
    assert json.loads(encoded) == {"data": {"name": "名\ud800"}}
    assert view.encode_json({"data": {"name": "名称"}}) == '{"data":{"name":"名称"}}'.encode()
