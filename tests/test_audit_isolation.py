"""One bad audit entry never fails another's write (group commit keeps its callers apart).

The store is tested on real SQLite files; the gateway over real HTTP, with a request body
carrying a lone surrogate as clients can send it (JSON escapes it as \\ud800).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.audit import AuditOutcome, AuditRequest, AuditUnavailable, unstorable
from gateway.audit_store import AuditLog, verify_chain
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from schema.personal_access import audited_reference
from tests.servers import KEYS, GraphQLClient
from tests.test_person_audit import PERSON, Audited, _call, _check_chain, _code, _entries, _start

CST = timezone(timedelta(hours=8))
LEGITIMATE = 40
GUARD_MESSAGE = "authorizationRef is not valid Unicode text (it holds a lone surrogate)"


@pytest.fixture
def audited(sandbox: SandboxThread, tmp_path: Path) -> Iterator[Audited]:
    """A fresh gateway whose audit log starts empty (as in tests/test_person_audit.py)."""
    path = tmp_path / "audit.db"
    server = _start(sandbox, path)
    yield Audited(GraphQLClient(server.url), path)
    server.stop()


def _request(n: int, target: str = "610802********0021") -> AuditRequest:
    return AuditRequest(
        at=datetime(2026, 3, 2, 9, 30, tzinfo=CST) + timedelta(seconds=n),
        client_id="bank-a",
        role="bank",
        operation="person",
        purpose="CREDIT_LOAN",
        authorization_ref=f"LOAN-{n:02d}",
        target=target,
        outcome=AuditOutcome.GRANTED,
        reason=None,
    )


async def _together(audit: AuditLog, poison: AuditRequest) -> list[Any]:
    """40 good entries and the poison, queued at once so they meet in one batch."""
    calls = [audit.record(_request(n)) for n in range(LEGITIMATE)]
    calls.insert(LEGITIMATE // 2, audit.record(poison))
    return await asyncio.gather(*calls, return_exceptions=True)


@pytest.mark.parametrize(
    "field", ["target", "authorization_ref", "client_id"], ids=lambda f: f"surrogate in {f}"
)
async def test_an_entry_that_cannot_be_stored_is_refused_alone(tmp_path: Path, field: str) -> None:
    audit = AuditLog(f"sqlite://{tmp_path / 'audit.db'}")
    await audit.start()
    try:
        poison = _request(99)
        poison = AuditRequest(**{**_fields(poison), field: "\ud800"})
        assert unstorable(poison) is not None
        results = await _together(audit, poison)
    finally:
        await audit.close()
    refused = results.pop(LEGITIMATE // 2)
    assert all(not isinstance(r, BaseException) for r in results), results
    assert isinstance(refused, AuditUnavailable) and "lone surrogate" in str(refused)
    assert sorted(r.authorization_ref for r in results) == [
        f"LOAN-{n:02d}" for n in range(LEGITIMATE)
    ]
    result = verify_chain(f"sqlite://{tmp_path / 'audit.db'}")
    assert result.ok and result.entries == LEGITIMATE


async def test_an_entry_the_store_rejects_fails_only_itself(tmp_path: Path) -> None:
    # Whatever in one row makes SQLite refuse the INSERT (here a trigger an operator added)
    # must cost that row only: the batch is retried entry by entry.
    path = tmp_path / "audit.db"
    audit = AuditLog(f"sqlite://{path}")
    await audit.start()
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_log WHEN NEW.target = 'refused' "
            "BEGIN SELECT RAISE(ABORT, 'this row is refused'); END"
        )
    db.close()
    try:
        results = await _together(audit, _request(99, target="refused"))
        commits = audit.commits
    finally:
        await audit.close()
    refused = results.pop(LEGITIMATE // 2)
    assert all(not isinstance(r, BaseException) for r in results), results
    assert isinstance(refused, AuditUnavailable) and "this row is refused" in str(refused)
    assert sorted(r.id for r in results) == list(range(1, LEGITIMATE + 1))
    assert commits >= 1
    result = verify_chain(f"sqlite://{path}")
    assert result.ok and result.entries == LEGITIMATE


def _fields(request: AuditRequest) -> dict[str, Any]:
    return {name: getattr(request, name) for name in AuditRequest.__dataclass_fields__}


def test_the_guard_makes_odd_text_storable() -> None:
    # What the person guard writes for a reference with a lone surrogate: its escape.
    stored = audited_reference("LOAN-\ud800-1")
    assert stored == "LOAN-\\ud800-1"
    assert stored.encode("utf-8")


def _poisoned_call(url: str, person: str) -> httpx.Response:
    # httpx's json= cannot encode a lone surrogate; json.dumps escapes it as ASCII.
    body = json.dumps(
        {
            "query": PERSON,
            "variables": {"id": person, "purpose": "CREDIT_LOAN", "ref": "LOAN-\ud800"},
        }
    )
    return httpx.post(
        f"{url}/graphql",
        content=body.encode("ascii"),
        headers={"Authorization": f"Bearer {KEYS['bank']}", "Content-Type": "application/json"},
        timeout=60,
    )


def test_a_lone_surrogate_does_not_deny_the_calls_around_it(
    audited: Audited, dataset: Dataset
) -> None:
    person = dataset.examples["person.multi_company"]
    refs = [f"LOAN-{n:02d}" for n in range(LEGITIMATE)]
    start = threading.Barrier(LEGITIMATE + 1)

    def legitimate(ref: str) -> Any:
        start.wait()
        return _call(audited.client, person, "CREDIT_LOAN", ref, "bank")

    def poisoned() -> httpx.Response:
        start.wait()
        return _poisoned_call(audited.client.base_url, person)

    with ThreadPoolExecutor(max_workers=LEGITIMATE + 1) as pool:
        odd = pool.submit(poisoned)
        bodies = list(pool.map(legitimate, refs))
        odd_response = odd.result()

    assert [_code(body) for body in bodies] == [None] * LEGITIMATE
    assert all(body["data"]["person"]["idNumberMasked"] for body in bodies)
    odd_body = odd_response.json()
    assert odd_body["data"] is None or odd_body["data"]["person"] is None
    assert _code(odd_body) == "INVALID_ARGUMENT", odd_body

    entries = _entries(audited.client)
    granted = [e for e in entries if e["outcome"] == "GRANTED"]
    assert sorted(e["authorizationRef"] for e in granted) == refs
    denied = [e for e in entries if e["outcome"] == "DENIED"]
    if odd_body["errors"][0]["message"] == GUARD_MESSAGE:
        # The person guard refused it, so it wrote it: DENIED, its text made storable.
        (entry,) = denied
        assert (entry["authorizationRef"], entry["reason"]) == ("LOAN-\\ud800", "INVALID_ARGUMENT")
    else:
        # Refused at the request boundary, before any resolver ran: like a query that does
        # not parse, it never became a person call, and no guard saw it to log it.
        assert denied == []
    _check_chain(entries)
