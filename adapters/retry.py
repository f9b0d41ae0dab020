"""Retrying one department call: which failures, how long to wait, and never past the budget."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from adapters.base import SourceConfig
from adapters.options import knob, read_options
from core.records import Department
from core.sources import FailureKind, SourceError

T = TypeVar("T")

# Failures a later attempt may not see: connection errors, 5xx, 429 and timeouts. Every
# other kind is a definite answer (400, a SOAP Client fault, a malformed payload, an fhdm
# code) and would come back the same.
TRANSIENT = frozenset({FailureKind.UNAVAILABLE, FailureKind.TIMEOUT, FailureKind.RATE_LIMITED})
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_S = 0.1
# departments/README.md: "Expect 20–300 ms per call".
SLOWEST_NORMAL_ANSWER_S = 0.3
# A Retry-After longer than this is honoured only this long; one odd header must not
# silence a department for hours. A department still busy says so again.
MAX_PAUSE_S = 60.0


@dataclass(frozen=True, slots=True)
class RetryOptions:
    """Retry knobs of a live department's table (docs/operations.md says why each default)."""

    retries: int = knob(DEFAULT_RETRIES, minimum=0, maximum=10)
    retry_backoff_s: float = knob(DEFAULT_BACKOFF_S, above=0, maximum=60)
    # By default an attempt may take the whole budget (timeout_s).
    attempt_timeout_s: float | None = knob(None, above=0, maximum=600)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The retry knobs of one live department; used by its SourceHttp for every call."""

    retries: int = DEFAULT_RETRIES
    backoff_s: float = DEFAULT_BACKOFF_S
    attempt_timeout_s: float = 2.0

    @classmethod
    def from_config(cls, config: SourceConfig) -> RetryPolicy:
        """The policy a [sources.<name>] table asks for (retries, retry_backoff_s, …)."""
        options = read_options(RetryOptions, config.options)
        # By default an attempt may take the whole budget: a slow answer (the sandbox's
        # "slow" fault, 1.5 s) is still an answer. A shorter attempt timeout makes a hung
        # attempt retryable within the budget, at the price of failing answers slower than it.
        attempt = options.attempt_timeout_s or config.timeout_s
        return cls(
            retries=options.retries,
            backoff_s=options.retry_backoff_s,
            # One attempt never has more than the whole lookup's budget.
            attempt_timeout_s=min(attempt, config.timeout_s),
        )

    @property
    def attempts(self) -> int:
        """Most attempts one call makes."""
        return self.retries + 1

    @property
    def min_window_s(self) -> float:
        """Shortest time in which an answer is plausible; used by retries and the breaker."""
        # With less of the budget left no retry is started, and an attempt the budget cut
        # to less than this timed out without saying anything about the department.
        return min(SLOWEST_NORMAL_ANSWER_S, self.attempt_timeout_s / 2)

    @staticmethod
    def transient(error: SourceError) -> bool:
        """True for failures worth another attempt (and counted by the breaker)."""
        return error.kind in TRANSIENT

    def backoff(self, retry: int) -> float:
        """Seconds before the given retry (1, 2, …): exponential, with full jitter."""
        # Full jitter spreads the retries of many calls failing together (a maintenance
        # window starting) instead of sending them back in waves.
        return random.uniform(0.0, self.backoff_s * 2 ** (retry - 1))


class Pause:
    """The department's own request to wait (Retry-After), shared by all calls of an adapter."""

    def __init__(self, department: Department) -> None:
        self._department = department
        self._until = 0.0

    def defer(self, seconds: float) -> None:
        """Used when an answer carries Retry-After: no call starts before it has passed."""
        now = asyncio.get_running_loop().time()
        self._until = max(self._until, now + min(seconds, MAX_PAUSE_S))

    def remaining(self) -> float:
        """Seconds still to wait; 0 when calls may go."""
        return max(0.0, self._until - asyncio.get_running_loop().time())

    async def wait(self, deadline: float, min_window_s: float) -> None:
        """Wait out the pause, or fail fast (no call made) when it outlasts the budget."""
        wait = self.remaining()
        if wait <= 0:
            return
        if asyncio.get_running_loop().time() + wait + min_window_s > deadline:
            raise SourceError(
                self._department,
                FailureKind.RATE_LIMITED,
                "pausing as the department asked (Retry-After)",
                retry_after_s=wait,
            )
        await asyncio.sleep(wait)


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    pause: Pause,
    deadline: float,
    attempts: int,
) -> T:
    """The first success of up to `attempts` tries; a retry starts only if it can finish."""
    loop = asyncio.get_running_loop()
    tries = 0
    while True:
        tries += 1
        try:
            return await attempt()
        except SourceError as error:
            if error.retry_after_s is not None:
                pause.defer(error.retry_after_s)
            if tries >= attempts or not policy.transient(error):
                raise
            wait = max(policy.backoff(tries), pause.remaining())
            if loop.time() + wait + policy.min_window_s > deadline:
                # Not enough budget left for another try: the failure as it is, now.
                raise
            await asyncio.sleep(wait)
