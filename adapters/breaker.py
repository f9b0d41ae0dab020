"""Circuit breaker of one department: stop calling a department that keeps failing."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from adapters.base import SourceConfig
from adapters.options import knob, read_options
from core.clock import Clock
from core.records import Department
from core.sources import FailureKind, SourceError

log = logging.getLogger(__name__)

DEFAULT_FAILURES = 5
DEFAULT_COOLDOWN_S = 30.0


class BreakerState(enum.StrEnum):
    """Closed: calls go out. Open: calls fail fast. Half-open: one probe call goes out."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass(frozen=True, slots=True)
class BreakerOptions:
    """Circuit-breaker knobs of a live department's table; 0 failures switches it off."""

    breaker_failures: int = knob(DEFAULT_FAILURES, minimum=0, maximum=1000)
    breaker_cooldown_s: float = knob(DEFAULT_COOLDOWN_S, above=0, maximum=3600)


class CircuitBreaker:
    """One per live department, consulted by its SourceHttp before every call.

    It opens after `failures` calls in a row failed (after their retries), fails calls fast
    for `cooldown_s` without touching the network, then lets one probe call through: its
    success closes the breaker, its failure opens it for another cool-down. Calls arriving
    while the probe is out wait for its outcome (within their own budget) rather than fail,
    since the probe is usually one of several calls of the same lookup. 0 failures
    switches the breaker off.
    """

    def __init__(
        self, department: Department, failures: int, cooldown_s: float, clock: Clock
    ) -> None:
        self._department = department
        self._threshold = failures
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._failed_in_row = 0
        self._opened_at: float | None = None  # monotonic time of the latest (re)opening
        self._open_since: datetime | None = None  # wall time of the first, for operators
        # Set while the half-open probe is out; done when it has settled.
        self._probe: asyncio.Future[None] | None = None
        self._last_failure = ""
        self._last_failure_kind: FailureKind | None = None

    @classmethod
    def from_config(
        cls, department: Department, config: SourceConfig, clock: Clock
    ) -> CircuitBreaker:
        """The breaker a [sources.<name>] table asks for (breaker_failures, breaker_cooldown_s)."""
        options = read_options(BreakerOptions, config.options)
        return cls(department, options.breaker_failures, options.breaker_cooldown_s, clock)

    @property
    def state(self) -> BreakerState:
        """The state now; an open breaker is half-open once its cool-down has passed."""
        if self._opened_at is None:
            return BreakerState.CLOSED
        if time.monotonic() - self._opened_at >= self._cooldown_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    async def admit(self) -> bool:
        """Before a call: True when it is the half-open probe; SourceError when it may not go."""
        while True:
            state = self.state
            if state is BreakerState.CLOSED:
                return False
            if state is BreakerState.OPEN:
                raise SourceError(
                    self._department,
                    FailureKind.UNAVAILABLE,
                    self.describe() or "",
                    open_since=self._open_since,
                    last_failure=self._last_failure_kind,
                )
            if self._probe is None:
                self._probe = asyncio.get_running_loop().create_future()
                return True
            # Shielded: a waiting call cut off by its deadline leaves the probe alone.
            await asyncio.shield(self._probe)

    def succeeded(self, probe: bool) -> None:
        """The call got an answer from the department (a definite business error counts)."""
        if probe and self._opened_at is not None:
            log.info("%s: circuit breaker closed, the probe call succeeded", self._department)
        if probe or self._opened_at is None:
            # A late success of a call admitted before the breaker opened proves little;
            # only the probe closes an open breaker.
            self._close()
        if probe:
            self._end_probe()

    def failed(self, probe: bool, error: SourceError) -> None:
        """The call failed in a way that is the department's (down, 5xx, 429, hung)."""
        self._last_failure = error.message
        self._last_failure_kind = error.kind
        if probe:
            self._open()
            self._end_probe()
        elif self._opened_at is None and self._threshold > 0:
            self._failed_in_row += 1
            if self._failed_in_row >= self._threshold:
                self._open()

    def released(self, probe: bool) -> None:
        """The call ended without telling anything (cancelled, cut short by the budget)."""
        if probe:
            # Still half-open: the next call (perhaps one that waited) becomes the probe.
            self._end_probe()

    def describe(self) -> str | None:
        """For health messages and fast failures: since when the breaker is open, or None."""
        if self._open_since is None:
            return None
        since = self._open_since.isoformat(timespec="seconds")
        return f"circuit breaker open since {since}; last failure: {self._last_failure}"

    def _open(self) -> None:
        if self._open_since is None:
            self._open_since = self._clock.now()
            log.warning(
                "%s: circuit breaker open after %d failed calls in a row",
                self._department,
                self._failed_in_row,
            )
        self._opened_at = time.monotonic()

    def _close(self) -> None:
        self._failed_in_row = 0
        self._opened_at = None
        self._open_since = None

    def _end_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None and not probe.done():
            probe.set_result(None)
