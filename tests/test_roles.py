"""The role × operation matrix of contract §5, over real HTTP, as one table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sandbox.model import Dataset
from tests.pii import full_id_numbers
from tests.servers import KEYS, GraphQLClient

ROLES = ("public", "partner", "bank", "regulator")
OK = "ok"
F = "FORBIDDEN"
AUTH = "AUTHORIZATION_REQUIRED"
PERSON = """
query($id: String!, $purpose: QueryPurpose!, $ref: String, $all: Boolean = false) {
  person(idNumber: $id, purpose: $purpose, authorizationRef: $ref) {
    idNumberMasked idNumber records(includeInactive: $all) { id active }
  }
}"""
Probe = Callable[[GraphQLClient, str | None, Dataset], str]


def _outcome(body: Any, field: str) -> str:
    """The first error code, or ok; an error always comes with a null field."""
    if body.get("errors"):
        data = body.get("data") or {}
        assert data.get(field) is None, body
        error = body["errors"][0]
        assert "extensions" in error, error
        return str(error["extensions"]["code"])
    assert body["data"][field] is not None
    return OK


def _subject(client: GraphQLClient, key: str | None, uscc: str, fields: str, **var: Any) -> Any:
    declared = ", $all: Boolean = false" if "$all" in fields else ""
    query = f"query($uscc: String!{declared}) {{ subject(uscc: $uscc) {{ {fields} }} }}"
    return client.query(query, {"uscc": uscc, **var}, key=key)


def _subject_query(client: GraphQLClient, key: str | None, dataset: Dataset) -> str:
    body = _subject(client, key, dataset.examples["clean.plain"], "uscc name")
    return _outcome(body, "subject")


def _search(client: GraphQLClient, key: str | None, dataset: Dataset) -> str:
    name = next(c.name for c in dataset.companies if c.uscc == dataset.examples["clean.plain"])
    query = """query($name: String!) { searchSubjects(name: $name, first: 5) {
      edges { node { uscc } } } }"""
    body = client.query(query, {"name": name}, key=key)
    outcome = _outcome(body, "searchSubjects")
    if outcome == OK:
        found = [e["node"]["uscc"] for e in body["data"]["searchSubjects"]["edges"]]
        assert dataset.examples["clean.plain"] in found
    return outcome


def _measures(client: GraphQLClient, key: str | None, dataset: Dataset) -> str:
    body = client.query("{ measures { code } }", key=key)
    outcome = _outcome(body, "measures")
    assert outcome != OK or body["data"]["measures"]
    return outcome


def _sources(client: GraphQLClient, key: str | None, dataset: Dataset) -> str:
    body = client.query("{ sources { department state } }", key=key)
    outcome = _outcome(body, "sources")
    assert outcome != OK or len(body["data"]["sources"]) == 4
    return outcome


def _batch(client: GraphQLClient, key: str | None, dataset: Dataset) -> str:
    query = """query($codes: [String!]!) { subjects(usccs: $codes) { uscc subject { name } } }"""
    body = client.query(query, {"codes": [dataset.examples["clean.plain"]]}, key=key)
    outcome = _outcome(body, "subjects")
    assert outcome != OK or body["data"]["subjects"][0]["subject"]["name"]
    return outcome


def _rep(dataset: Dataset) -> tuple[str, str]:
    uscc = dataset.examples["clean.plain"]
    return uscc, next(c.legal_rep_id for c in dataset.companies if c.uscc == uscc)


def _rep_masked(client: GraphQLClient, key: str | None, dataset: Dataset) -> str:
    uscc, id_number = _rep(dataset)
    body = _subject(client, key, uscc, "legalRepresentative { name idNumberMasked }")
    shown = body["data"]["subject"]["legalRepresentative"]["idNumberMasked"]
    if shown is None:
        return "null"
    assert shown == id_number[:6] + "*" * 8 + id_number[-4:]
    return "masked"


def _rep_full(client: GraphQLClient, key: str | None, dataset: Dataset) -> str:
    uscc, id_number = _rep(dataset)
    body = _subject(client, key, uscc, "legalRepresentative { idNumber }")
    shown = body["data"]["subject"]["legalRepresentative"]["idNumber"]
    if shown is None:
        return "null"
    assert shown == id_number
    return "full"


def _include_inactive(client: GraphQLClient, key: str | None, dataset: Dataset) -> str:
    body = _subject(
        client,
        key,
        dataset.examples["serious_illegal.expired"],
        "records(includeInactive: true) { id }",
    )
    return _outcome(body, "subject")


def _repaired(client: GraphQLClient, key: str | None, dataset: Dataset) -> str:
    """A regulator asks with includeInactive; the others see what they may."""
    uscc = dataset.examples["penalty.repaired"]
    assert any(p.uscc == uscc and p.repaired for p in dataset.penalties)
    fields = "records(includeInactive: $all) { id repaired active }"
    body = _subject(client, key, uscc, fields, all=key == KEYS["regulator"])
    assert "errors" not in body, body["errors"]
    records = body["data"]["subject"]["records"]
    repaired = [r for r in records if r["repaired"]]
    assert not any(r["active"] for r in repaired)
    return "visible" if repaired else "hidden"


def _person_call(
    purpose: str, ref: str | None, all_records: bool = False
) -> Callable[[GraphQLClient, str | None, Dataset], str]:
    def probe(client: GraphQLClient, key: str | None, dataset: Dataset) -> str:
        id_number = dataset.examples["person.restricted"]
        variables: dict[str, object] = {
            "id": id_number,
            "purpose": purpose,
            "ref": ref,
            "all": all_records,
        }
        body = client.query(PERSON, variables, key=key)
        outcome = _outcome(body, "person")
        if outcome == OK:
            person = body["data"]["person"]
            assert person["idNumberMasked"] == id_number[:6] + "*" * 8 + id_number[-4:]
            assert person["records"]
        return outcome

    return probe


def _person_id_number(client: GraphQLClient, key: str | None, dataset: Dataset) -> str:
    """With the purpose and reference each role is allowed, what the person's idNumber is."""
    id_number = dataset.examples["person.restricted"]
    purpose = "SUPERVISION" if key == KEYS["regulator"] else "CREDIT_LOAN"
    variables: dict[str, object] = {"id": id_number, "purpose": purpose, "ref": "LOAN-1"}
    body = client.query(PERSON, variables, key=key)
    outcome = _outcome(body, "person")
    if outcome != OK:
        return outcome
    shown = body["data"]["person"]["idNumber"]
    if shown is None:
        return "null"
    assert shown == id_number
    return "full"


