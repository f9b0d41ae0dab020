"""The state store's two engines for tests: a SQLite file, or a fresh PostgreSQL database.

PostgreSQL is the machine's (127.0.0.1:5432, trust); each test gets a database of its own,
dropped afterwards. Without a server the PostgreSQL cases skip with the reason, except
under CI=true, where they fail: CI must run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

SERVER = os.environ.get("CREDIT_GATEWAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def _admin_url() -> str:
    return SERVER


@contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a new, empty database on the test server; dropped when the block ends."""
    import psycopg

    name = f"cg_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(_admin_url(), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        reason = f"no PostgreSQL at {SERVER}: {str(exc).strip().splitlines()[0]}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the PostgreSQL store tests")
        pytest.skip(reason)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield SERVER.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def store_url(backend: str, sqlite_file: str) -> Iterator[str]:
    """A [store] url of the backend: the given SQLite file, or a fresh PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite://{sqlite_file}"
        return
    with postgres_database() as url:
        yield url
