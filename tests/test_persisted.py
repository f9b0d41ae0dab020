"""Trusted documents over HTTP: registered by hash, sent by documentId; partners held to them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.clock import Clock
from core.roles import Role
from gateway.app import create_app
from gateway.config import ConfigError
from gateway.config_operations import PersistedConfig
from gateway.persisted import load_trusted_documents
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.cli import run_cli, write_config
from tests.conftest import TODAY, audit_url, gateway_config
from tests.servers import KEYS, GatewayServer, GraphQLClient

# The partner's registered operations, as its build tooling printed them.
SUBJECT_DOC = (
    "query Subject($uscc: String!) {\n  subject(uscc: $uscc) {\n    uscc\n    name\n  }\n}"
)
AUDIT_DOC = "query Audit {\n  auditLog(first: 1) {\n    edges {\n      node { id }\n    }\n  }\n}"
UNKNOWN = "sha256:" + "0" * 64


def _hash(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GraphQL Code Generator's persisted-documents.json: {"<sha256 hex>": "<document>"}."""
    path = tmp_path_factory.mktemp("persisted") / "persisted-documents.json"
    documents = {_hash(d): d for d in (SUBJECT_DOC, AUDIT_DOC)}
    path.write_text(json.dumps(documents), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trusted(sandbox: SandboxThread, manifest: Path) -> Iterator[GatewayServer]:
    """A gateway with `[persisted] path` and `only_for = ["partner"]`."""
    persisted = PersistedConfig(path=manifest, only_for=(Role.PARTNER,))
    config = replace(gateway_config(sandbox.urls), persisted=persisted)
    server = GatewayServer(create_app(config, Clock(TODAY))).start()
    yield server
    server.stop()


def _post(server: GatewayServer, body: dict[str, Any], role: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {KEYS[role]}"} if role else {}
    return httpx.post(f"{server.url}/graphql", json=body, headers=headers, timeout=30)


def _get(server: GatewayServer, params: dict[str, str], role: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {KEYS[role]}"} if role else {}
    return httpx.get(f"{server.url}/graphql", params=params, headers=headers, timeout=30)


def _code(response: httpx.Response) -> str:
    (error,) = response.json()["errors"]
    return str(error["extensions"]["code"])


@pytest.fixture(scope="module")
def expected(trusted: GatewayServer, dataset: Dataset) -> tuple[str, Any]:
    """A subject's code, and what a bank's free-form SUBJECT_DOC answers for it."""
    uscc = dataset.examples["clean.plain"]
    answer = GraphQLClient(trusted.url, KEYS["bank"]).query(SUBJECT_DOC, {"uscc": uscc})
    assert answer["data"]["subject"]["uscc"] == uscc
    return uscc, answer


@pytest.mark.parametrize(
    "document_id",
    [f"sha256:{_hash(SUBJECT_DOC)}", _hash(SUBJECT_DOC)],
    ids=["prefixed", "bare hash"],
)
def test_a_partner_runs_a_registered_document_by_post(
    trusted: GatewayServer, expected: tuple[str, Any], document_id: str
) -> None:
    uscc, answer = expected
    response = _post(trusted, {"documentId": document_id, "variables": {"uscc": uscc}}, "partner")
    assert response.status_code == 200
    assert response.json() == answer


def test_a_partner_runs_a_registered_document_by_get(
    trusted: GatewayServer, expected: tuple[str, Any]
) -> None:
    uscc, answer = expected
    params = {
        "documentId": f"sha256:{_hash(SUBJECT_DOC)}",
        "variables": json.dumps({"uscc": uscc}, separators=(",", ":")),
    }
    # Accept: */* as curl sends it: an operation, not the GraphiQL page.
    response = _get(trusted, params, "partner")
    assert response.status_code == 200
    assert response.json() == answer


def test_apollo_persisted_query_extension_names_a_registered_document(
    trusted: GatewayServer, expected: tuple[str, Any]
) -> None:
    uscc, answer = expected
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": _hash(SUBJECT_DOC)}}
    posted = _post(trusted, {"extensions": extensions, "variables": {"uscc": uscc}}, "partner")
    assert posted.json() == answer
    params = {"extensions": json.dumps(extensions), "variables": json.dumps({"uscc": uscc})}
    assert _get(trusted, params, "partner").json() == answer


@pytest.mark.parametrize("role", ["partner", "bank", None])
@pytest.mark.parametrize(
    "body",
    [
        {"documentId": UNKNOWN},
        {"documentId": "sha256:" + _hash(SUBJECT_DOC).upper()},  # the spec's hex is lower-case
        {"documentId": "x-partner:subject"},
        {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}},
    ],
    ids=["unknown hash", "upper-case hex", "other prefix", "apollo unknown hash"],
)
def test_an_unknown_document_is_persisted_query_not_found(
    trusted: GatewayServer, role: str | None, body: dict[str, Any]
) -> None:
    response = _post(trusted, body, role)
    assert response.status_code == 404
    assert _code(response) == "PERSISTED_QUERY_NOT_FOUND"


def test_an_unknown_document_by_get_is_persisted_query_not_found(trusted: GatewayServer) -> None:
    response = _get(trusted, {"documentId": UNKNOWN}, "partner")
    assert (response.status_code, _code(response)) == (404, "PERSISTED_QUERY_NOT_FOUND")


def test_a_partner_sending_a_query_text_is_forbidden(
    trusted: GatewayServer, expected: tuple[str, Any]
) -> None:
    uscc, _ = expected
    variables = {"uscc": uscc}
    apq = {"persistedQuery": {"version": 1, "sha256Hash": _hash(SUBJECT_DOC)}}
    refused = [
        _post(trusted, {"query": SUBJECT_DOC, "variables": variables}, "partner"),
        # A registered text sent as text, or with Apollo's hash beside it: still a text.
        _post(
            trusted, {"query": SUBJECT_DOC, "variables": variables, "extensions": apq}, "partner"
        ),
        _get(trusted, {"query": SUBJECT_DOC, "variables": json.dumps(variables)}, "partner"),
        _post(trusted, {"variables": variables}, "partner"),
    ]
    for response in refused:
        assert (response.status_code, _code(response)) == (403, "FORBIDDEN"), response.text
        assert "documentId" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("role", ["bank", "regulator", None])
def test_other_roles_still_send_any_query(
    trusted: GatewayServer, expected: tuple[str, Any], role: str | None
) -> None:
    uscc, answer = expected
    response = _post(trusted, {"query": SUBJECT_DOC, "variables": {"uscc": uscc}}, role)
    assert response.json() == answer
    # With Apollo's hash beside the text (its APQ retry) the text runs, nothing is stored.
    apq = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
    body = {"query": SUBJECT_DOC, "variables": {"uscc": uscc}, "extensions": apq}
    assert _post(trusted, body, role).json() == answer


def test_a_registered_document_grants_no_permission(trusted: GatewayServer) -> None:
    # auditLog is for regulators (contract §5), registered or not.
    response = _post(trusted, {"documentId": f"sha256:{_hash(AUDIT_DOC)}"}, "partner")
    assert response.status_code == 200
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["FORBIDDEN"]
    allowed = _post(trusted, {"documentId": f"sha256:{_hash(AUDIT_DOC)}"}, "regulator")
    assert "errors" not in allowed.json()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"documentId": UNKNOWN, "query": "{ __typename }"}, "either `query` or `documentId`"),
        ({"documentId": 7}, "`documentId` must be a string"),
        ({"extensions": {"persistedQuery": {"version": 2, "sha256Hash": "0"}}}, '"version": 1'),
    ],
    ids=["both", "not a string", "apollo version 2"],
)
def test_a_malformed_document_request_is_invalid_argument(
    trusted: GatewayServer, body: dict[str, Any], named: str
) -> None:
    response = _post(trusted, body, "bank")
    assert (response.status_code, _code(response)) == (400, "INVALID_ARGUMENT")
    assert named in response.json()["errors"][0]["message"]


