"""`[audit] key_file` (contract §5, 2026-11-30): sealed entries, a sealed head, key handling.

Gateways over real HTTP write the entries, `credit-gateway audit verify` runs as a process,
and the forger works on the SQLite file directly, as someone with write access to it would.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.audit import GENESIS_HASH, AuditOutcome, AuditRequest, chain, entry_hash
from core.clock import Clock
from gateway.app import create_app
from gateway.audit_store import AuditLog, load_audit_key, verify_chain
from gateway.config import ConfigError
from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.cli import UNUSED_URLS, run_cli, write_config
from tests.conftest import TODAY, gateway_config
from tests.servers import GatewayServer, GraphQLClient
from tests.test_person_audit import (
    _assert_audit_unavailable,
    _call,
    _check_chain,
    _code,
    _entries,
)

HEX64 = re.compile(r"[0-9a-f]{64}")


def _make_key(directory: Path, material: bytes | None = None, mode: int = 0o600) -> Path:
    """A key file as docs/privacy.md says to make one (head -c 32 /dev/urandom)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "audit.key"
    key.write_bytes(material if material is not None else hashlib.sha256(b"test").digest())
    key.chmod(mode)
    return key


@dataclass
class Keyed:
    """A store, its key, and how to start a gateway on them."""

    sandbox: SandboxThread
    store: Path
    key: Path

    def start(self, keyed: bool = True) -> GatewayServer:
        audit: dict[str, Any] = {"url": f"sqlite://{self.store}"}
        if keyed:
            audit["key_file"] = str(self.key)
        config = gateway_config(self.sandbox.urls, audit=audit)
        return GatewayServer(create_app(config, Clock(TODAY))).start()

    def config(self, keyed: bool = True) -> Path:
        """A config file as an operator writes it, for `audit verify`."""
        name = "keyed.toml" if keyed else "unkeyed.toml"
        extra = f'key_file = "{self.key}"\n' if keyed else ""
        return write_config(self.store.parent / name, f"sqlite://{self.store}", extra=extra)

    def verify(self, keyed: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli("audit", "verify", "--config", str(self.config(keyed)))

    def rows(self) -> list[dict[str, Any]]:
        with sqlite3.connect(self.store) as db:
            db.row_factory = sqlite3.Row
            rows = [dict(r) for r in db.execute("SELECT * FROM audit_log ORDER BY id")]
        db.close()
        return rows

    def head(self) -> dict[str, Any]:
        return dict(json.loads(self.key.with_name("audit.key.head").read_text()))


@pytest.fixture
def keyed(sandbox: SandboxThread, tmp_path: Path) -> Keyed:
    """A store in one directory and its key in another, as docs/privacy.md advises."""
    return Keyed(sandbox, tmp_path / "store" / "audit.db", _make_key(tmp_path / "keys"))


def _calls(server: GatewayServer, person: str, refs: list[str | None]) -> None:
    client = GraphQLClient(server.url)
    for ref in refs:
        body = _call(client, person, "CREDIT_LOAN", ref, "bank")
        assert _code(body) == (None if ref else "AUTHORIZATION_REQUIRED"), body


def _written(keyed: Keyed, person: str, refs: list[str | None]) -> None:
    server = keyed.start()
    try:
        _calls(server, person, refs)
    finally:
        server.stop()


def _forge(store: Path, first_id: int, **changes: Any) -> None:
    """Alter entry `first_id` and recompute every hash from it on, as a forger without the key
    can: the chain links and hashes are all valid again."""
    with sqlite3.connect(store) as db:
        db.row_factory = sqlite3.Row
        db.execute(
            f"UPDATE audit_log SET {', '.join(f'{k} = ?' for k in changes)} WHERE id = ?",
            (*changes.values(), first_id),
        )
        prev = db.execute("SELECT hash FROM audit_log WHERE id = ?", (first_id - 1,)).fetchone()
        prev_hash = prev[0] if prev else GENESIS_HASH
        for row in list(
            db.execute("SELECT * FROM audit_log WHERE id >= ? ORDER BY id", (first_id,))
        ):
            values = {k: v for k, v in dict(row).items() if k not in ("hash", "seal")}
            values["prev_hash"] = prev_hash
            prev_hash = entry_hash(**values)
            db.execute(
                "UPDATE audit_log SET prev_hash = ?, hash = ? WHERE id = ?",
                (values["prev_hash"], prev_hash, row["id"]),
            )
    db.close()


# --- sealing -----------------------------------------------------------------------------------


def test_entries_are_sealed_and_verify_checks_seals_and_head(
    keyed: Keyed, dataset: Dataset
) -> None:
    _written(keyed, dataset.examples["person.restricted"], ["L-1", None, "L-3"])
    rows = keyed.rows()
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert all(HEX64.fullmatch(r["seal"]) for r in rows)
    head = keyed.head()
    assert (head["sealed_from"], head["id"], head["hash"]) == (1, 3, rows[-1]["hash"])
    # The head is replaced by rename: no temporary file is left beside it.
    assert sorted(p.name for p in keyed.key.parent.iterdir()) == [
        "audit.key",
        "audit.key.head",
        "audit.key.head.lock",
    ]
    result = keyed.verify()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "audit chain intact: 3 entries",
        "sealed with [audit] key_file: 3; unsealed, written before the key: 0; "
        "sealed head: entry 3",
    ]


