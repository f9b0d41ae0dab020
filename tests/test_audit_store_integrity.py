"""The audit store named by the config is the one written to, or the call is denied.

Files are deleted, replaced, cut short and made read-only under a running gateway, over
real HTTP; docs/privacy.md says what the gateway does in each case.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sandbox.model import Dataset
from sandbox.runner import SandboxThread
from tests.servers import GraphQLClient
from tests.test_person_audit import (
    _assert_audit_unavailable,
    _call,
    _check_chain,
    _code,
    _entries,
    _person_requests,
    _start,
)


def _store_files(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm")]


def _granted(client: GraphQLClient, person: str, ref: str) -> None:
    body = _call(client, person, "CREDIT_LOAN", ref, "bank")
    assert _code(body) is None, body
    assert body["data"]["person"]["idNumberMasked"]


@pytest.mark.parametrize(
    "removed",
    [("", "-wal", "-shm"), ("-wal",), ("",)],
    ids=["rm audit.db*", "rm audit.db-wal", "rm audit.db"],
)
def test_a_store_deleted_while_running_denies_and_is_not_made_anew(
    sandbox: SandboxThread, dataset: Dataset, tmp_path: Path, removed: tuple[str, ...]
) -> None:
    path = tmp_path / "audit.db"
    server = _start(sandbox, path)
    person = dataset.examples["person.restricted"]
    granted = ["L-1"]
    try:
        client = GraphQLClient(server.url)
        _granted(client, person, "L-1")
        for suffix in removed:
            path.with_name(path.name + suffix).unlink()
        before = _person_requests(sandbox)
        # Written to a deleted inode, the entry would vanish at the next restart.
        _assert_audit_unavailable(_call(client, person, "CREDIT_LOAN", "L-2", "bank"))
        assert _person_requests(sandbox) == before
        later = _call(client, person, "CREDIT_LOAN", "L-3", "bank")
        if _code(later) is None:
            granted.append("L-3")
        else:
            _assert_audit_unavailable(later)
    finally:
        server.stop()
    if removed[0] == "":
        # No new, empty chain silently stands in for the history that went: the gateway
        # denies until an operator restores the store or restarts it.
        assert granted == ["L-1"]
        assert not path.exists()
    else:
        # Only the write-ahead log went: closing the connection checkpoints what it held
        # into the store, and the gateway goes on only once its last entry is there.
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            refs = [r for (r,) in db.execute("SELECT authorization_ref FROM audit_log")]
        db.close()
        assert refs == granted


def test_a_store_replaced_while_running_denies_until_restored(
    sandbox: SandboxThread, dataset: Dataset, tmp_path: Path
) -> None:
    path = tmp_path / "audit.db"
    aside = tmp_path / "aside"
    aside.mkdir()
    server = _start(sandbox, path)
    person = dataset.examples["person.restricted"]
    try:
        client = GraphQLClient(server.url)
        _granted(client, person, "L-1")
        for file in _store_files(path):
            if file.exists():
                file.rename(aside / file.name)
        # Someone puts an empty store of the same shape in its place.
        sqlite3.connect(path).close()
        _assert_audit_unavailable(_call(client, person, "CREDIT_LOAN", "L-2", "bank"))
        # Restored (the very files, moved back): the chain goes on where it was.
        for file in _store_files(path):
            file.unlink(missing_ok=True)
            if (aside / file.name).exists():
                (aside / file.name).rename(file)
        _granted(client, person, "L-3")
        entries = _entries(client)
    finally:
        server.stop()
    assert [(e["id"], e["authorizationRef"]) for e in entries] == [("2", "L-3"), ("1", "L-1")]
    _check_chain(entries)


def test_a_store_cut_short_while_running_denies(
    sandbox: SandboxThread, dataset: Dataset, tmp_path: Path
) -> None:
    path = tmp_path / "audit.db"
    server = _start(sandbox, path)
    person = dataset.examples["person.restricted"]
    try:
        client = GraphQLClient(server.url)
        for ref in ("L-1", "L-2", "L-3"):
            _granted(client, person, ref)
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM audit_log WHERE id > 1")
        db.close()
        # Appending entry 2 again would hide the cut: the chain would verify.
        _assert_audit_unavailable(_call(client, person, "CREDIT_LOAN", "L-4", "bank"))
    finally:
        server.stop()


@contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """The file cannot be opened for writing, by anyone, until the block ends."""
    if os.geteuid() == 0:
        # Root ignores permission bits; the immutable attribute binds root too (ext4, xfs,
        # btrfs: CAP_LINUX_IMMUTABLE, which root in this suite's container has).
        made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"chattr +i is not available here: {made.stderr.strip()}")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(mode)


def test_a_store_read_only_at_start_is_written_once_writable(
    sandbox: SandboxThread, dataset: Dataset, tmp_path: Path
) -> None:
    path = tmp_path / "audit.db"
    person = dataset.examples["person.restricted"]
    first = _start(sandbox, path)
    try:
        _granted(GraphQLClient(first.url), person, "L-1")
    finally:
        first.stop()
    server = None
    try:
        with _read_only(path):
            with pytest.raises(PermissionError):
                path.open("r+b").close()  # really read-only, for whoever runs the suite
            # SQLite opens a file it cannot write read-only, and that connection stays so.
            server = _start(sandbox, path)
            client = GraphQLClient(server.url)
            _assert_audit_unavailable(_call(client, person, "CREDIT_LOAN", "L-2", "bank"))
        # Permissions fixed: the next call opens the store afresh and is written.
        _granted(client, person, "L-3")
        entries = _entries(client)
    finally:
        if server is not None:
            server.stop()
    assert [(e["id"], e["authorizationRef"]) for e in entries] == [("2", "L-3"), ("1", "L-1")]
    _check_chain(entries)


def test_a_restart_after_the_store_was_deleted_starts_a_new_unkeyed_chain(
    sandbox: SandboxThread, dataset: Dataset, tmp_path: Path
) -> None:
    # Documented (docs/privacy.md): without [audit] key_file nothing outside the store
    # remembers its length, so a restart begins a new chain; tests/test_audit_key.py shows
    # the keyed gateway refusing instead.
    path = tmp_path / "audit.db"
    person = dataset.examples["person.restricted"]
    server = _start(sandbox, path)
    try:
        _granted(GraphQLClient(server.url), person, "L-1")
    finally:
        server.stop()
    shutil.move(path, tmp_path / "evidence.db")
    server = _start(sandbox, path)
    try:
        client = GraphQLClient(server.url)
        _granted(client, person, "L-2")
        entries = _entries(client)
    finally:
        server.stop()
    assert [(e["id"], e["authorizationRef"]) for e in entries] == [("1", "L-2")]
