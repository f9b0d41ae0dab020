"""/metrics (contract §10) over real HTTP: what the README tour leaves there, bounded labels."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.request_record import MAX_OPERATION_NAMES
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.conftest import GatewayFactory
from tests.pii import full_id_numbers
from tests.servers import KEYS, GatewayServer, GraphQLClient

LIVE = ("courts", "market", "tax")
# The README tour, each operation named as a partner's program would name it.
TOUR_SUBJECT = """
query TourSubject($uscc: String!) {
  subject(uscc: $uscc) {
    uscc name region { code name }
    registration { entityType status registeredCapitalWan establishedOn authority }
    legalRepresentative { name idNumberMasked }
    records { id department kind level title listedOn endsOn active disputed }
    taxCredit { grade year }
    waterCredit { grade validUntil cancelled }
    sources { department state asOf message }
    jointPunishment(scenario: CREDIT_LOAN) { status complete missingSources
      measures { measure { code } triggeredBy } }
    supervision { creditClass spotCheckRatio basis }
  }
}"""
TOUR_BATCH = """
query TourBatch($u: [String!]!) {
  subjects(usccs: $u) { uscc subject { name taxCredit { grade } } error { code } }
}"""
TOUR_SEARCH = """query TourSearch { searchSubjects(name: "有限", first: 5) {
  totalCount edges { node { uscc name } } } }"""
TOUR_SOURCES = "query TourSources { sources { department state asOf message } }"
TOUR_PERSON = """
query TourPerson($id: String!) {
  person(idNumber: $id, purpose: CREDIT_LOAN, authorizationRef: "LOAN-2026-0042") {
    idNumberMasked name records { id kind }
    representedSubjects { uscc role subject { name } }
    jointPunishment(scenario: CREDIT_LOAN) { status }
  }
}"""
TOUR_AUDIT = "query TourAudit { auditLog(first: 5) { edges { node { id outcome } } } }"
# A USCC standing alone: 18 code characters with the region code's six digits.
_USCC = re.compile(
    r"(?<![0-9A-Z])[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}(?![0-9A-Z])"
)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: GatewayServer) -> tuple[str, Samples]:
    """The page and every sample on it, by name and labels."""
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include these."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def scrape_until(
    server: GatewayServer, ready: Callable[[Samples], bool], timeout_s: float = 10
) -> tuple[str, Samples]:
    """The first page on which `ready` holds: a request is counted after its answer is sent."""
    deadline = time.monotonic() + timeout_s
    while True:
        page, samples = scrape(server)
        if ready(samples) or time.monotonic() > deadline:
            return page, samples
        time.sleep(0.1)


def upstream_calls(sandbox: SandboxThread, name: str) -> int:
    """HTTP requests a department received (the tax sandbox also counts SOAP operations)."""
    counts = sandbox.request_counts(name)
    return sum(n for key, n in counts.items() if not key.startswith("SOAP "))


def run_tour(client: GraphQLClient, dataset: Dataset) -> int:
    """The README tour's queries, named; returns how many requests were sent."""
    usccs = [dataset.examples["stitched.all_departments"], dataset.examples["clean.with_grade_a"]]
    for uscc in usccs:
        body = client.query(TOUR_SUBJECT, {"uscc": uscc})
        assert "errors" not in body, body["errors"]
    batch = client.query(TOUR_BATCH, {"u": [*usccs, "not-a-code"]}, key=KEYS["partner"])
    assert batch["data"]["subjects"][2]["error"]["code"] == "INVALID_USCC"
    assert "errors" not in client.query(TOUR_SEARCH)
    assert "errors" not in client.query(TOUR_SOURCES)
    person = client.query(
        TOUR_PERSON, {"id": dataset.examples["person.relocation"]}, key=KEYS["bank"]
    )
    assert "errors" not in person, person["errors"]
    assert "errors" not in client.query(TOUR_AUDIT, key=KEYS["regulator"])
    return 7


