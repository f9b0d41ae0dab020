"""Bulk checks (contract §7–§8) through /graphql over the sandbox, on both store engines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.conftest import GatewayFactory
from tests.servers import KEYS, GatewayServer, GraphQLClient
from tests.stores import BACKENDS, store_url

START = """mutation($u: [String!]!, $s: Scenario, $l: String) {
  startBulkCheck(usccs: $u, scenario: $s, label: $l) { id state total done label scenario }
}"""
CHECK = """query($id: ID!) { bulkCheck(id: $id) {
  id state total done createdAt finishedAt counts { key count } } }"""
RESULTS = """query($id: ID!, $after: String, $status: JointStatus) { bulkCheck(id: $id) {
  results(first: 100, after: $after, status: $status) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { index uscc error { code message } name checkedAt
      jointPunishment { status complete missingSources
        listings { id } measures { measure { code } } }
      supervision { creditClass } sources { department state } } } } } }"""
CANCEL = "mutation($id: ID!) { cancelBulkCheck(id: $id) { id state } }"


@pytest.fixture(params=BACKENDS)
def backend_gateway(
    request: pytest.FixtureRequest, make_gateway: GatewayFactory, tmp_path: Path
) -> Iterator[GatewayFactory]:
    """make_gateway on a store of each engine (the same store for every gateway it makes)."""
    with store_url(request.param, str(tmp_path / "state.db")) as url:

        def factory(**overrides: Any) -> GatewayServer:
            tables = {"store": {"url": url}, **overrides.pop("tables", {})}
            return make_gateway(tables=tables, **overrides)

        yield factory


def start(client: GraphQLClient, usccs: list[str], **variables: Any) -> dict[str, Any]:
    body = client.query(START, {"u": usccs, **variables})
    assert "errors" not in body, body
    check: dict[str, Any] = body["data"]["startBulkCheck"]
    return check


def wait_done(client: GraphQLClient, check_id: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        check: dict[str, Any] = client.query(CHECK, {"id": check_id})["data"]["bulkCheck"]
        if check["state"] in ("DONE", "CANCELLED"):
            return check
        assert time.monotonic() < deadline, f"not done in {timeout_s} s: {check}"
        time.sleep(0.2)


def all_results(
    client: GraphQLClient, check_id: str, status: str | None = None
) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        variables = {"id": check_id, "after": after, "status": status}
        page = client.query(RESULTS, variables)["data"]["bulkCheck"]["results"]
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            assert page["totalCount"] == len(nodes)
            return nodes
        after = page["pageInfo"]["endCursor"]


def test_every_index_gets_its_result_invalid_duplicate_and_unknown_included(
    backend_gateway: GatewayFactory, dataset: Dataset
) -> None:
    server = backend_gateway()
    bank = GraphQLClient(server.url, key=KEYS["bank"])
    punished = dataset.examples["serious_illegal.active"]
    clear = dataset.examples["clean.with_grade_a"]
    unknown = _unknown_code(dataset)
    codes = [clear, "not-a-code", punished, clear, unknown, "610802198707268198"]
    started = start(bank, codes, s="CREDIT_LOAN", l="贷前筛查 2026-05")
    assert started["state"] in ("QUEUED", "RUNNING") and started["total"] == 6
    assert started["label"] == "贷前筛查 2026-05" and started["scenario"] == "CREDIT_LOAN"
    done = wait_done(bank, started["id"])
    assert done["done"] == 6 and done["finishedAt"] is not None
    counts = {c["key"]: c["count"] for c in done["counts"]}
    assert counts == {"CLEAR": 2, "PUNISHED": 1, "INVALID_USCC": 2, "NOT_FOUND": 1}
    results = all_results(bank, started["id"])
    assert [r["index"] for r in results] == list(range(6))
    assert results[1]["error"]["code"] == "INVALID_USCC" and results[1]["jointPunishment"] is None
    # A citizen ID sent by mistake is echoed masked, as `subjects` does.
    assert results[5]["uscc"] != codes[5] and "*" in results[5]["uscc"]
    assert results[4]["error"]["code"] == "NOT_FOUND" and results[4]["name"] is None
    # The duplicate was checked once and is reported at both of its positions.
    assert results[0]["checkedAt"] == results[3]["checkedAt"]
    assert results[0]["jointPunishment"] == results[3]["jointPunishment"]
    assert results[0]["jointPunishment"]["status"] == "CLEAR"
    assert results[0]["supervision"]["creditClass"] == "A"
    assert results[2]["jointPunishment"]["status"] == "PUNISHED"
    assert results[2]["jointPunishment"]["measures"], "CREDIT_LOAN measures are frozen too"
    assert {s["state"] for s in results[2]["sources"]} == {"OK"}
    # Filtered by status, still in submission order.
    assert [r["index"] for r in all_results(bank, started["id"], "CLEAR")] == [0, 3]
    # Background work in the metrics: three distinct valid codes, each finished once.
    page = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'credit_gateway_background_jobs_done_total{kind="bulk_code",outcome="final"} 3.0' in page


def test_the_result_is_what_subject_answers(make_gateway: GatewayFactory, dataset: Dataset) -> None:
    server = make_gateway()
    bank = GraphQLClient(server.url, key=KEYS["bank"])
    code = dataset.examples["serious_illegal.active"]
    check = start(bank, [code], s="CREDIT_LOAN")
    wait_done(bank, check["id"])
    (frozen,) = all_results(bank, check["id"])
    live = bank.query(
        """query($u: String!) { subject(uscc: $u) { name
          jointPunishment(scenario: CREDIT_LOAN) { status complete missingSources
            listings { id } measures { measure { code } } }
          supervision { creditClass } sources { department state } } }""",
        {"u": code},
    )["data"]["subject"]
    for field in ("name", "jointPunishment", "supervision", "sources"):
        assert frozen[field] == live[field], field


def test_ownership_and_anonymous_callers(backend_gateway: GatewayFactory, dataset: Dataset) -> None:
    server = backend_gateway()
    bank = GraphQLClient(server.url, key=KEYS["bank"])
    partner = GraphQLClient(server.url, key=KEYS["partner"])
    regulator = GraphQLClient(server.url, key=KEYS["regulator"])
    anonymous = GraphQLClient(server.url)
    check = start(bank, [dataset.examples["clean.plain"]])
    # Another client's id reads as null, and cannot be cancelled (NOT_FOUND).
    assert partner.query(CHECK, {"id": check["id"]})["data"]["bulkCheck"] is None
    refused = partner.query(CANCEL, {"id": check["id"]})
    assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert regulator.query(CHECK, {"id": check["id"]})["data"]["bulkCheck"]["id"] == check["id"]
    listing = "{ bulkChecks { edges { node { id } } pageInfo { hasNextPage } } }"
    assert partner.query(listing)["data"]["bulkChecks"]["edges"] == []
    own = bank.query(listing)["data"]["bulkChecks"]["edges"]
    assert [e["node"]["id"] for e in own] == [check["id"]]
    everyone = regulator.query(listing)["data"]["bulkChecks"]["edges"]
    assert check["id"] in [e["node"]["id"] for e in everyone]
    for body in (
        anonymous.query(START, {"u": [dataset.examples["clean.plain"]]}),
        anonymous.query(CHECK, {"id": check["id"]}),
    ):
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # The export: the same rules, as HTTP statuses.
    url = f"{server.url}/exports/bulk-checks/{check['id']}.csv"
    assert httpx.get(url).status_code == 403
    assert _get(url, "partner").status_code == 404
    assert _get(url, "regulator").status_code == 200


def test_more_codes_than_the_limit_is_batch_too_large(
    make_gateway: GatewayFactory, dataset: Dataset
) -> None:
    server = make_gateway(tables={"background": {"max_bulk_codes": 3}})
    bank = GraphQLClient(server.url, key=KEYS["bank"])
    codes = [c.uscc for c in dataset.companies[:4]]
    body = bank.query(START, {"u": codes})
    assert body["errors"][0]["extensions"]["code"] == "BATCH_TOO_LARGE"
    assert "3" in body["errors"][0]["message"]
    assert start(bank, codes[:3])["total"] == 3


def test_a_failing_department_is_asked_again_then_final_incomplete_never_clear(
    make_gateway: GatewayFactory, faults: SandboxThread, dataset: Dataset
) -> None:
    server = make_gateway(tables={"background": {"retry_window_s": 2}}, tax={"retries": 0})
    bank = GraphQLClient(server.url, key=KEYS["bank"])
    clear = [dataset.examples["clean.with_grade_a"], dataset.examples["clean.plain"]]
    punished = dataset.examples["serious_illegal.active"]
    faults.set_faults("tax", down=True)
    faults.reset_counts()
    check = start(bank, [*clear, punished])
    done = wait_done(bank, check["id"])
    results = all_results(bank, check["id"])
    # Asked when the check started and again after the backoff, within the window.
    tax_calls = sum(faults.request_counts("tax").values())
    assert tax_calls >= 2
    for result in results[:2]:
        joint = result["jointPunishment"]
        assert joint["status"] == "INCOMPLETE" and joint["complete"] is False
        assert joint["missingSources"] == ["TAX"]
        assert result["supervision"]["creditClass"] == "C"
    # Punished by a department that answered: PUNISHED whatever else is down.
    assert results[2]["jointPunishment"]["status"] == "PUNISHED"
    assert results[2]["jointPunishment"]["complete"] is False
    assert {c["key"]: c["count"] for c in done["counts"]} == {"INCOMPLETE": 2, "PUNISHED": 1}


def test_a_department_back_within_the_window_gives_complete_results(
    make_gateway: GatewayFactory, faults: SandboxThread, dataset: Dataset
) -> None:
    server = make_gateway(tables={"background": {"retry_window_s": 60}}, market={"retries": 0})
    bank = GraphQLClient(server.url, key=KEYS["bank"])
    faults.set_faults("market", down=True)
    check = start(bank, [dataset.examples["clean.with_grade_a"]])
    time.sleep(1.0)
    assert bank.query(CHECK, {"id": check["id"]})["data"]["bulkCheck"]["done"] == 0
    faults.clear_faults()
    done = wait_done(bank, check["id"], timeout_s=30)
    assert {c["key"]: c["count"] for c in done["counts"]} == {"CLEAR": 1}


def test_cancel_keeps_the_results_so_far(
    make_gateway: GatewayFactory, faults: SandboxThread, dataset: Dataset
) -> None:
    server = make_gateway(tables={"background": {"retry_window_s": 600}}, market={"retries": 0})
    bank = GraphQLClient(server.url, key=KEYS["bank"])
    first = start(bank, [dataset.examples["clean.plain"]])
    wait_done(bank, first["id"])
    faults.set_faults("market", down=True)
    check = start(bank, ["bad-code", dataset.examples["clean.with_grade_a"]])
    time.sleep(0.5)
    cancelled = bank.query(CANCEL, {"id": check["id"]})["data"]["cancelBulkCheck"]
    assert cancelled["state"] == "CANCELLED"
    faults.clear_faults()
    time.sleep(1.0)
    after = bank.query(CHECK, {"id": check["id"]})["data"]["bulkCheck"]
    assert after["state"] == "CANCELLED" and after["done"] == 1
    assert [r["index"] for r in all_results(bank, check["id"])] == [0]


def test_the_csv_export_opens_in_excel(make_gateway: GatewayFactory, dataset: Dataset) -> None:
    server = make_gateway()
    bank = GraphQLClient(server.url, key=KEYS["bank"])
    punished = dataset.examples["serious_illegal.active"]
    codes = [punished, "=HYPERLINK(1)", dataset.examples["clean.with_grade_a"]]
    check = start(bank, codes, s="CREDIT_LOAN")
    wait_done(bank, check["id"])
    answer = _get(f"{server.url}/exports/bulk-checks/{check['id']}.csv", "bank")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    body = answer.content
    assert body.startswith(b"\xef\xbb\xbf")
    lines = body.decode("utf-8-sig").split("\r\n")
    assert lines[0] == (
        "index,uscc,error,name,status,complete,missing_sources,listings,measures,"
        "credit_class,checked_at"
    )
    assert lines[-1] == "" and len(lines) == 2 + len(codes)
    row0 = lines[1].split(",")
    assert row0[:3] == ["0", punished, ""] and row0[4:6] == ["PUNISHED", "true"]
    assert row0[7] and row0[8] and row0[9] == "D"
    # Text a spreadsheet would run as a formula is written as text.
    assert lines[2].startswith("1,'=HYPERLINK(1),INVALID_USCC,")


def _get(url: str, role: str) -> httpx.Response:
    return httpx.get(url, headers={"Authorization": f"Bearer {KEYS[role]}"}, timeout=30)


def _unknown_code(dataset: Dataset) -> str:
    from core.identity import org_code_check_digit, uscc_check_digit

    body = "MA0000003"
    head = "91610802" + body[:8] + org_code_check_digit(body[:8])
    uscc = head + uscc_check_digit(head)
    assert uscc not in {c.uscc for c in dataset.companies}
    return uscc


def test_the_courts_pace_holds_and_callers_are_answered_during_a_check(
    make_gateway: GatewayFactory, faults: SandboxThread, dataset: Dataset
) -> None:
    # The courts' published 50 requests/s, in the sandbox and in the gateway (contract §7).
    faults.set_faults("courts", rate_limit_rps=50)
    server = make_gateway(courts={"max_rps": 50})
    bank = GraphQLClient(server.url, key=KEYS["bank"])
    codes = [c.uscc for c in dataset.companies[100:160]]
    faults.reset_counts()
    check = start(bank, codes)
    asked = [dataset.examples[k] for k in ("clean.with_grade_a", "dishonest.both_forms")]
    answered: list[float] = []
    while bank.query(CHECK, {"id": check["id"]})["data"]["bulkCheck"]["state"] != "DONE":
        began = time.monotonic()
        body = bank.query(
            "query($u: String!) { subject(uscc: $u) { jointPunishment { complete } } }",
            {"u": asked[len(answered) % 2]},
        )
        answered.append(time.monotonic() - began)
        # A caller's lookup while the check runs: complete, within timeout_s (2 s).
        assert "errors" not in body, body
        assert body["data"]["subject"]["jointPunishment"]["complete"] is True
        assert answered[-1] < 2.0
        time.sleep(0.3)
    assert len(answered) >= 5, "the check ended before callers could be measured"
    results = all_results(bank, check["id"])
    assert all(r["jointPunishment"]["complete"] for r in results), "no court call was refused"
    arrivals = sorted(t for t, _ in faults.request_arrivals("courts"))
    assert len(arrivals) >= 4 * len(codes)
    busiest = max(sum(1 for u in arrivals[i:] if u < t + 1.0) for i, t in enumerate(arrivals))
    assert busiest <= 50, f"{busiest} court calls in one second"


def test_the_contracts_50000_codes_fit_in_one_request_for_callers_with_a_key(
    make_gateway: GatewayFactory,
) -> None:
    server = make_gateway()
    # 18 characters each, none valid (I is no USCC character): over 1 MiB of JSON, and no
    # department is asked anything.
    codes = [f"91610802MA{n:07d}I" for n in range(50_000)]
    payload = {"query": START, "variables": {"u": codes}}
    body = _post(server, payload, "bank")
    assert len(body.request.content) > 1024 * 1024
    assert body.status_code == 200, body.text[:200]
    check = body.json()["data"]["startBulkCheck"]
    assert check["total"] == 50_000 and check["state"] == "DONE"
    # Anonymous callers keep the small body limit (and may not start a check anyway).
    assert _post(server, payload, None).status_code == 413
    over = _post(server, {"query": START, "variables": {"u": [*codes, "x"]}}, "bank")
    assert over.json()["errors"][0]["extensions"]["code"] == "BATCH_TOO_LARGE"


def _post(server: GatewayServer, payload: dict[str, Any], role: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {KEYS[role]}"} if role else {}
    return httpx.post(f"{server.url}/graphql", json=payload, headers=headers, timeout=60)