def test_a_chain_rewritten_and_recomputed_without_the_key_is_caught(
    keyed: Keyed, dataset: Dataset
) -> None:
    _written(keyed, dataset.examples["person.restricted"], ["L-1", "L-2", "L-3"])
    _forge(keyed.store, 2, client_id="someone-else", authorization_ref="FORGED")
    # Without the key a recomputed chain looks intact: that is what the key is for.
    unkeyed = keyed.verify(keyed=False)
    assert unkeyed.returncode == 0, unkeyed.stderr
    assert "not detected" in unkeyed.stderr
    result = keyed.verify()
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("audit chain broken at entry 2: seal does not match")
    assert "Traceback" not in result.stderr


def test_seals_stripped_from_a_recomputed_chain_are_caught(keyed: Keyed, dataset: Dataset) -> None:
    _written(keyed, dataset.examples["person.restricted"], ["L-1", "L-2"])
    _forge(keyed.store, 1, authorization_ref="FORGED")
    with sqlite3.connect(keyed.store) as db:
        db.execute("UPDATE audit_log SET seal = NULL")
    db.close()
    result = keyed.verify()
    assert result.returncode == 1
    assert result.stderr.startswith("audit chain broken at entry 1: no seal where entries")


def test_newest_entries_cut_off_are_caught_by_the_head(keyed: Keyed, dataset: Dataset) -> None:
    person = dataset.examples["person.restricted"]
    _written(keyed, person, ["L-1", "L-2", "L-3", "L-4"])
    with sqlite3.connect(keyed.store) as db:
        db.execute("DELETE FROM audit_log WHERE id > 2")
    db.close()
    result = keyed.verify()
    assert result.returncode == 1
    assert result.stderr.startswith(
        "audit chain broken at entry 3: entries 3-4 are missing: the sealed head says the "
        "chain reached entry 4"
    )
    # Nor does a restarted gateway append to the shortened chain, which would hide the cut.
    server = keyed.start()
    try:
        _assert_audit_unavailable(
            _call(GraphQLClient(server.url), person, "CREDIT_LOAN", "L-5", "bank")
        )
    finally:
        server.stop()
    assert [r["id"] for r in keyed.rows()] == [1, 2]


def test_a_store_deleted_and_made_anew_at_restart_is_refused(
    keyed: Keyed, dataset: Dataset
) -> None:
    person = dataset.examples["person.restricted"]
    _written(keyed, person, ["L-1", "L-2"])
    for file in keyed.store.parent.iterdir():
        file.unlink()  # rm audit.db*
    server = keyed.start()
    try:
        _assert_audit_unavailable(
            _call(GraphQLClient(server.url), person, "CREDIT_LOAN", "L-3", "bank")
        )
    finally:
        server.stop()
    result = keyed.verify()
    assert result.returncode == 1
    assert "entries 1-2 are missing" in result.stderr


