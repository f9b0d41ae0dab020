"""Text arguments are checked at the boundary, in one place for the whole schema (D4).

Every string the caller sends as an argument, written in the query or passed as a
variable (list items included), must be well-formed Unicode without control characters
and at most MAX_TEXT_CHARS long; otherwise the caller gets INVALID_ARGUMENT naming the
argument and no resolver runs: a lone surrogate once reached the audit log this way.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from sandbox.model import Dataset
from schema.text import MAX_TEXT_CHARS
from tests.servers import KEYS, GatewayServer, GraphQLClient

PERSON = """
query($id: String!, $ref: String) {
  person(idNumber: $id, purpose: CREDIT_LOAN, authorizationRef: $ref) { idNumberMasked }
}"""
SUBJECTS = "query($c: [String!]!) { subjects(usccs: $c) { uscc error { code } subject { uscc } } }"
SEARCH = "query($name: String!) { searchSubjects(name: $name) { totalCount } }"
NEWEST_AUDIT_ENTRY = "{ auditLog(first: 1) { edges { node { id authorizationRef } } } }"


def _post(gateway: GatewayServer, query: str, variables: dict[str, Any], role: str) -> Any:
    # httpx's json= cannot encode a lone surrogate; json.dumps escapes it ("\ud800") as a
    # client written in JavaScript or Java would send it.
    body = json.dumps({"query": query, "variables": variables}).encode("ascii")
    response = httpx.post(
        f"{gateway.url}/graphql",
        content=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEYS[role]}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _invalid(body: Any, *wording: str) -> None:
    assert body["data"] is None, body
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INVALID_ARGUMENT", error
    for words in wording:
        assert words in error["message"], error


def _newest_audit_entry(client: GraphQLClient) -> Any:
    body = client.query(NEWEST_AUDIT_ENTRY, key=KEYS["regulator"])
    return body["data"]["auditLog"]["edges"][0]["node"]


def test_a_lone_surrogate_in_a_person_query_is_refused_before_the_audit_log(
    gateway: GatewayServer, client: GraphQLClient, dataset: Dataset
) -> None:
    id_number = dataset.examples["person.relocation"]
    good = {"id": id_number, "ref": "LOAN-2026-0042"}
    assert _post(gateway, PERSON, good, "bank")["data"]["person"]
    before = _newest_audit_entry(client)
    _invalid(
        _post(gateway, PERSON, {**good, "id": "\ud800"}, "bank"),
        "variable $id (argument idNumber of person)",
        "unpaired surrogate (U+D800) at character 1",
    )
    _invalid(
        _post(gateway, PERSON, {**good, "ref": "LOAN-\udfff"}, "bank"),
        "argument authorizationRef of person",
        "(U+DFFF) at character 6",
    )
    # No resolver ran, so nothing reached the audit log; a good query still answers and
    # is written as before.
    assert _newest_audit_entry(client) == before
    assert _post(gateway, PERSON, good, "bank")["data"]["person"]
    assert _newest_audit_entry(client)["id"] != before["id"]


def test_a_lone_surrogate_in_a_list_item_or_a_search_is_refused(
    gateway: GatewayServer, dataset: Dataset
) -> None:
    good = dataset.examples["clean.plain"]
    _invalid(
        _post(gateway, SUBJECTS, {"c": [good, "\ud800"]}, "bank"),
        "variable $c[1] (argument usccs of subjects)",
        "unpaired surrogate",
    )
    _invalid(_post(gateway, SEARCH, {"name": "北京\ud83d"}, "partner"), "argument name of")
    # A surrogate pair is one character (U+1F600) and is text like any other.
    answered = _post(gateway, SUBJECTS, {"c": [good, "\ud83d\ude00"]}, "bank")
    found, odd = answered["data"]["subjects"]
    assert found["subject"] == {"uscc": good}
    assert odd["error"] == {"code": "INVALID_USCC"}


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("a\x00b", "a control character (U+0000) at character 2"),
        ("\x1b[2J", "a control character (U+001B)"),
        ("line\nbreak", "a control character (U+000A)"),
        ("\x85", "a control character (U+0085)"),
        ("abc\u202edef", "an invisible format character (U+202E)"),
        ("a\u2028b", "a line separator (U+2028)"),
    ],
)
def test_control_characters_are_refused_in_variables(
    gateway: GatewayServer, text: str, what: str
) -> None:
    _invalid(_post(gateway, SEARCH, {"name": text}, "partner"), "variable $name", what)


def test_text_in_the_query_itself_is_checked_too(client: GraphQLClient, dataset: Dataset) -> None:
    # graphql-core's parser refuses lone surrogates in a query, but takes escaped controls.
    nul = client.query('{ searchSubjects(name: "a\\u0000b") { totalCount } }')
    _invalid(nul, "argument name of searchSubjects contains a control character (U+0000)")
    block = client.query('{ subject(uscc: """two\nlines""") { name } }')
    _invalid(block, "argument uscc of subject", "(U+000A)")
    good = dataset.examples["clean.plain"]
    batch = f'{{ subjects(usccs: ["{good}", "\\u0007"]) {{ uscc }} }}'
    _invalid(client.query(batch, key=KEYS["bank"]), "argument usccs[1] of subjects")
    default = 'query($n: String = "\\u0000") { searchSubjects(name: $n) { totalCount } }'
    _invalid(client.query(default), "default value of $n")


def test_text_is_bounded_and_ordinary_text_passes(gateway: GatewayServer) -> None:
    longest = "企" * MAX_TEXT_CHARS
    assert _post(gateway, SEARCH, {"name": longest}, "partner")["data"]["searchSubjects"]
    _invalid(
        _post(gateway, SEARCH, {"name": longest + "业"}, "partner"),
        f"is longer than {MAX_TEXT_CHARS} characters",
    )
    # Ideographic and no-break spaces, and private-use characters (rare characters in
    # some names), are text.
    for name in ("北京\u3000科技", "a\u00a0b", "\ue000"):
        assert _post(gateway, SEARCH, {"name": name}, "partner")["data"]["searchSubjects"]
