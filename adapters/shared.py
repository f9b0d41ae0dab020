"""State several replicas share (contract §11): ports injected through AdapterDeps.

With `[cache] url` the gateway's runtime passes one `SharedState` (gateway/redis_cache.py,
Redis) to every adapter; without it, each replica keeps everything in-process, as before.
The adapters know nothing of Redis: they see these two ports, and `SharedUnavailable` when
the shared store did not answer within its bound, after which they use their in-process
state for that call (a department's pace at this replica's share of the rate, its own answer
cache). A query never fails because of the shared store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


class SharedUnavailable(Exception):
    """The shared store cannot be reached now; the caller falls back to its in-process state."""


class SharedPace(Protocol):
    """The departments' paces kept for the whole deployment (the courts' 50/s for all)."""

    @property
    def replicas(self) -> int:
        """Replicas expected: this one paces at rate / replicas while the store is down."""
        ...

    async def book(
        self, name: str, rate_per_s: float, burst: int, count: int, latest: float
    ) -> list[float] | None:
        """Reserve `count` send times (loop time) of the pace `name`, or none if the last
        would be after `latest` (loop time, math.inf for no bound). Atomic for the whole
        deployment: at most `rate_per_s` booked sends in any one-second window, `burst` at
        once. Raises SharedUnavailable."""
        ...


# What a waiting replica sees of a key another replica is fetching.
HIT = "hit"  # the answer is there (bytes)
WAITING = "waiting"  # still in flight elsewhere
FAILED = "failed"  # the fetch elsewhere ended without an answer; value: its FailureKind
ABANDONED = "abandoned"  # no answer and nobody fetching (its replica stopped, or it expired)
CLAIMED = "claimed"  # lookup only: nobody was fetching it; this caller now is


@dataclass(frozen=True, slots=True)
class Found:
    """One key's state in the shared answer store."""

    state: str
    value: bytes | None = None


class SharedAnswers(Protocol):
    """The department answers kept for the whole deployment, as encoded bytes with TTLs.

    Keys are `<department>:<parts>:<code>`; the store keeps, per key, the fresh answer,
    the last good answer and a short claim of the replica fetching it (single flight).
    Every method raises SharedUnavailable when the store cannot be reached in time.
    """

    async def lookup(self, keys: Sequence[str], token: str, claim_s: float) -> dict[str, Found]:
        """Each key's fresh answer (HIT), else a claim taken for `token` (CLAIMED) when no
        other replica holds one, else WAITING. One atomic step for all keys."""
        ...

    async def poll(self, keys: Sequence[str]) -> dict[str, Found]:
        """Keys another replica is fetching: HIT, WAITING, FAILED or ABANDONED."""
        ...

    async def land(
        self,
        answers: Mapping[str, bytes],
        failed: Mapping[str, str],
        token: str,
        fresh_s: float,
        good_s: float,
    ) -> None:
        """A claimed fetch ended: answers kept fresh for `fresh_s` and as last good answers
        for `good_s` (0: not kept), failures (key: FailureKind value) told to the replicas
        waiting but never kept, and the claims of `token` released."""
        ...

    async def last_good(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The last good answers kept of these keys (stand-ins for failed fetches)."""
        ...


@dataclass(frozen=True, slots=True)
class SharedState:
    """What the runtime hands every adapter when several replicas share a store."""

    pace: SharedPace
    answers: SharedAnswers
