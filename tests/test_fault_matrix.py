"""The fault matrix of issue 5 through GraphQL: every live department × every failure."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from core.clock import Clock
from gateway.app import create_app
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.conftest import TODAY, gateway_config
from tests.servers import KEYS, GatewayServer, GraphQLClient

TIMEOUT_S = 1.0
# Retries and breaker on, as deployed; no cache, so each query really asks the department.
RESILIENT = {
    "timeout_s": TIMEOUT_S,
    "retries": 2,
    "breaker_failures": 50,
    "cache_ttl_s": 0,
    "stale_ttl_s": 0,
}
SUBJECT = """query($uscc: String!) { subject(uscc: $uscc) {
  jointPunishment { status complete missingSources } sources { department state message } } }"""
# Failures a department keeps up for the whole lookup: it is missing from the answer.
FAILING: list[tuple[str, dict[str, object]]] = [
    ("down", {"down": True}),
    ("hang", {"hang": True}),
    ("5xx", {"error_rate": 1.0}),
    ("garbage", {"garbage": True}),
    ("429 beyond the budget", {"throttle_rate": 1.0, "retry_after_s": 5}),
]
# Failures that pass within the budget: retries get the department's real answer.
RECOVERING: list[tuple[str, dict[str, object]]] = [
    ("burst of 5xx then recovery", {"error_burst": 2}),
    ("429 with Retry-After then recovery", {"throttle_burst": 1, "retry_after_s": 0}),
]
TAX_ONLY: list[tuple[str, dict[str, object]]] = [
    ("DTD entity expansion", {"dtd": True}),
    ("error inside HTTP 200", {"fhdm_error_rate": 1.0}),
]


@pytest.fixture
def resilient(sandbox: SandboxThread) -> Iterator[GraphQLClient]:
    """A fresh gateway (no pause or breaker state carried over) with deployment resilience."""
    config = gateway_config(sandbox.urls, **{d: RESILIENT for d in ("courts", "market", "tax")})
    server = GatewayServer(create_app(config, Clock(TODAY))).start()
    yield GraphQLClient(server.url)
    server.stop()


def _ask(client: GraphQLClient, uscc: str) -> tuple[Any, float]:
    started = time.monotonic()
    body = client.query(SUBJECT, {"uscc": uscc})
    return body, time.monotonic() - started


def _source(body: Any, department: str) -> dict[str, Any]:
    sources = body["data"]["subject"]["sources"]
    return next(s for s in sources if s["department"] == department)


CASES = [(d, *f) for d in ("courts", "market", "tax") for f in FAILING] + [
    ("tax", *f) for f in TAX_ONLY
]


@pytest.mark.parametrize(("department", "fault", "knobs"), CASES)
def test_a_failing_department_is_missing_never_clear(
    resilient: GraphQLClient,
    faults: SandboxThread,
    dataset: Dataset,
    department: str,
    fault: str,
    knobs: dict[str, object],
) -> None:
    uscc = dataset.examples["clean.plain"]
    faults.set_faults(department, **knobs)
    body, took = _ask(resilient, uscc)
    # contract §6: a hung or dead source never holds a response longer than timeout_s + 1 s.
    assert took < TIMEOUT_S + 1.0, f"{fault}: answered after {took:.2f} s"
    name = department.upper()
    assert _source(body, name)["state"] == "UNAVAILABLE", fault
    joint = body["data"]["subject"]["jointPunishment"]
    assert joint == {"status": "INCOMPLETE", "complete": False, "missingSources": [name]}
    codes = [(e["extensions"]["code"], e["extensions"].get("department")) for e in body["errors"]]
    assert codes == [("SOURCE_UNAVAILABLE", name)]
    # The other departments answered as usual.
    others = [s for s in body["data"]["subject"]["sources"] if s["department"] != name]
    assert all(s["state"] == "OK" for s in others)


@pytest.mark.parametrize("department", ["courts", "market", "tax"])
@pytest.mark.parametrize(("fault", "knobs"), RECOVERING)
def test_a_passing_failure_is_ridden_out_by_retries(
    resilient: GraphQLClient,
    faults: SandboxThread,
    dataset: Dataset,
    department: str,
    fault: str,
    knobs: dict[str, object],
) -> None:
    uscc = dataset.examples["clean.plain"]
    faults.set_faults(department, **knobs)
    body, took = _ask(resilient, uscc)
    assert took < TIMEOUT_S + 1.0, f"{fault}: answered after {took:.2f} s"
    assert _source(body, department.upper())["state"] == "OK", fault
    assert body["data"]["subject"]["jointPunishment"]["status"] == "CLEAR"
    assert "errors" not in body
    # The department really failed first: the burst was spent on the gateway's calls.
    left = httpx.get(f"{faults.urls[department]}/_admin/faults", timeout=10).json()
    assert left["error_burst"] == 0 and left["throttle_burst"] == 0


@pytest.mark.parametrize("department", ["courts", "market", "tax"])
def test_the_breaker_opens_under_a_down_department_and_closes_when_it_is_back(
    sandbox: SandboxThread, faults: SandboxThread, dataset: Dataset, department: str
) -> None:
    knobs = {**RESILIENT, "retries": 0, "breaker_failures": 2, "breaker_cooldown_s": 0.5}
    config = gateway_config(sandbox.urls, **{department: knobs})
    server = GatewayServer(create_app(config, Clock(TODAY))).start()
    try:
        client = GraphQLClient(server.url)
        uscc = dataset.examples["clean.plain"]
        name = department.upper()
        faults.set_faults(department, down=True)
        for _ in range(3):
            body, _took = _ask(client, uscc)
        assert _source(body, name)["message"].startswith("UNAVAILABLE: circuit breaker")
        # Open: the department is not asked at all.
        faults.reset_counts()
        body, _took = _ask(client, uscc)
        assert body["data"]["subject"]["jointPunishment"]["status"] == "INCOMPLETE"
        assert sum(faults.request_counts(department).values()) == 0
        # Back, and the cool-down over: the probe closes the breaker.
        faults.clear_faults(department)
        time.sleep(0.6)
        body, _took = _ask(client, uscc)
        assert _source(body, name)["state"] == "OK"
        assert body["data"]["subject"]["jointPunishment"]["status"] == "CLEAR"
    finally:
        server.stop()


PERSON = """query($id: String!) {
  person(idNumber: $id, purpose: CREDIT_LOAN, authorizationRef: "LOAN-1") {
    jointPunishment { status complete missingSources } } }"""


@pytest.mark.parametrize("department", ["courts", "market", "tax"])
def test_a_person_query_is_bounded_like_a_subject_query(
    resilient: GraphQLClient, faults: SandboxThread, dataset: Dataset, department: str
) -> None:
    # A person takes two rounds (the person, then the subjects of their positions); each
    # department's positions are followed as soon as it answers, so a hung department costs
    # one timeout, not two.
    faults.set_faults(department, hang=True)
    started = time.monotonic()
    body = resilient.query(
        PERSON, {"id": dataset.examples["person.rep_at_listing"]}, key=KEYS["bank"]
    )
    took = time.monotonic() - started
    assert took < TIMEOUT_S + 1.0, f"answered after {took:.2f} s"
    joint = body["data"]["person"]["jointPunishment"]
    assert joint["complete"] is False and department.upper() in joint["missingSources"]
    assert joint["status"] != "CLEAR"