def _audit_log(client: GraphQLClient, key: str | None, dataset: Dataset) -> str:
    body = client.query("{ auditLog(first: 1) { edges { node { id } } } }", key=key)
    return _outcome(body, "auditLog")


# operation -> (probe, expected outcome for public, partner, bank, regulator)
MATRIX: dict[str, tuple[Probe, tuple[str, str, str, str]]] = {
    "subject": (_subject_query, (OK, OK, OK, OK)),
    "searchSubjects": (_search, (OK, OK, OK, OK)),
    "measures": (_measures, (OK, OK, OK, OK)),
    "sources": (_sources, (OK, OK, OK, OK)),
    "subjects batch": (_batch, (F, OK, OK, OK)),
    "PersonRef.idNumberMasked": (_rep_masked, ("null", "masked", "masked", "masked")),
    "PersonRef.idNumber": (_rep_full, ("null", "null", "null", "full")),
    "records(includeInactive)": (_include_inactive, (F, F, F, OK)),
    "repaired records": (_repaired, ("hidden", "hidden", "hidden", "visible")),
    "person CREDIT_LOAN with ref": (_person_call("CREDIT_LOAN", "LOAN-1"), (F, F, OK, F)),
    "person CREDIT_LOAN without ref": (_person_call("CREDIT_LOAN", None), (F, F, AUTH, F)),
    "person CREDIT_LOAN empty ref": (_person_call("CREDIT_LOAN", ""), (F, F, AUTH, F)),
    "person CREDIT_LOAN blank ref": (_person_call("CREDIT_LOAN", "  "), (F, F, AUTH, F)),
    "person SUPERVISION without ref": (_person_call("SUPERVISION", None), (F, F, F, OK)),
    "person JUDICIAL with ref": (_person_call("JUDICIAL", "CASE-7"), (F, F, F, OK)),
    "person ADMINISTRATIVE_REVIEW": (
        _person_call("ADMINISTRATIVE_REVIEW", None),
        (F, F, F, OK),
    ),
    "Person.idNumber": (_person_id_number, (F, F, "null", "full")),
    "Person.records(includeInactive)": (
        _person_call("SUPERVISION", "LOAN-1", all_records=True),
        (F, F, F, OK),
    ),
    "Person.records(includeInactive) bank": (
        _person_call("CREDIT_LOAN", "LOAN-1", all_records=True),
        (F, F, F, F),
    ),
    "auditLog": (_audit_log, (F, F, F, OK)),
}
CASES = [
    pytest.param(probe, role, expected, id=f"{operation}-{role}")
    for operation, (probe, row) in MATRIX.items()
    for role, expected in zip(ROLES, row, strict=True)
]


@pytest.mark.parametrize(("probe", "role", "expected"), CASES)
def test_role_matrix(
    client: GraphQLClient, dataset: Dataset, probe: Probe, role: str, expected: str
) -> None:
    assert probe(client, KEYS.get(role), dataset) == expected


def test_invalid_id_is_checked_after_the_role(client: GraphQLClient) -> None:
    variables: dict[str, object] = {"id": "not-an-id", "purpose": "CREDIT_LOAN", "ref": "LOAN-1"}
    assert _outcome(client.query(PERSON, variables), "person") == F
    assert _outcome(client.query(PERSON, variables, key=KEYS["partner"]), "person") == F
    assert _outcome(client.query(PERSON, variables, key=KEYS["bank"]), "person") == (
        "INVALID_ID_NUMBER"
    )
    no_ref: dict[str, object] = {**variables, "ref": None}
    assert _outcome(client.query(PERSON, no_ref, key=KEYS["bank"]), "person") == AUTH


@pytest.mark.parametrize(
    "query",
    [
        "query($id: String!) { person(idNumber: $id, purpose: CREDIT_LOAN, "
        'authorizationRef: "LOAN-1") { idNumberMasked records { id } } }',
        "query($id: String!) { person(idNumber: $id, purpose: SUPERVISION) { idNumber } }",
        "{ auditLog { edges { node { id target } } } }",
    ],
)
def test_unknown_key_is_unauthenticated(
    client: GraphQLClient, dataset: Dataset, query: str
) -> None:
    variables = {"id": dataset.examples["person.restricted"]} if "$id" in query else {}
    response = httpx.post(
        f"{client.base_url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": "Bearer key-nobody"},
    )
    assert response.status_code == 401
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert not (body.get("data") or {}).get("person")
    assert not full_id_numbers(response.text)