def test_the_tour_shows_as_requests_and_department_calls(
    make_gateway: GatewayFactory, sandbox: SandboxThread, dataset: Dataset
) -> None:
    server = make_gateway()
    sandbox.reset_counts()
    sent = run_tour(GraphQLClient(server.url), dataset)
    page, samples = scrape_until(
        server, lambda s: total(s, "credit_gateway_graphql_requests_total") >= sent
    )
    assert total(samples, "credit_gateway_graphql_requests_total") == sent
    # The partner, bank and regulator named their operations, which are now labels; the
    # anonymous subject queries, asked before any client used the name, are not.
    requests = "credit_gateway_graphql_requests_total"
    assert value(samples, requests, operation="(other)", outcome="ok") == 4
    for operation in ("TourBatch", "TourPerson", "TourAudit"):
        assert value(samples, requests, operation=operation, outcome="ok") == 1, operation
    durations = "credit_gateway_graphql_request_duration_seconds_count"
    assert total(samples, durations) == sent
    assert (
        value(
            samples, "credit_gateway_graphql_request_duration_seconds_sum", operation="TourPerson"
        )
        > 0
    )
    for name in LIVE:
        # Every HTTP call a department received is counted, retries and pages included.
        calls = total(samples, "credit_gateway_department_calls_total", department=name)
        assert calls == upstream_calls(sandbox, name) > 0, name
        assert (
            value(samples, "credit_gateway_department_calls_total", department=name, outcome="ok")
            == calls
        )
        assert (
            total(samples, "credit_gateway_department_call_duration_seconds_count", department=name)
            == calls
        )
        lookups = total(samples, "credit_gateway_department_lookups_total", department=name)
        assert (
            value(samples, "credit_gateway_department_lookups_total", department=name, outcome="ok")
            == lookups
            > 0
        )
        assert value(samples, "credit_gateway_breaker_state", department=name, state="closed") == 1
        assert value(samples, "credit_gateway_breaker_state", department=name, state="open") == 0
    # One person query, one audit entry, one commit.
    assert value(samples, "credit_gateway_audit_write_duration_seconds_count", outcome="ok") == 1
    assert 0 < value(samples, "credit_gateway_source_snapshot_age_seconds", department="water") < 60
    # Background work: the audit writer committed that one entry and has none queued; water
    # synced its files at start.
    done, waiting = (
        "credit_gateway_background_jobs_done_total",
        "credit_gateway_background_jobs_waiting",
    )
    assert value(samples, done, kind="audit_entry", outcome="ok") == 1
    assert value(samples, waiting, kind="audit_entry") == 0
    syncs = value(samples, done, kind="water_sync", outcome="ok")
    assert syncs >= 1
    # Each sync downloads water's three files, each one department call.
    calls = "credit_gateway_department_calls_total"
    assert value(samples, calls, department="water", outcome="ok") == 3 * syncs
    assert total(samples, done, kind="water_sync") == value(
        samples, done, kind="water_sync", outcome="ok"
    )
    assert "process_cpu_seconds_total" in page


def test_a_department_made_to_fail_shows_that_outcome(
    make_gateway: GatewayFactory, faults: SandboxThread, dataset: Dataset
) -> None:
    server = make_gateway(market={"retries": 1})
    faults.reset_counts()
    faults.set_faults("market", down=True)
    body = GraphQLClient(server.url).query(
        TOUR_SUBJECT, {"uscc": dataset.examples["clean.plain"]}, key=KEYS["partner"]
    )
    assert [e["extensions"]["department"] for e in body["errors"]] == ["MARKET"]
    _, samples = scrape_until(
        server, lambda s: total(s, "credit_gateway_graphql_requests_total") >= 1
    )
    # The maintenance page (503) is `unavailable`, each attempt of each call counted.
    market = "credit_gateway_department_calls_total"
    failed = value(samples, market, department="market", outcome="unavailable")
    assert failed == upstream_calls(faults, "market") > 0
    assert value(samples, market, department="market", outcome="ok") == 0
    assert (
        value(
            samples,
            "credit_gateway_department_lookups_total",
            department="market",
            outcome="unavailable",
        )
        > 0
    )
    assert (
        value(
            samples,
            "credit_gateway_graphql_requests_total",
            operation="TourSubject",
            outcome="source_unavailable",
        )
        == 1
    )


