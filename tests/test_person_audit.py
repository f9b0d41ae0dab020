"""The personal-query audit log (contract §5): written before answering, chained, reviewable.

Every test here runs its own gateway over the session sandbox with an audit store only that
test writes, so entries can be counted exactly.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.clock import Clock
from gateway.app import create_app
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.cli import run_cli, write_config
from tests.conftest import PURPOSES, TODAY, gateway_config
from tests.pii import full_id_numbers
from tests.servers import KEYS, GatewayServer, GraphQLClient

PERSON = """
query($id: String!, $purpose: QueryPurpose!, $ref: String) {
  person(idNumber: $id, purpose: $purpose, authorizationRef: $ref) { idNumberMasked }
}"""
AUDIT_LOG = """
query($first: Int, $after: String, $client: String) {
  auditLog(first: $first, after: $after, clientId: $client) {
    edges { cursor node { id at clientId role operation purpose authorizationRef target
                          outcome reason hash prevHash } }
    pageInfo { hasNextPage endCursor }
  }
}"""
HEX64 = re.compile(r"[0-9a-f]{64}")
GENESIS = "0" * 64


@dataclass
class Audited:
    """A gateway with its own audit store."""

    client: GraphQLClient
    path: Path


def _start(sandbox: SandboxThread, path: Path, **audit: Any) -> GatewayServer:
    config = gateway_config(sandbox.urls, audit={"url": f"sqlite://{path}", **audit})
    return GatewayServer(create_app(config, Clock(TODAY))).start()


@pytest.fixture
def audited(sandbox: SandboxThread, tmp_path: Path) -> Iterator[Audited]:
    """A fresh gateway whose audit log starts empty."""
    path = tmp_path / "audit.db"
    server = _start(sandbox, path)
    yield Audited(GraphQLClient(server.url), path)
    server.stop()


def _masked(id_number: str) -> str:
    return id_number[:6] + "*" * 8 + id_number[-4:]


def _call(
    client: GraphQLClient, id_number: str, purpose: str, ref: str | None, role: str | None
) -> Any:
    variables: dict[str, object] = {"id": id_number, "purpose": purpose, "ref": ref}
    return client.query(PERSON, variables, key=KEYS[role] if role else None)


def _code(body: Any) -> str | None:
    return body["errors"][0]["extensions"]["code"] if body.get("errors") else None


def _log(
    client: GraphQLClient, first: int, after: str | None = None, client_id: str | None = None
) -> Any:
    variables: dict[str, object] = {"first": first, "after": after, "client": client_id}
    response = client.post(AUDIT_LOG, variables, key=KEYS["regulator"])
    # The log itself never holds a full ID number, not even for the regulator.
    assert not full_id_numbers(response.text)
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]["auditLog"]


def _entries(client: GraphQLClient, client_id: str | None = None) -> list[dict[str, Any]]:
    return [edge["node"] for edge in _log(client, 500, client_id=client_id)["edges"]]


def _check_chain(newest_first: list[dict[str, Any]]) -> None:
    """Each entry's prevHash is the hash of the entry written before it."""
    for entry in newest_first:
        assert HEX64.fullmatch(entry["hash"]) and HEX64.fullmatch(entry["prevHash"])
    for newer, older in itertools.pairwise(newest_first):
        assert newer["prevHash"] == older["hash"]
    assert newest_first[-1]["prevHash"] == GENESIS
    assert len({e["hash"] for e in newest_first}) == len(newest_first)


# --- what is written ---------------------------------------------------------------------------


