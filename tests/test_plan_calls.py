"""Plan by selection: the upstream calls each query shape makes, counted by the sandbox.

Every query goes over real HTTP to the gateway, and from there to the sandbox departments,
which count the requests they receive per endpoint (tax: per SOAP operation). The session
gateway keeps no answer cache, so every count is what one query costs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from core.clock import Clock
from core.identity import org_code_check_digit, uscc_check_digit
from gateway.app import create_app
from sandbox.model import Dataset, TaxRatingRow
from sandbox.runner import SandboxThread
from tests.conftest import FAST_COURTS_RPS, TODAY, gateway_config
from tests.sandbox_support import UNREGISTERED, build_dataset
from tests.servers import KEYS, GatewayServer, GraphQLClient

ENTITIES = "market POST /api/v1/entities/query"
SEARCH_CALL = "market GET /api/v1/entities/search"
GRADES = "tax SOAP queryNsxy"
# One lookup of a subject of every department: market's register and three lists, tax's two
# operations, the courts' two resources under the USCC and the organisation code (one page
# each for a subject without court records).
EVERYTHING = {
    "courts GET /shixin/search": 2,
    "courts GET /xgl/search": 2,
    ENTITIES: 1,
    "market POST /api/v1/abnormal/query": 1,
    "market POST /api/v1/illegal/query": 1,
    "market POST /api/v1/penalties/query": 1,
    GRADES: 1,
    "tax SOAP queryZdsswf": 1,
}
ONE = "query($u: String!) { subject(uscc: $u) { %s } }"
REGISTRATION = "uscc name region { code } registration { status } legalRepresentative { name }"
# query shape → (example subject, the selection, the calls it makes)
SHAPES: dict[str, tuple[str, str, dict[str, int]]] = {
    "registration": ("clean.plain", REGISTRATION, {ENTITIES: 1}),
    "uscc only": ("clean.plain", "uscc", {ENTITIES: 1}),
    "taxCredit": ("clean.with_grade_a", "taxCredit { grade year }", {GRADES: 1}),
    "waterCredit": ("water.grade_aaa", "waterCredit { grade validUntil }", {}),
    "records": ("clean.plain", "records { id }", EVERYTHING),
    "jointPunishment": ("clean.plain", "jointPunishment { status complete }", EVERYTHING),
    "supervision": ("clean.plain", "supervision { creditClass }", EVERYTHING),
    "sources": ("clean.plain", "sources { department state }", EVERYTHING),
    "name and jointPunishment": ("clean.plain", "name jointPunishment { status }", EVERYTHING),
    "name and taxCredit": (
        "clean.with_grade_a",
        "name taxCredit { grade }",
        {ENTITIES: 1, GRADES: 1},
    ),
}


def calls(sandbox: SandboxThread) -> dict[str, int]:
    """Requests per department endpoint since the last reset, water's file syncs left out."""
    counted: dict[str, int] = {}
    for department in ("courts", "market", "tax"):
        for endpoint, count in sandbox.request_counts(department).items():
            # Tax counts each request twice: by path and by SOAP operation; the operation says more.
            if count and endpoint != "POST /services/TaxCreditService":
                counted[f"{department} {endpoint}"] = count
    # Water answers from the gateway's own index: a query never reaches it.
    assert all(p.startswith("GET /opendata/") for p in sandbox.request_counts("water"))
    return counted


def asked(client: GraphQLClient, sandbox: SandboxThread, query: str, **variables: Any) -> Any:
    """The body of one query, with the calls it made (counters reset first)."""
    sandbox.reset_counts()
    body = client.query(query, variables, key=KEYS["partner"])
    return body, calls(sandbox)


def unknown_code(n: int = 0) -> str:
    """A valid USCC no department holds (the sandbox datasets never use this body)."""
    body = f"QQ{n:06d}"
    head = "91230102" + body + org_code_check_digit(body)
    return head + uscc_check_digit(head)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_selection_asks_only_what_it_reads(
    shape: str, client: GraphQLClient, faults: SandboxThread, dataset: Dataset
) -> None:
    example, selection, expected = SHAPES[shape]
    body, made = asked(client, faults, ONE % selection, u=dataset.examples[example])
    assert "errors" not in body and body["data"]["subject"] is not None
    assert made == expected