def test_a_head_rewritten_without_the_key_is_caught(keyed: Keyed, dataset: Dataset) -> None:
    person = dataset.examples["person.restricted"]
    _written(keyed, person, ["L-1", "L-2", "L-3"])
    rows = keyed.rows()
    head_file = keyed.key.with_name("audit.key.head")
    head = keyed.head()
    # The forger cuts entry 3 and moves the head back to entry 2, keeping the old seal.
    head.update(id=2, hash=rows[1]["hash"])
    head_file.write_text(json.dumps(head))
    with sqlite3.connect(keyed.store) as db:
        db.execute("DELETE FROM audit_log WHERE id = 3")
    db.close()
    result = keyed.verify()
    assert result.returncode == 1
    assert "does not match the key" in result.stderr
    server = keyed.start()
    try:
        _assert_audit_unavailable(
            _call(GraphQLClient(server.url), person, "CREDIT_LOAN", "L-4", "bank")
        )
    finally:
        server.stop()


async def test_two_gateways_sharing_a_keyed_store_keep_one_sealed_chain(tmp_path: Path) -> None:
    key = load_audit_key(_make_key(tmp_path / "keys"))
    url = f"sqlite://{tmp_path / 'audit.db'}"
    logs = [AuditLog(url, key=key), AuditLog(url, key=key)]
    for log in logs:
        await log.start()
    try:
        # Heads are written after each commit; out-of-order writers must not set it back.
        await asyncio.gather(*(logs[n % 2].record(_request(n)) for n in range(60)))
    finally:
        for log in logs:
            await log.close()
    result = verify_chain(url, key)
    assert result.ok, result.problem
    assert (result.entries, result.sealed, result.head_id) == (60, 60, 60)


def _request(n: int, ref: str = "L") -> AuditRequest:
    return AuditRequest(
        at=Clock(TODAY).now(),
        client_id=f"bank-{n % 2}",
        role="bank",
        operation="person",
        purpose="CREDIT_LOAN",
        authorization_ref=f"{ref}-{n}",
        target="610802********0021",
        outcome=AuditOutcome.GRANTED,
        reason=None,
    )


# --- stores written before the key -------------------------------------------------------------

# The audit_log table as gateways before 2026-11-30 created it: no seal column.
_OLD_SCHEMA = """
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, client_id TEXT NOT NULL, role TEXT NOT NULL,
    operation TEXT NOT NULL, purpose TEXT, authorization_ref TEXT, target TEXT NOT NULL,
    outcome TEXT NOT NULL, reason TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX audit_log_client ON audit_log (client_id, id);
"""


def _old_store(path: Path, count: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(_OLD_SCHEMA)
        prev = GENESIS_HASH
        for n in range(1, count + 1):
            request = _request(n, "OLD")
            entry = chain(n, request, prev)
            prev = entry.hash
            db.execute(
                "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.id,
                    entry.at.isoformat(),
                    entry.client_id,
                    entry.role,
                    entry.operation,
                    entry.purpose,
                    entry.authorization_ref,
                    entry.target,
                    entry.outcome.value,
                    entry.reason,
                    entry.prev_hash,
                    entry.hash,
                ),
            )
    db.close()