def test_a_failed_sync_is_background_work_done_with_its_outcome(
    make_gateway: GatewayFactory, faults: SandboxThread
) -> None:
    faults.set_faults("water", down=True)
    server = make_gateway()
    _, samples = scrape(server)
    done = "credit_gateway_background_jobs_done_total"
    assert value(samples, done, kind="water_sync", outcome="unavailable") == 1
    calls = "credit_gateway_department_calls_total"
    assert value(samples, calls, department="water", outcome="unavailable") >= 1
    assert value(samples, done, kind="water_sync", outcome="ok") == 0


def test_cache_hits_misses_and_stand_ins(
    make_gateway: GatewayFactory, faults: SandboxThread, dataset: Dataset
) -> None:
    # Nothing kept fresh (every lookup asks), last good answers kept for an hour.
    server = make_gateway(market={"cache_ttl_s": 0, "stale_ttl_s": 3600})
    cached = make_gateway(market={"cache_ttl_s": 60, "stale_ttl_s": 3600})
    uscc = dataset.examples["clean.plain"]
    query = "query Card($u: String!) { subject(uscc: $u) { name registration { status } } }"
    for gateway in (server, cached):
        client = GraphQLClient(gateway.url, key=KEYS["partner"])
        assert client.query(query, {"u": uscc})["data"]["subject"]["name"]
    faults.reset_counts()
    # A repeated lookup: answered from the cache, nothing asked upstream.
    assert GraphQLClient(cached.url, key=KEYS["partner"]).query(query, {"u": uscc})["data"]
    assert upstream_calls(faults, "market") == 0
    _, samples = scrape_until(
        cached, lambda s: total(s, "credit_gateway_graphql_requests_total") >= 2
    )
    misses = value(samples, "credit_gateway_answer_cache_misses_total", department="market")
    assert misses > 0
    assert value(samples, "credit_gateway_answer_cache_hits_total", department="market") == misses
    # The department down: the last good answer stands in, counted as such.
    faults.set_faults("market", down=True)
    body = GraphQLClient(server.url, key=KEYS["partner"]).query(query, {"u": uscc})
    assert body["data"]["subject"]["name"]
    _, samples = scrape_until(
        server,
        lambda s: (
            value(s, "credit_gateway_answer_cache_stale_served_total", department="market") > 0
        ),
    )
    assert (
        value(samples, "credit_gateway_answer_cache_stale_served_total", department="market")
        == misses
    )


def test_an_open_breaker_shows_in_its_gauge(
    make_gateway: GatewayFactory, faults: SandboxThread, dataset: Dataset
) -> None:
    server = make_gateway(tax={"breaker_failures": 1, "retries": 0, "breaker_cooldown_s": 600})
    faults.set_faults("tax", down=True)
    client = GraphQLClient(server.url, key=KEYS["partner"])
    for code in ("clean.plain", "clean.with_grade_a"):
        client.query(TOUR_SUBJECT, {"uscc": dataset.examples[code]})
    _, samples = scrape(server)
    gauge = "credit_gateway_breaker_state"
    assert value(samples, gauge, department="tax", state="open") == 1
    assert value(samples, gauge, department="tax", state="closed") == 0
    assert value(samples, gauge, department="market", state="closed") == 1
    # Calls the open breaker refused were never sent: lookups say so, calls do not.
    lookups = "credit_gateway_department_lookups_total"
    assert value(samples, lookups, department="tax", outcome="breaker_open") > 0
    assert (
        value(
            samples,
            "credit_gateway_department_calls_total",
            department="tax",
            outcome="breaker_open",
        )
        == 0
    )