def test_a_registration_query_shows_what_a_full_one_shows(
    client: GraphQLClient, faults: SandboxThread, dataset: Dataset
) -> None:
    fields = (
        "uscc name region { code name } legalRepresentative { name idNumberMasked } "
        "registration { entityType status registeredCapitalWan currency establishedOn "
        "authority address businessScope operatingFrom operatingTo approvedOn "
        "registrationNumber } taxCredit { grade year evaluatedOn } "
        "waterCredit { grade validUntil cancelled }"
    )
    codes = sorted({c for k, c in dataset.examples.items() if not k.startswith("person.")})
    assert len(codes) > 30
    for code in codes:
        partial, made = asked(client, faults, ONE % fields, u=code)
        full, _ = asked(client, faults, ONE % f"{fields} records {{ id }}", u=code)
        full["data"]["subject"].pop("records")
        assert partial == full, code
        # Every example is registered: the register settles the plan, the courts are not asked.
        assert "courts GET /shixin/search" not in made, code


def test_an_unknown_code_asks_everyone_before_it_is_null(
    client: GraphQLClient, faults: SandboxThread
) -> None:
    body, made = asked(client, faults, ONE % "name registration { status }", u=unknown_code())
    assert body == {"data": {"subject": None}}
    # The register first; it does not know the code, so everyone else, each part once.
    assert made == EVERYTHING


def test_a_code_tax_does_not_rate_asks_everyone_else_for_its_grade(
    client: GraphQLClient, faults: SandboxThread, dataset: Dataset
) -> None:
    body, made = asked(
        client, faults, ONE % "taxCredit { grade }", u=dataset.examples["tax.no_rating"]
    )
    assert body == {"data": {"subject": {"taxCredit": None}}}
    assert made == EVERYTHING


def test_fragments_inline_fragments_and_aliases_are_read(
    client: GraphQLClient, faults: SandboxThread, dataset: Dataset
) -> None:
    query = """
    query($u: String!) { s: subject(uscc: $u) { ...Grade } }
    fragment Grade on Subject { ... on Subject { g: taxCredit { grade } } }"""
    body, made = asked(client, faults, query, u=dataset.examples["clean.with_grade_a"])
    assert body == {"data": {"s": {"g": {"grade": "A"}}}}
    assert made == {GRADES: 1}
    # The same field twice: GraphQL merges both selections, and so does the plan.
    query = """
    query($u: String!) { subject(uscc: $u) { name } subject(uscc: $u) { ...Status } }
    fragment Status on Subject { jointPunishment { status } }"""
    body, made = asked(client, faults, query, u=dataset.examples["clean.plain"])
    assert body["data"]["subject"]["jointPunishment"]["status"] == "CLEAR"
    assert made == EVERYTHING


def test_two_root_fields_on_one_code_share_the_parts_they_both_need(
    client: GraphQLClient, faults: SandboxThread, dataset: Dataset
) -> None:
    query = """
    query($u: String!) { a: subject(uscc: $u) { name } b: subject(uscc: $u) { %s } }"""
    code = dataset.examples["clean.with_grade_a"]
    _, made = asked(client, faults, query % "taxCredit { grade }", u=code)
    assert made == {ENTITIES: 1, GRADES: 1}
    _, made = asked(client, faults, query % "records { id }", u=code)
    assert made == EVERYTHING


BATCH = "query($usccs: [String!]!) { subjects(usccs: $usccs) { %s } }"


def test_a_batch_of_names_is_one_register_call(
    client: GraphQLClient, faults: SandboxThread, dataset: Dataset
) -> None:
    usccs = [c.uscc for c in dataset.companies[:100]]
    body, made = asked(client, faults, BATCH % "subject { name } error { code }", usccs=usccs)
    names = [item["subject"]["name"] for item in body["data"]["subjects"]]
    assert names == [c.name for c in dataset.companies[:100]]
    assert made == {ENTITIES: 1}
    # Without any subject field the register still says which codes exist.
    body, made = asked(client, faults, BATCH % "uscc error { code }", usccs=usccs)
    assert all(item["error"] is None for item in body["data"]["subjects"])
    assert made == {ENTITIES: 1}


