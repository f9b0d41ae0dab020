"""Joint status, measures and supervision (contract §3) over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from core.clock import Clock
from gateway.app import create_app
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.conftest import TODAY, gateway_config
from tests.servers import GatewayServer, GraphQLClient

JOINT = """
query($uscc: String!, $scenario: Scenario) {
  subject(uscc: $uscc) {
    jointPunishment(scenario: $scenario) {
      status complete missingSources evaluatedAt
      listings { id kind level active }
      measures { measure { code kind scenarios appliesTo } triggeredBy }
      incentives { measure { code kind scenarios } triggeredBy }
    }
    supervision { creditClass spotCheckRatio basis }
  }
}"""
DEPARTMENT_OF = {"courts": "COURTS", "market": "MARKET", "tax": "TAX"}


def _joint(client: GraphQLClient, uscc: str, scenario: str | None = None) -> Any:
    body = client.query(JOINT, {"uscc": uscc, "scenario": scenario})
    return body["data"]["subject"]


def test_punished_subject(client: GraphQLClient, dataset: Dataset) -> None:
    subject = _joint(client, dataset.examples["dishonest.active"])
    joint = subject["jointPunishment"]
    assert joint["status"] == "PUNISHED" and joint["complete"] is True
    assert joint["missingSources"] == []
    listed = [r["id"] for r in joint["listings"] if r["kind"] == "DISHONEST_DEBTOR"]
    assert listed
    codes = {m["measure"]["code"]: m["triggeredBy"] for m in joint["measures"]}
    assert set(codes["P-MKT-05"]) >= set(listed)  # loans and insurance (授信)
    assert all(m["measure"]["kind"] == "PUNISHMENT" for m in joint["measures"])
    assert all("ORGANISATION" in m["measure"]["appliesTo"] for m in joint["measures"])
    assert joint["incentives"] == []
    assert subject["supervision"]["creditClass"] == "D"
    assert subject["supervision"]["spotCheckRatio"] == 1.0
    assert set(subject["supervision"]["basis"]) >= set(listed)


def test_watched_subject_gets_only_supervision_measures(
    client: GraphQLClient, dataset: Dataset
) -> None:
    subject = _joint(client, dataset.examples["abnormal.active"])
    joint = subject["jointPunishment"]
    assert joint["status"] == "WATCH"
    assert {r["level"] for r in joint["listings"]} == {"WATCH"}
    assert [m["measure"]["code"] for m in joint["measures"]] == ["P-ADM-10"]
    assert subject["supervision"] == {
        **subject["supervision"],
        "creditClass": "C",
        "spotCheckRatio": 0.6,
    }


def test_tax_grade_d_is_a_watch_fact(client: GraphQLClient, dataset: Dataset) -> None:
    joint = _joint(client, dataset.examples["tax.grade_d"])["jointPunishment"]
    assert joint["status"] in ("WATCH", "PUNISHED")
    triggers = [t for m in joint["measures"] for t in m["triggeredBy"]]
    assert any(t.startswith("TAX:grade:D:") for t in triggers)


def test_clear_subject_with_grade_a_gets_incentives_and_class_a(
    client: GraphQLClient, dataset: Dataset
) -> None:
    subject = _joint(client, dataset.examples["clean.with_grade_a"])
    joint = subject["jointPunishment"]
    assert joint["status"] == "CLEAR" and joint["complete"] is True
    assert joint["measures"] == [] and joint["listings"] == []
    assert joint["incentives"]
    assert all(t.startswith("TAX:grade:A:") for i in joint["incentives"] for t in i["triggeredBy"])
    assert subject["supervision"]["creditClass"] == "A"
    assert subject["supervision"]["spotCheckRatio"] == 0.05


def test_clear_subject_without_good_rating_is_class_b(
    client: GraphQLClient, dataset: Dataset
) -> None:
    subject = _joint(client, dataset.examples["clean.plain"])
    assert subject["jointPunishment"]["status"] == "CLEAR"
    assert subject["jointPunishment"]["incentives"] == []
    assert subject["supervision"]["creditClass"] == "B"


@pytest.mark.parametrize("department", ["courts", "market", "tax"])
def test_a_department_down_makes_a_clear_subject_incomplete(
    client: GraphQLClient, dataset: Dataset, faults: SandboxThread, department: str
) -> None:
    faults.set_faults(department, down=True)
    subject = _joint(client, dataset.examples["clean.with_grade_a"])
    joint = subject["jointPunishment"]
    assert joint["status"] == "INCOMPLETE" and joint["complete"] is False
    assert joint["missingSources"] == [DEPARTMENT_OF[department]]
    assert joint["incentives"] == []
    assert subject["supervision"]["creditClass"] == "C"


def test_punished_stays_punished_with_a_department_down(
    client: GraphQLClient, dataset: Dataset, faults: SandboxThread
) -> None:
    faults.set_faults("tax", down=True)
    joint = _joint(client, dataset.examples["dishonest.active"])["jointPunishment"]
    assert joint["status"] == "PUNISHED"
    assert joint["complete"] is False and joint["missingSources"] == ["TAX"]


@pytest.mark.parametrize("scenario", ["CREDIT_LOAN", "BIDDING", "HIGH_CONSUMPTION"])
def test_scenario_filters_measures(client: GraphQLClient, dataset: Dataset, scenario: str) -> None:
    joint = _joint(client, dataset.examples["dishonest.active"], scenario)["jointPunishment"]
    assert joint["measures"]
    assert all(scenario in m["measure"]["scenarios"] for m in joint["measures"])


def test_measures_query_filters_by_scenario(client: GraphQLClient) -> None:
    everything = client.query("{ measures { code kind scenarios legalBasis } }")["data"]["measures"]
    assert len(everything) >= 20 and all(m["legalBasis"] for m in everything)
    bidding = client.query("{ measures(scenario: BIDDING) { code scenarios } }")["data"]["measures"]
    assert bidding and all("BIDDING" in m["scenarios"] for m in bidding)
    assert len(bidding) < len(everything)


def test_water_never_synced_makes_a_clear_subject_incomplete(
    sandbox: SandboxThread, dataset: Dataset
) -> None:
    # Water is answered from the gateway's own snapshot; it is missing when no snapshot
    # was ever taken (here: its server never answered at start).
    urls = {**sandbox.urls, "water": "http://127.0.0.1:9"}
    app = create_app(gateway_config(urls, water={"timeout_s": 0.5}), Clock(TODAY))
    server = GatewayServer(app).start()
    try:
        subject = _joint(GraphQLClient(server.url), dataset.examples["clean.with_grade_a"])
    finally:
        server.stop()
    joint = subject["jointPunishment"]
    assert joint["status"] == "INCOMPLETE" and joint["missingSources"] == ["WATER"]
    assert subject["supervision"]["creditClass"] == "C"