def test_an_old_store_is_migrated_and_its_entries_reported_unsealed(
    keyed: Keyed, dataset: Dataset
) -> None:
    _old_store(keyed.store, 2)
    # Before any gateway touched it, both kinds of verify read the old store.
    before = keyed.verify()
    assert before.returncode == 0, before.stderr
    assert "unsealed, written before the key: 2; sealed head: none yet" in before.stdout
    server = keyed.start()
    try:
        _calls(server, dataset.examples["person.restricted"], ["L-3", "L-4"])
        entries = _entries(GraphQLClient(server.url))
    finally:
        server.stop()
    assert [e["authorizationRef"] for e in entries] == ["L-4", "L-3", "OLD-2", "OLD-1"]
    _check_chain(entries)
    assert [r["seal"] is None for r in keyed.rows()] == [True, True, False, False]
    result = keyed.verify()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "audit chain intact: 4 entries",
        "sealed with [audit] key_file: 2; unsealed, written before the key: 2; "
        "sealed head: entry 4",
    ]
    # A sealed entry followed by an unsealed one is a removed seal, not an old entry.
    with sqlite3.connect(keyed.store) as db:
        db.execute("UPDATE audit_log SET seal = NULL WHERE id = 4")
    db.close()
    broken = keyed.verify()
    assert broken.returncode == 1
    assert broken.stderr.startswith("audit chain broken at entry 4: no seal where entries")


def test_an_unkeyed_gateway_does_not_append_to_a_sealed_store(
    keyed: Keyed, dataset: Dataset
) -> None:
    person = dataset.examples["person.restricted"]
    _written(keyed, person, ["L-1"])
    server = keyed.start(keyed=False)
    try:
        _assert_audit_unavailable(
            _call(GraphQLClient(server.url), person, "CREDIT_LOAN", "L-2", "bank")
        )
    finally:
        server.stop()
    assert keyed.verify().returncode == 0


# --- the key file ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("material", "problem"),
    [
        (None, "cannot be read"),
        (b"", "is empty"),
        (b"\n\n", "is empty"),
        (b"k" * 31, "holds 31 bytes, at least 32"),
    ],
    ids=["missing", "empty", "blank", "short"],
)
@pytest.mark.parametrize("command", [("serve", "--port", "9"), ("audit", "verify")])
def test_a_bad_key_file_stops_serve_and_verify(
    tmp_path: Path, material: bytes | None, problem: str, command: tuple[str, ...]
) -> None:
    key = tmp_path / "audit.key"
    if material is not None:
        key.write_bytes(material)
    config = write_config(
        tmp_path / "config.toml",
        f"sqlite://{tmp_path / 'audit.db'}",
        UNUSED_URLS,
        extra=f'key_file = "{key}"',
    )
    result = run_cli(*command, "--config", str(config))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"[audit] key_file {key} {problem}" in result.stderr
    assert "head -c 32 /dev/urandom" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "audit.db").exists()


def test_a_key_readable_by_others_is_warned_about(
    tmp_path: Path, sandbox: SandboxThread, caplog: pytest.LogCaptureFixture
) -> None:
    key = _make_key(tmp_path, mode=0o644)
    config = gateway_config(
        sandbox.urls, audit={"url": f"sqlite://{tmp_path / 'a.db'}", "key_file": str(key)}
    )
    with caplog.at_level(logging.WARNING, logger="gateway.audit_store"):
        create_app(config, Clock(TODAY))
    assert "readable or writable by group or others (mode 644)" in caplog.text
    caplog.clear()
    key.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="gateway.audit_store"):
        create_app(config, Clock(TODAY))
    assert "group or others" not in caplog.text


def test_the_key_is_read_once_at_start(keyed: Keyed, dataset: Dataset) -> None:
    server = keyed.start()
    try:
        material = keyed.key.read_bytes()
        keyed.key.write_bytes(b"x" * 32)  # changed under the running gateway: not reread
        _calls(server, dataset.examples["person.restricted"], ["L-1"])
    finally:
        server.stop()
    keyed.key.write_bytes(material)
    assert keyed.verify().returncode == 0
    keyed.key.unlink()
    # At the next start the key must be there again.
    with pytest.raises(ConfigError, match=r"\[audit\] key_file .* cannot be read"):
        keyed.start()


def test_only_an_unkeyed_gateway_warns_at_start(
    keyed: Keyed, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.runtime"):
        keyed.start(keyed=False).stop()
    assert "is unkeyed: set [audit] key_file" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gateway.runtime"):
        keyed.start().stop()
    assert "unkeyed" not in caplog.text
