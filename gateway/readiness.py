"""Readiness (/readyz, contract §10): whether this replica should be sent traffic now.

A list of named checks, each cheap, local and bounded in time: no department is called. The
answer is 200 when every check is ready, else 503; either way the body names each check's
state. It is polled every few seconds by load balancers and orchestrators, and open to
anyone (like /healthz), so one result is shared by every caller for KEPT_S.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse

from adapters.base import Adapter
from core.audit import AuditUnavailable
from core.sources import SourceState
from gateway.audit_store import AuditLog, StoreChanged
from gateway.redis_cache import RedisBackend
from store.database import Database

log = logging.getLogger(__name__)

# Each check's bound; they run together, so an answer takes about this long at worst.
CHECK_TIMEOUT_S = 1.0
# How long the audit probe waits for another process's write lock: a writer holds it for
# one commit (milliseconds); longer means the store is stuck for our writes too.
AUDIT_LOCK_WAIT_S = 0.25
# A result is shared this long: polls every few seconds, from several probers, or a flood
# of anonymous requests cost the audit writer at most one probe a second.
KEPT_S = 1.0
OK = "ok"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's state: ready or not, what the body says, and for the log why."""

    ready: bool
    detail: str = OK
    # For operators only (paths, SQLite's words): logged when the check changes, never shown.
    cause: str | None = None


Check = Callable[[], Awaitable[CheckResult]]


@dataclass(frozen=True, slots=True)
class Report:
    """The answer of /readyz."""

    ready: bool
    checks: dict[str, str]


class Readiness:
    """Runs the runtime's checks, shares the result, and logs every change of a check."""

    def __init__(
        self,
        checks: Callable[[], Sequence[tuple[str, Check]]],
        timeout_s: float = CHECK_TIMEOUT_S,
        kept_s: float = KEPT_S,
    ) -> None:
        # A function, read at each report: the file sources exist only once started.
        self._checks = checks
        self._timeout_s = timeout_s
        self._kept_s = kept_s
        self._kept: tuple[float, Report] | None = None
        self._flight: asyncio.Task[Report] | None = None
        self._last: dict[str, bool] = {}

    async def report(self) -> Report:
        """The kept report while fresh, else the one being made, else a new one."""
        kept = self._kept
        if kept is not None and time.monotonic() - kept[0] < self._kept_s:
            return kept[1]
        if self._flight is None:
            self._flight = asyncio.create_task(self._run())
            self._flight.add_done_callback(self._landed)
        # Shielded: a prober that hangs up does not cancel the others' report.
        return await asyncio.shield(self._flight)

    async def _run(self) -> Report:
        checks = list(self._checks())
        results = await asyncio.gather(*(self._bounded(check) for _, check in checks))
        states = {name: result for (name, _), result in zip(checks, results, strict=True)}
        for name, result in states.items():
            if self._last.get(name, True) != result.ready:
                if result.ready:
                    log.info("readiness: %s is ready again", name)
                else:
                    log.warning(
                        "readiness: %s is not ready: %s", name, result.cause or result.detail
                    )
            self._last[name] = result.ready
        return Report(
            ready=all(r.ready for r in states.values()),
            checks={name: r.detail for name, r in states.items()},
        )

    async def _bounded(self, check: Check) -> CheckResult:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await check()
        except TimeoutError:
            return CheckResult(False, f"no answer within {self._timeout_s:g} s")

    def _landed(self, flight: asyncio.Task[Report]) -> None:
        self._flight = None
        if not flight.cancelled() and flight.exception() is None:
            self._kept = (time.monotonic(), flight.result())


def audit_check(audit: AuditLog) -> Check:
    """The audit store can be written now (AuditLog.check_writable), nothing appended."""

    async def check() -> CheckResult:
        try:
            await audit.check_writable(AUDIT_LOCK_WAIT_S)
        except AuditUnavailable as exc:
            return CheckResult(False, "not running", str(exc))
        except StoreChanged as exc:
            return CheckResult(False, "the store was deleted, replaced or cut short", str(exc))
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return CheckResult(False, "locked by another writer", str(exc))
            return CheckResult(False, "cannot be opened or written", str(exc))
        except TimeoutError as exc:
            # Before OSError, of which it is a kind: a lock wait (PostgreSQL's head row) or a
            # probe still running on the writer.
            if "lock" in str(exc):
                return CheckResult(False, "locked by another writer", str(exc))
            return CheckResult(False, "the audit writer is busy", str(exc))
        except (sqlite3.Error, OSError) as exc:
            return CheckResult(False, "cannot be opened or written", str(exc))
        return CheckResult(True)

    return check


def store_check(db: Database) -> Check:
    """The state store (bulk checks) takes a write transaction now; nothing is written."""

    async def check() -> CheckResult:
        try:
            await db.check_writable()
        except Exception as exc:  # sqlite3, psycopg and OS errors alike: the store is down
            return CheckResult(False, "cannot be opened or written", f"{type(exc).__name__}: {exc}")
        return CheckResult(True)

    return check


def cache_check(backend: RedisBackend) -> Check:
    """[cache] url: Redis answers a PING. Never unready: without it this replica works
    in-process at its share of the budgets (contract §11), so it still takes traffic."""

    async def check() -> CheckResult:
        if await backend.probe():
            return CheckResult(True)
        return CheckResult(True, "unreachable, in-process fallback", backend.cause)

    return check


def snapshot_check(adapter: Adapter) -> Check:
    """A file source (water) has a snapshot to answer from; its state costs no call.

    A snapshot older than max_age_s still counts: it is served (its facts shown, STALE, the
    subject INCOMPLETE rather than CLEAR), and its age is the department's, shared by every
    replica, so taking them all out of service would turn partial answers into none.
    """

    async def check() -> CheckResult:
        health = await adapter.health()
        if health.state is SourceState.UNAVAILABLE:
            return CheckResult(False, "no snapshot yet", health.message)
        if health.state is SourceState.STALE:
            return CheckResult(True, "stale snapshot, served", health.message)
        return CheckResult(True)

    return check


async def readyz(request: Request) -> JSONResponse:
    """GET /readyz: 200 when every check is ready, else 503; the body names each check."""
    report = await request.app.state.runtime.readiness.report()
    body = {"status": "ready" if report.ready else "not ready", "checks": report.checks}
    return JSONResponse(
        body, status_code=200 if report.ready else 503, headers={"Cache-Control": "no-store"}
    )