def test_granted_and_denied_calls_are_logged_in_order(audited: Audited, dataset: Dataset) -> None:
    person = dataset.examples["person.restricted"]
    other = dataset.examples["person.multi_company"]
    bad_check = other[:-1] + "1"
    # (id, purpose, ref, role) -> (error code or None, clientId, role, target)
    calls: list[tuple[tuple[str, str, str | None, str | None], tuple[Any, ...]]] = [
        ((person, "CREDIT_LOAN", "LOAN-1", "bank"), (None, "bank-test", "bank", _masked(person))),
        (
            (other.lower(), "CREDIT_LOAN", None, "bank"),
            ("AUTHORIZATION_REQUIRED", "bank-test", "bank", _masked(other)),
        ),
        (
            (person, "JUDICIAL", "CASE-9", "bank"),
            ("FORBIDDEN", "bank-test", "bank", _masked(person)),
        ),
        (
            (person, "SUPERVISION", None, "partner"),
            ("FORBIDDEN", "partner-test", "partner", _masked(person)),
        ),
        (
            (person, "CREDIT_LOAN", "LOAN-2", None),
            ("FORBIDDEN", "anonymous", "public", _masked(person)),
        ),
        (
            (other, "SUPERVISION", None, "regulator"),
            (None, "regulator-test", "regulator", _masked(other)),
        ),
        (
            ("12345", "CREDIT_LOAN", "LOAN-3", "bank"),
            ("INVALID_ID_NUMBER", "bank-test", "bank", "*****"),
        ),
        (
            (bad_check, "CREDIT_LOAN", "LOAN-4", "bank"),
            ("INVALID_ID_NUMBER", "bank-test", "bank", _masked(bad_check)),
        ),
    ]
    for (id_number, purpose, ref, role), (code, *_) in calls:
        body = _call(audited.client, id_number, purpose, ref, role)
        assert _code(body) == code, body
        assert (body["data"]["person"] is None) == (code is not None)

    entries = _entries(audited.client)
    assert [e["id"] for e in entries] == [str(n) for n in range(len(calls), 0, -1)]
    for entry, ((_, purpose, ref, _role), (code, client_id, role, target)) in zip(
        entries, reversed(calls), strict=True
    ):
        assert entry["operation"] == "person"
        assert (entry["clientId"], entry["role"], entry["target"]) == (client_id, role, target)
        assert (entry["purpose"], entry["authorizationRef"]) == (purpose, ref)
        assert entry["outcome"] == ("GRANTED" if code is None else "DENIED")
        assert entry["reason"] == code
        at = datetime.fromisoformat(entry["at"])
        assert at.utcoffset() == timedelta(hours=8)
        assert at.date() == TODAY
    _check_chain(entries)


@pytest.mark.parametrize(
    ("raw", "stars"),
    [
        ("12345", 5),
        ("61080219901122858", 17),  # one short of an ID
        ("abc-def", 7),
    ],
)
def test_target_of_an_input_that_is_not_an_id_is_only_stars(
    audited: Audited, raw: str, stars: int
) -> None:
    body = _call(audited.client, raw, "CREDIT_LOAN", "LOAN-1", "bank")
    assert _code(body) == "INVALID_ID_NUMBER"
    (entry,) = _entries(audited.client)
    assert entry["target"] == "*" * stars
    assert (entry["outcome"], entry["reason"]) == ("DENIED", "INVALID_ID_NUMBER")


def test_target_of_a_long_input_keeps_nothing_of_it(audited: Audited, dataset: Dataset) -> None:
    # An ID with text around it: not 18 characters, so none of it may reach the log.
    raw = dataset.examples["person.restricted"] + "0000"
    assert _code(_call(audited.client, raw, "CREDIT_LOAN", "LOAN-1", "bank")) == (
        "INVALID_ID_NUMBER"
    )
    (entry,) = _entries(audited.client)
    assert entry["target"] and set(entry["target"]) == {"*"}


def test_concurrent_calls_form_one_chain(audited: Audited, dataset: Dataset) -> None:
    person = dataset.examples["person.multi_company"]
    refs = [f"LOAN-{n:02d}" for n in range(16)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        bodies = list(
            pool.map(lambda ref: _call(audited.client, person, "CREDIT_LOAN", ref, "bank"), refs)
        )
    assert all(_code(body) is None for body in bodies)
    entries = _entries(audited.client)
    assert [e["id"] for e in entries] == [str(n) for n in range(len(refs), 0, -1)]
    assert sorted(e["authorizationRef"] for e in entries) == refs
    _check_chain(entries)


def test_every_purpose_of_the_regulator_is_granted_and_logged(
    audited: Audited, dataset: Dataset
) -> None:
    person = dataset.examples["person.relocation"]
    for purpose in PURPOSES["regulator"]:
        body = _call(audited.client, person, purpose, None, "regulator")
        assert body["data"]["person"]["idNumberMasked"] == _masked(person)
    entries = _entries(audited.client)
    assert [e["purpose"] for e in entries] == list(reversed(PURPOSES["regulator"]))
    assert {e["outcome"] for e in entries} == {"GRANTED"}
    assert {e["target"] for e in entries} == {_masked(person)}


# --- reading the log ---------------------------------------------------------------------------


def test_audit_log_pages_newest_first(audited: Audited, dataset: Dataset) -> None:
    people = [
        dataset.examples[label]
        for label in (
            "person.restricted",
            "person.multi_company",
            "person.relocation",
            "person.rep_at_listing",
            "person.residence_permit",
        )
    ]
    for id_number in people:
        _call(audited.client, id_number, "SUPERVISION", None, "regulator")
    seen: list[dict[str, Any]] = []
    after = None
    pages = []
    while True:
        page = _log(audited.client, first=2, after=after)
        pages.append(len(page["edges"]))
        seen += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]
    assert pages == [2, 2, 1]
    assert [e["id"] for e in seen] == ["5", "4", "3", "2", "1"]
    assert [e["target"] for e in seen] == [_masked(i) for i in reversed(people)]
    _check_chain(seen)
    assert seen == _entries(audited.client)


