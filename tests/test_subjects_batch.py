"""`subjects`: batches in input order, per-item errors, and batched upstream calls."""

from __future__ import annotations

import pytest

from core.identity import org_code_check_digit, uscc_check_digit
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.conftest import KEYS
from tests.servers import GraphQLClient

BATCH = """
query($usccs: [String!]!) {
  subjects(usccs: $usccs) { uscc subject { uscc name taxCredit { grade } } error { code message } }
}"""


def _unknown_codes(count: int, known: set[str]) -> list[str]:
    codes = []
    for n in range(count * 2):
        body = f"QQ{n:06d}"
        head = "91230102" + body + org_code_check_digit(body)
        code = head + uscc_check_digit(head)
        if code not in known:
            codes.append(code)
    return codes[:count]


def test_items_come_back_in_input_order_with_their_errors(
    client: GraphQLClient, dataset: Dataset
) -> None:
    known = [c.uscc for c in dataset.companies[:3]]
    unknown = _unknown_codes(1, set(known))[0]
    usccs = [known[0], "bad-code", unknown, known[1].lower(), known[2], known[0]]
    items = client.query(BATCH, {"usccs": usccs}, key=KEYS["partner"])["data"]["subjects"]
    assert [i["uscc"] for i in items] == [
        known[0],
        "bad-code",
        unknown,
        known[1],
        known[2],
        known[0],
    ]
    assert items[1]["error"]["code"] == "INVALID_USCC" and items[1]["subject"] is None
    assert items[2]["error"]["code"] == "NOT_FOUND" and items[2]["subject"] is None
    for index in (0, 3, 4, 5):
        assert items[index]["error"] is None
        assert items[index]["subject"]["uscc"] == usccs[index].upper()


def test_anonymous_callers_may_not_batch(client: GraphQLClient, dataset: Dataset) -> None:
    body = client.query(BATCH, {"usccs": [dataset.companies[0].uscc]})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["data"] is None


def test_more_than_1000_codes_is_batch_too_large(client: GraphQLClient, dataset: Dataset) -> None:
    usccs = [dataset.companies[0].uscc] * 1001
    body = client.query(BATCH, {"usccs": usccs}, key=KEYS["bank"])
    assert body["errors"][0]["extensions"]["code"] == "BATCH_TOO_LARGE"


@pytest.mark.timeout(300)
def test_1000_codes_make_batched_upstream_calls(
    client: GraphQLClient, dataset: Dataset, faults: SandboxThread
) -> None:
    known = [c.uscc for c in dataset.companies]
    usccs = (known + _unknown_codes(1000, set(known)))[:1000]
    faults.reset_counts()
    items = client.query(BATCH, {"usccs": usccs}, key=KEYS["partner"], timeout_s=240)["data"][
        "subjects"
    ]
    assert len(items) == 1000
    assert sum(1 for i in items if i["subject"]) == len(set(known[:1000]))
    market = faults.request_counts("market")
    tax = faults.request_counts("tax")
    for endpoint in ("entities", "abnormal", "illegal", "penalties"):
        assert 1 <= market.get(f"POST /api/v1/{endpoint}/query", 0) <= 10, market
    for operation in ("queryNsxy", "queryZdsswf"):
        assert 1 <= tax.get(f"SOAP {operation}", 0) <= 20, tax
    # Water is answered from the gateway's own index: no per-subject calls.
    assert all(not path.startswith("GET /opendata") for path in faults.request_counts("water"))


@pytest.mark.parametrize("role", ["partner", "bank", "regulator"])
def test_a_citizen_id_sent_as_a_code_is_echoed_masked(
    client: GraphQLClient, dataset: Dataset, role: str
) -> None:
    # A careless integrator puts the legal representative's ID in the code column: the
    # item's `uscc` echoed it in full to a partner before.
    person = dataset.examples["person.restricted"]
    good = dataset.examples["clean.plain"]
    body = client.query(BATCH, {"usccs": [person, good]}, key=KEYS[role], scan=True)
    wrong, right = body["data"]["subjects"]
    assert wrong["uscc"] == person[:6] + "*" * 8 + person[-4:]
    assert wrong["error"]["code"] == "INVALID_USCC" and wrong["subject"] is None
    assert right["uscc"] == good and right["subject"]["uscc"] == good