def test_not_found_in_a_batch_only_after_everyone_answered(
    client: GraphQLClient, faults: SandboxThread, dataset: Dataset
) -> None:
    known = dataset.examples["clean.plain"]
    selection = "uscc subject { name } error { code }"
    body, made = asked(client, faults, BATCH % selection, usccs=[known, unknown_code(1)])
    found, missing = body["data"]["subjects"]
    assert found["subject"]["name"] and missing["error"]["code"] == "NOT_FOUND"
    # One register call for both codes; everything else for the unknown one only.
    assert made == EVERYTHING
    faults.set_faults("courts", down=True)
    body, _ = asked(client, faults, BATCH % selection, usccs=[known, unknown_code(1)])
    found, missing = body["data"]["subjects"]
    assert found["error"] is None and missing["error"]["code"] == "SOURCE_UNAVAILABLE"


SEARCH = """
query { searchSubjects(name: "榆林", first: 4) { totalCount edges { cursor %s } } }"""


def test_search_edges_ask_what_their_nodes_read(
    client: GraphQLClient, faults: SandboxThread
) -> None:
    body, made = asked(client, faults, SEARCH % "node { name registration { status } }")
    edges = body["data"]["searchSubjects"]["edges"]
    assert len(edges) == 4 and all(e["node"]["name"] for e in edges)
    assert made == {SEARCH_CALL: 1, ENTITIES: 1}
    _, made = asked(client, faults, SEARCH % "node { uscc }")
    assert made == {SEARCH_CALL: 1}


def test_a_department_not_asked_is_not_reported_missing(
    client: GraphQLClient, faults: SandboxThread, dataset: Dataset
) -> None:
    faults.set_faults("tax", down=True)
    body, made = asked(client, faults, ONE % "name", u=dataset.examples["clean.plain"])
    assert "errors" not in body and body["data"]["subject"]["name"]
    assert made == {ENTITIES: 1}
    # Asked for the joint status, tax is missing: never CLEAR.
    body, _ = asked(
        client, faults, ONE % "jointPunishment { status }", u=dataset.examples["clean.plain"]
    )
    assert body["data"]["subject"]["jointPunishment"]["status"] == "INCOMPLETE"
    assert [e["extensions"]["department"] for e in body["errors"]] == ["TAX"]


def test_without_the_register_the_name_comes_from_the_others(
    client: GraphQLClient, faults: SandboxThread, dataset: Dataset
) -> None:
    code = dataset.examples["stitched.all_departments"]
    faults.set_faults("market", down=True)
    partial, made = asked(client, faults, ONE % "name", u=code)
    full, _ = asked(client, faults, ONE % "name records { id }", u=code)
    assert partial["data"]["subject"]["name"] == full["data"]["subject"]["name"]
    assert partial["data"]["subject"]["name"] not in (None, code)
    assert [e["extensions"]["department"] for e in partial["errors"]] == ["MARKET"]
    assert made[GRADES] == 1 and made["courts GET /shixin/search"] == 2


# --- a code the register does not hold, but tax does -----------------------------------------

TAX_NAME = "榆林市无登记商贸有限公司"


@pytest.fixture(scope="module")
def unregistered() -> Iterator[tuple[GraphQLClient, SandboxThread]]:
    """A gateway over the small dataset, plus a tax rating for a code market never registered."""
    dataset = build_dataset()
    dataset.tax_ratings.append(TaxRatingRow(UNREGISTERED, TAX_NAME, 2025, "B", date(2026, 4, 18)))
    sandbox = SandboxThread(dataset)
    sandbox.start()
    sandbox.set_faults("courts", rate_limit_rps=FAST_COURTS_RPS)
    server = GatewayServer(create_app(gateway_config(sandbox.urls), Clock(TODAY))).start()
    try:
        yield GraphQLClient(server.url, KEYS["partner"]), sandbox
    finally:
        server.stop()
        sandbox.stop()


def test_an_unregistered_code_is_named_by_the_others(
    unregistered: tuple[GraphQLClient, SandboxThread],
) -> None:
    client, sandbox = unregistered
    body, made = asked(client, sandbox, ONE % "name registration { status }", u=UNREGISTERED)
    assert body == {"data": {"subject": {"name": TAX_NAME, "registration": None}}}
    assert made == EVERYTHING
    # Its grade alone: tax knows the code, nobody else is asked.
    body, made = asked(client, sandbox, ONE % "taxCredit { grade }", u=UNREGISTERED)
    assert body == {"data": {"subject": {"taxCredit": {"grade": "B"}}}}
    assert made == {GRADES: 1}
