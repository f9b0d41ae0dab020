"""Shared fixtures: a pinned clock, the sandbox departments and the gateway over real HTTP."""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date
from typing import Any

import aiohttp
import pytest

# Every date in the tests comes from this pinned day (contract §2), set before any import
# of the gateway reads the environment.
os.environ["CREDIT_GATEWAY_TODAY"] = "2026-05-20"
TODAY = date(2026, 5, 20)

from core.clock import Clock  # noqa: E402
from gateway.app import create_app  # noqa: E402
from gateway.config import GatewayConfig, parse_config  # noqa: E402
from sandbox.generator import generate  # noqa: E402
from sandbox.model import Dataset  # noqa: E402
from sandbox.runner import SandboxServers, SandboxThread  # noqa: E402
from tests.sandbox_support import build_dataset, quiet_faults  # noqa: E402
from tests.servers import KEYS, GatewayServer, GraphQLClient  # noqa: E402

PURPOSES = {
    "partner": [],
    "bank": ["CREDIT_LOAN"],
    "regulator": ["ADMINISTRATIVE_REVIEW", "SUPERVISION", "JUDICIAL"],
}
# The courts' documented 50 requests/s would make every test wait; the sandbox tests and
# the courts adapter tests exercise that limit, the rest run with a higher one.
FAST_COURTS_RPS = 5000
# Gateways of the other test modules switch departments off and on between tests: an answer
# cached or kept for stale use, or a breaker left open, would carry one test's state into
# the next. tests/test_resilience.py turns these on for the gateways it builds.
NO_CACHE_NO_BREAKER = {
    "cache_ttl_s": 0,
    "stale_ttl_s": 0,
    "health_ttl_s": 0,
    "breaker_failures": 0,
}
# The suite sends requests far faster than any client should; tests/test_limits.py gives
# the gateways it builds the rates it tests.
UNTHROTTLED = {"rate_per_s": 1_000_000, "burst": 1_000_000}
# Every gateway a test builds gets its own audit database here, never under /var/lib.
_AUDIT_DIR = tempfile.TemporaryDirectory(prefix="credit-gateway-audit-")
_AUDIT_NUMBERS = itertools.count(1)


def state_url() -> str:
    """A fresh SQLite state store ([store] url) beside the audit stores."""
    return f"sqlite://{_AUDIT_DIR.name}/state-{next(_AUDIT_NUMBERS)}.db"


def audit_url() -> str:
    """A fresh SQLite audit store in the session's temporary directory."""
    return f"sqlite://{_AUDIT_DIR.name}/audit-{next(_AUDIT_NUMBERS)}.db"


def gateway_config(
    urls: dict[str, str],
    audit: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
    tables: dict[str, Any] | None = None,
    **sources: dict[str, Any],
) -> GatewayConfig:
    """A config over the given department URLs with the test clients; per-source overrides.

    `tables`: further top-level tables as a TOML file would hold them ({"metrics": {…}}).
    """
    table: dict[str, Any] = {
        **(tables or {}),
        "audit": audit or {"url": audit_url()},
        "limits": {**UNTHROTTLED, **(limits or {})},
        "sources": {
            name: {
                "url": url,
                "timeout_s": 2.0,
                # Water answers from its own snapshot: it has no answer cache or breaker.
                **(NO_CACHE_NO_BREAKER if name != "water" else {}),
                **sources.get(name, {}),
            }
            for name, url in urls.items()
        },
        "clients": [
            {
                "id": f"{role}-test",
                "role": role,
                "key_sha256": hashlib.sha256(key.encode()).hexdigest(),
                "purposes": PURPOSES[role],
            }
            for role, key in KEYS.items()
        ],
    }
    # Each gateway its own state store, as each has its own audit store.
    table.setdefault("store", {"url": state_url()})
    table["sources"]["courts"].setdefault("max_rps", FAST_COURTS_RPS)
    table["sources"]["courts"].setdefault("max_concurrency", 16)
    return parse_config(table)


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A test running the command line in-process (its configure_logging) leaves no handler
    on pytest's captured stream behind, which later tests' log lines would hit closed."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    """The generated dataset every end-to-end test reads its examples from."""
    return generate(seed=7, subjects=400, today=TODAY)


@pytest.fixture(scope="session")
def sandbox(dataset: Dataset) -> Iterator[SandboxThread]:
    """The four department servers on free loopback ports."""
    servers = SandboxThread(dataset)
    servers.start()
    servers.set_faults("courts", rate_limit_rps=FAST_COURTS_RPS)
    yield servers
    servers.stop()


@pytest.fixture
def faults(sandbox: SandboxThread) -> Iterator[SandboxThread]:
    """The sandbox for a test that injects faults; they are cleared afterwards."""
    yield sandbox
    sandbox.clear_faults()
    sandbox.set_faults("courts", rate_limit_rps=FAST_COURTS_RPS)


@pytest.fixture(scope="session")
def gateway(sandbox: SandboxThread) -> Iterator[GatewayServer]:
    """The gateway app served by uvicorn over the sandbox."""
    server = GatewayServer(create_app(gateway_config(sandbox.urls), Clock(TODAY))).start()
    yield server
    server.stop()


GatewayFactory = Callable[..., GatewayServer]


@pytest.fixture
def make_gateway(sandbox: SandboxThread) -> Iterator[GatewayFactory]:
    """Gateways of their own over the session sandbox (gateway_config's overrides)."""
    started: list[GatewayServer] = []

    def factory(**overrides: Any) -> GatewayServer:
        server = GatewayServer(create_app(gateway_config(sandbox.urls, **overrides), Clock(TODAY)))
        started.append(server.start())
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def client(gateway: GatewayServer) -> GraphQLClient:
    """An anonymous GraphQL client of the session gateway."""
    return GraphQLClient(gateway.url)


@pytest.fixture(scope="module")
async def servers() -> AsyncIterator[SandboxServers]:
    """The small hand-made dataset's departments in the test loop, one set per module."""
    sandbox = await SandboxServers.start(build_dataset(), faults=quiet_faults())
    yield sandbox
    await sandbox.stop()


@pytest.fixture(scope="module")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A raw HTTP client for the sandbox tests, one per module."""
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def reset_sandbox_faults(servers: SandboxServers) -> Iterator[None]:
    """Used by the sandbox test modules: every test starts with initial knobs and no counts."""
    yield
    for state in servers.faults.values():
        state.reset()
    servers.reset_counts()