def test_audit_log_filters_by_client(audited: Audited, dataset: Dataset) -> None:
    person = dataset.examples["person.restricted"]
    for role, purpose in [
        ("bank", "CREDIT_LOAN"),
        ("regulator", "SUPERVISION"),
        ("bank", "CREDIT_LOAN"),
        ("partner", "CREDIT_LOAN"),
        ("bank", "CREDIT_LOAN"),
    ]:
        _call(audited.client, person, purpose, "LOAN-1", role)
    bank = _entries(audited.client, client_id="bank-test")
    assert [e["id"] for e in bank] == ["5", "3", "1"]
    assert {e["clientId"] for e in bank} == {"bank-test"}
    first = _log(audited.client, first=2, client_id="bank-test")
    assert [e["node"]["id"] for e in first["edges"]] == ["5", "3"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = _log(audited.client, 2, first["pageInfo"]["endCursor"], "bank-test")
    assert [e["node"]["id"] for e in rest["edges"]] == ["1"]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert [e["id"] for e in _entries(audited.client, client_id="partner-test")] == ["4"]
    nobody = _log(audited.client, first=10, client_id="nobody")
    assert nobody["edges"] == [] and nobody["pageInfo"]["hasNextPage"] is False


def test_an_empty_log(audited: Audited) -> None:
    page = _log(audited.client, first=10)
    assert page["edges"] == []
    assert page["pageInfo"]["hasNextPage"] is False


# --- no entry, no answer -----------------------------------------------------------------------


def _person_requests(sandbox: SandboxThread) -> int:
    """How often the market department was asked for a person's positions."""
    return sum(n for key, n in sandbox.request_counts("market").items() if "/persons/" in key)


def _assert_audit_unavailable(body: Any) -> None:
    assert body["data"]["person"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["reason"] == "AUDIT_UNAVAILABLE"


def test_audit_store_that_cannot_be_created_denies_person_but_not_subject(
    sandbox: SandboxThread, dataset: Dataset, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file where the audit directory should be\n")
    server = _start(sandbox, blocker / "audit.db")
    try:
        client = GraphQLClient(server.url)
        before = _person_requests(sandbox)
        body = _call(client, dataset.examples["person.restricted"], "CREDIT_LOAN", "L-1", "bank")
        _assert_audit_unavailable(body)
        # Denied before any department was asked about the person.
        assert _person_requests(sandbox) == before
        regulator = _call(
            client, dataset.examples["person.restricted"], "SUPERVISION", None, "regulator"
        )
        _assert_audit_unavailable(regulator)
        query = "query($u: String!) { subject(uscc: $u) { uscc name } }"
        subject = client.query(query, {"u": dataset.examples["clean.plain"]})
        assert "errors" not in subject
        assert subject["data"]["subject"]["uscc"] == dataset.examples["clean.plain"]
    finally:
        server.stop()
    assert blocker.read_text().startswith("a regular file")


def test_locked_audit_store_denies_until_released(
    sandbox: SandboxThread, dataset: Dataset, tmp_path: Path
) -> None:
    path = tmp_path / "audit.db"
    server = _start(sandbox, path, timeout_s=0.2)
    person = dataset.examples["person.restricted"]
    try:
        client = GraphQLClient(server.url)
        assert _code(_call(client, person, "CREDIT_LOAN", "L-1", "bank")) is None
        lock = sqlite3.connect(path, isolation_level=None, timeout=5)
        try:
            lock.execute("BEGIN EXCLUSIVE")
            started = time.monotonic()
            body = _call(client, person, "CREDIT_LOAN", "L-2", "bank")
            elapsed = time.monotonic() - started
            _assert_audit_unavailable(body)
            assert elapsed < 5.0  # the store's timeout, not the request's, decided
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        again = _call(client, person, "CREDIT_LOAN", "L-3", "bank")
        assert _code(again) is None and again["data"]["person"]["idNumberMasked"]
        entries = _entries(client)
    finally:
        server.stop()
    # The denied call could not be written; the chain goes on from the first entry.
    assert [(e["id"], e["authorizationRef"]) for e in entries] == [("2", "L-3"), ("1", "L-1")]
    _check_chain(entries)


# --- credit-gateway audit verify ---------------------------------------------------------------


def _config_file(tmp_path: Path, sandbox: SandboxThread, audit_path: Path) -> Path:
    """A config file as an operator writes it (docs/configuration.md)."""
    key_sha256 = hashlib.sha256(KEYS["bank"].encode()).hexdigest()
    client = "\n".join(
        [
            "[[clients]]",
            'id = "bank-test"',
            'role = "bank"',
            f'key_sha256 = "{key_sha256}"',
            'purposes = ["CREDIT_LOAN"]',
        ]
    )
    return write_config(
        tmp_path / "config.toml", f"sqlite://{audit_path}", sandbox.urls, extra=client
    )


def _verify(config: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("audit", "verify", "--config", str(config))


def test_audit_verify_finds_the_first_tampered_entry(
    audited: Audited, sandbox: SandboxThread, dataset: Dataset, tmp_path: Path
) -> None:
    person = dataset.examples["person.restricted"]
    for ref in ("L-1", "L-2", "L-3"):
        assert _code(_call(audited.client, person, "CREDIT_LOAN", ref, "bank")) is None
    _call(audited.client, person, "CREDIT_LOAN", None, "bank")  # denied, logged too
    config = _config_file(tmp_path, sandbox, audited.path)

    intact = _verify(config)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert re.search(r"\b4\b", intact.stdout), intact.stdout

    with sqlite3.connect(audited.path) as db:
        db.execute("UPDATE audit_log SET target = ? WHERE id = 2", ("110101********0011",))
    db.close()
    broken = _verify(config)
    output = broken.stdout + broken.stderr
    assert broken.returncode != 0, output
    assert re.search(r"entry\D{0,3}2\b", output), output
    assert "Traceback" not in output


def test_audit_verify_of_an_empty_log_is_intact(
    audited: Audited, sandbox: SandboxThread, tmp_path: Path
) -> None:
    result = _verify(_config_file(tmp_path, sandbox, audited.path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_four_slash_audit_url_is_written_read_and_verified(
    sandbox: SandboxThread, dataset: Dataset, tmp_path: Path
) -> None:
    # sqlite:////abs/path (four slashes) once wrote the file but could not read it back:
    # auditLog answered AUDIT_UNAVAILABLE and `audit verify` failed ("invalid uri authority").
    path = tmp_path / "four" / "audit.db"
    url = f"sqlite:///{path}"
    assert url.startswith("sqlite:////")
    config = gateway_config(sandbox.urls, audit={"url": url})
    server = GatewayServer(create_app(config, Clock(TODAY))).start()
    try:
        client = GraphQLClient(server.url)
        person = dataset.examples["person.restricted"]
        assert _code(_call(client, person, "CREDIT_LOAN", "L-4", "bank")) is None
        answer = client.query(AUDIT_LOG, {"first": 10}, key=KEYS["regulator"])
        assert answer.get("errors") is None, answer
        edges = answer["data"]["auditLog"]["edges"]
        assert [e["node"]["target"] for e in edges] == [_masked(person)]
    finally:
        server.stop()
    assert path.is_file()
    key_sha256 = hashlib.sha256(KEYS["bank"].encode()).hexdigest()
    client_table = "\n".join(
        ["[[clients]]", 'id = "bank-test"', 'role = "bank"', f'key_sha256 = "{key_sha256}"']
    )
    verified = _verify(write_config(tmp_path / "config.toml", url, sandbox.urls, client_table))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "intact: 1 entries" in verified.stdout