def test_without_registered_documents_a_document_id_is_not_found(client: GraphQLClient) -> None:
    response = httpx.post(f"{client.base_url}/graphql", json={"documentId": UNKNOWN}, timeout=30)
    assert (response.status_code, _code(response)) == (404, "PERSISTED_QUERY_NOT_FOUND")
    # …and free-form queries are everyone's: no role is held to registered documents.
    partner = GraphQLClient(client.base_url, KEYS["partner"]).query("{ __typename }")
    assert partner == {"data": {"__typename": "Query"}}


def test_an_apollo_manifest_registers_the_same_documents(tmp_path: Path, manifest: Path) -> None:
    apollo = tmp_path / "persisted-query-manifest.json"
    operations = [
        {"id": _hash(d), "name": name, "type": "query", "body": d}
        for name, d in (("Subject", SUBJECT_DOC), ("Audit", AUDIT_DOC))
    ]
    manifest_json = {"format": "apollo-persisted-query-manifest", "version": 1}
    apollo.write_text(json.dumps({**manifest_json, "operations": operations}), encoding="utf-8")
    ours = load_trusted_documents(PersistedConfig(path=apollo))
    codegen = load_trusted_documents(PersistedConfig(path=manifest))
    assert (
        dict(ours.documents)
        == dict(codegen.documents)
        == {
            _hash(SUBJECT_DOC): SUBJECT_DOC,
            _hash(AUDIT_DOC): AUDIT_DOC,
        }
    )


BAD_FILES = {
    "missing": (None, "cannot be read"),
    "not JSON": ("{", "is not a JSON file of documents"),
    "not an object": ('["{ __typename }"]', "must hold a JSON object"),
    "key not a hash": ('{"subject": "{ __typename }"}', "is not a SHA-256 in hex"),
    "document not text": (json.dumps({_hash("x"): 7}), "is not a GraphQL text"),
    "hash of another text": (
        json.dumps({_hash(SUBJECT_DOC): SUBJECT_DOC + " "}),
        f"the document registered as {_hash(SUBJECT_DOC)} has the SHA-256 "
        f"{_hash(SUBJECT_DOC + ' ')}",
    ),
    "not UTF-8 text": (json.dumps({_hash("{ a }"): "{ a \ud800 }"}), "has the SHA-256"),
    "apollo version 2": (
        '{"format": "apollo-persisted-query-manifest", "version": 2, "operations": []}',
        '"version": 1 is known',
    ),
}


@pytest.mark.parametrize(("text", "named"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_documents_file_is_refused_at_load(
    tmp_path: Path, text: str | None, named: str
) -> None:
    path = tmp_path / "documents.json"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_trusted_documents(PersistedConfig(path=path))
    assert str(refused.value).startswith(f"[persisted] path {path}")
    assert named in str(refused.value)


def test_serve_with_a_document_not_matching_its_hash_exits_2(tmp_path: Path) -> None:
    documents = tmp_path / "documents.json"
    documents.write_text(json.dumps({_hash("{ a }"): "{ b }"}), encoding="utf-8")
    extra = f'[persisted]\npath = "{documents}"\nonly_for = ["partner"]\n'
    config = write_config(tmp_path / "config.toml", audit_url(), extra=extra)
    result = run_cli("serve", "--config", str(config), "--port", "9")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"[persisted] path {documents}: the document registered as" in result.stderr
    assert "Traceback" not in result.stderr