def test_operation_labels_are_bounded_and_no_code_or_id_reaches_the_page(
    make_gateway: GatewayFactory, dataset: Dataset
) -> None:
    server = make_gateway()
    anonymous = GraphQLClient(server.url)
    partner = GraphQLClient(server.url, key=KEYS["partner"])
    uscc = dataset.examples["clean.plain"]
    person = dataset.examples["person.relocation"]
    cheap = "query %s { measures(scenario: BIDDING) { code } }"
    anonymous.query(cheap % "Catalogue")  # anonymous: not a label of its own
    partner.query(cheap % "Catalogue")  # a configured client's name becomes one
    anonymous.query(cheap % "Catalogue")  # and anonymous callers are counted under it
    anonymous.query("{ measures { code } }")
    # Names carrying a code or an ID number are never labels, not even a client's.
    for name in (f"Q{uscc}", f"P{person}", f"Q_{uscc[:8]}"):
        partner.query(cheap % name)
    # Anonymous callers are refused; the refusal is counted under its code.
    anonymous.query(TOUR_PERSON, {"id": person})
    # A client's names are kept up to the bound; past it they are counted as (other).
    for n in range(MAX_OPERATION_NAMES):
        partner.query(cheap % f"Name{n}")
    sent = 8 + MAX_OPERATION_NAMES
    page, samples = scrape_until(
        server, lambda s: total(s, "credit_gateway_graphql_requests_total") >= sent
    )
    requests = "credit_gateway_graphql_requests_total"
    assert value(samples, requests, operation="Catalogue", outcome="ok") == 2
    assert value(samples, requests, operation="(none)", outcome="ok") == 1
    assert value(samples, requests, operation="(other)", outcome="forbidden") == 1
    kept = {dict(labels)["operation"] for (name, labels) in samples if name == requests}
    # Catalogue took one place; Name0 … Name98 the rest, Name99 is past the bound.
    assert f"Name{MAX_OPERATION_NAMES - 2}" in kept and f"Name{MAX_OPERATION_NAMES - 1}" not in kept
    assert value(samples, requests, operation="(other)", outcome="ok") == 1 + 3 + 1
    # No label holds a code or an ID number: not those sent, nor any other.
    assert uscc not in page and uscc[:8] not in page and person not in page
    labels = {v for (_, ls) in samples for _, v in ls}
    assert [v for v in labels if _USCC.search(v) or re.search(r"[0-9]{6}", v)] == []
    codes = [c.uscc for c in dataset.companies]
    assert [c for c in codes if c in page] == [] and full_id_numbers(page) == []


def test_refusals_before_graphql_are_counted(make_gateway: GatewayFactory) -> None:
    server = make_gateway(limits={"rate_per_s": 0.01, "burst": 1})
    client = GraphQLClient(server.url)
    assert client.post("{ measures { code } }").status_code == 200
    assert client.post("{ measures { code } }").status_code == 429
    assert client.post("{ measures { code } }", key="not-a-key").status_code == 401
    # /metrics itself is never rate limited: a scrape gets through while callers are refused.
    _, samples = scrape_until(
        server, lambda s: total(s, "credit_gateway_graphql_requests_total") >= 3
    )
    requests = "credit_gateway_graphql_requests_total"
    assert value(samples, requests, operation="(none)", outcome="ok") == 1
    assert value(samples, requests, operation="(none)", outcome="rate_limited") == 1
    assert value(samples, requests, operation="(none)", outcome="unauthenticated") == 1
    assert all(httpx.get(f"{server.url}/metrics", timeout=10).status_code == 200 for _ in range(10))


def test_metrics_switched_off_answer_404(make_gateway: GatewayFactory) -> None:
    server = make_gateway(tables={"metrics": {"enabled": False}})
    assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 404
    assert GraphQLClient(server.url).query("{ measures { code } }")["data"]["measures"]
