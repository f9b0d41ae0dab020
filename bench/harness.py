"""What every measurement gets and gives: the running bench, its settings, rows and results.

A measurement is one async function `(Bench) -> Result`, registered in a list of
bench/measurements.py; bench/run.py starts the processes, runs the list and prints the rows.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

# The gateway's refusals before any work: the request may be sent again, unchanged.
REFUSAL_CODES = frozenset({"RATE_LIMITED", "OVERLOADED"})
# Long enough for any answer (the contract bounds one at timeout_s + 1 s); only a gateway
# that stopped answering runs into it.
CLIENT_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Settings:
    """The knobs of one run (bench/run.py reads them from the command line)."""

    suite: str
    latency_ms: float
    subjects: int
    water_rows: int
    seed: int
    today: str
    isolated_lookups: int
    isolated_interval_s: float
    load_s: float
    load_callers: tuple[int, ...]
    cpu_cold: int
    cpu_warm: int
    cpu_rounds: int
    cpu_idle_s: float
    settle_s: float
    anchor_callers: int
    anchor_rounds: int
    anchor_round_s: float
    anchor_dir: Path
    quick: bool
    bulk_codes: int = 1000
    # Issue 14, item 4 (bench/stats.py): the watchlist's members, requests per dimension.
    stat_members: int = 100_000
    stat_requests: int = 20


@dataclass(frozen=True, slots=True)
class Server:
    """A server process of the run: where it answers and its pid, for /proc."""

    url: str
    pid: int


class CodePool:
    """USCCs the sandbox knows, each handed out once: a cold lookup is one nobody asked before."""

    def __init__(self, codes: Sequence[str], seed: int) -> None:
        # The dataset opens with its hand-shaped scenarios (long court histories, every
        # record kind); shuffled, the lookups are a sample of the whole dataset instead.
        self._all = list(codes)
        random.Random(seed).shuffle(self._all)
        self._codes = iter(self._all)
        self.taken = 0

    def take(self) -> str:
        """Used for every cold lookup; raises when the dataset is used up."""
        code = next(self._codes, None)
        if code is None:
            raise RuntimeError(
                f"all {self.taken} codes of the dataset were asked for: raise --subjects"
            )
        self.taken += 1
        return code

    def cycle(self) -> Iterator[str]:
        """Used for a server without a cache (Hive Gateway): every code, over and over."""
        return itertools.cycle(self._all)


@dataclass(frozen=True, slots=True)
class Reply:
    """One GraphQL request as the bench saw it."""

    status: int  # 0: no HTTP answer (connection failed or timed out)
    ms: float
    ended: float  # time.monotonic() when the answer was read
    body: dict[str, Any] | None
    retry_after_s: float | None = None

    @property
    def data(self) -> dict[str, Any]:
        """The `data` object, empty when there is none."""
        data = (self.body or {}).get("data")
        return data if isinstance(data, dict) else {}

    @property
    def codes(self) -> list[str]:
        """The `extensions.code` of each error."""
        errors = (self.body or {}).get("errors") or []
        return [str((e.get("extensions") or {}).get("code")) for e in errors]

    @property
    def refused(self) -> bool:
        """Refused before any work (rate limit, load shedding): to be sent again later."""
        return self.status in (429, 503) and bool(REFUSAL_CODES & set(self.codes))


@dataclass
class Bench:
    """The running bench: settings, processes, clients and the codes not asked yet."""

    settings: Settings
    gateway: Server
    key: str
    departments: dict[str, str]
    codes: CodePool
    session: aiohttp.ClientSession  # the callers of the gateway
    direct: aiohttp.ClientSession  # the direct calls of the floor, from another address
    timeout_s: float  # the gateway's [sources.courts] timeout_s
    courts_max_rps: float
    water_rows: int
    rss_after_start_mb: float
    # [background] share of the gateway's config (contract §7): background work's part of
    # the courts' max_rps.
    background_share: float = 0.7
    # Courts calls of the dataset's codes that need more than four (long histories: more
    # pages), from bench/sandbox_server.py; every other code needs four.
    courts_calls: dict[str, int] = field(default_factory=dict)
    # The gateway's state store ([store] url), the bank client's id (`key` is its key) and a
    # regulator's key, for the watchlist statistics (bench/stats.py).
    store_url: str = ""
    client_id: str = ""
    regulator_key: str = ""

    async def ask(
        self,
        query: str,
        variables: dict[str, Any],
        url: str | None = None,
        key: bool = True,
        as_key: str | None = None,
    ) -> Reply:
        """Used by every measurement: one POST of a GraphQL request, timed.

        `as_key`: another client's key (the regulator's) instead of the bank's.
        """
        headers = {"Authorization": f"Bearer {as_key or self.key}"} if key else {}
        started = time.perf_counter()
        try:
            async with self.session.post(
                url or f"{self.gateway.url}/graphql",
                json={"query": query, "variables": variables},
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S),
            ) as response:
                body = await response.json(content_type=None)
                retry_after = response.headers.get("Retry-After")
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return Reply(0, _ms_since(started), time.monotonic(), None)
        return Reply(
            status,
            _ms_since(started),
            time.monotonic(),
            body if isinstance(body, dict) else None,
            float(retry_after) if retry_after and retry_after.isdigit() else None,
        )


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


@dataclass(frozen=True, slots=True)
class Goal:
    """A target of the issue: `compared` at most (or at least) `bound`."""

    bound: float
    at_most: bool
    unit: str  # "×" for a ratio, else the value's unit

    def text(self) -> str:
        """The goal as the table shows it, e.g. "≤ 1.10×"."""
        sign = "≤" if self.at_most else "≥"
        if self.unit == "×":
            return f"{sign} {self.bound:.2f}×"
        return f"{sign} {self.bound:g} {self.unit}"

    def met(self, compared: float | None) -> bool | None:
        """Whether a measured number meets the goal; None when nothing was measured."""
        if compared is None or math.isnan(compared):
            return None
        return compared <= self.bound if self.at_most else compared >= self.bound


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: a figure, its reference, their ratio and the goal it is held to."""

    figure: str
    value: str
    reference: str = ""
    ratio: float | None = None
    goal: Goal | None = None
    # The number the goal is about: the ratio, or the value itself (CPU ms).
    compared: float | None = None

    def as_json(self) -> dict[str, Any]:
        """The row as the JSON file holds it."""
        return {
            "figure": self.figure,
            "value": self.value,
            "reference": self.reference or None,
            "ratio": self.ratio,
            "goal": self.goal.text() if self.goal else None,
            "met": self.goal.met(self.compared) if self.goal else None,
        }


@dataclass
class Result:
    """What a measurement gives: its numbers for the JSON file and its rows for the table."""

    data: dict[str, Any]
    rows: list[Row] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Measurement:
    """A registered measurement: the JSON key its result is filed under, and the function."""

    name: str
    run: Callable[[Bench], Awaitable[Result]]


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between the closest ranks (q in [0, 1]); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[float]) -> dict[str, Any]:
    """p50, p99 and the count of a list of milliseconds, as the JSON file holds them."""
    return {
        "samples": len(values),
        "p50": round(percentile(values, 0.5), 2),
        "p99": round(percentile(values, 0.99), 2),
    }


def ratio(ours: float, reference: float) -> float:
    """ours / reference, rounded for the table; NaN when the reference is 0 or missing."""
    if not reference or math.isnan(reference) or math.isnan(ours):
        return math.nan
    return round(ours / reference, 3)


class Ticker:
    """Paces a loop to one step every `interval_s`; a late step is not made up for by a burst."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._next = time.monotonic()

    async def wait(self) -> None:
        """Used at the top of each paced step."""
        delay = self._next - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        # From when this step starts: steps stay interval_s apart, never closer.
        self._next = max(self._next, time.monotonic()) + self._interval_s
