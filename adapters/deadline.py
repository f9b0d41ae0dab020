"""One budget per request (contract §6): a department's calls end by start + its timeout_s.

A request may ask one department several times in turn (a person's positions, then the
subjects they name; a name search, then the subjects found). Each round took a fresh
timeout_s, so a slow department held a response for two timeouts. The loaders run every
round of a request inside `request_budget(started)`; every deadline is measured from there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

# Loop time at which the current request started; None outside a request (health probes,
# direct adapter use), where a lookup's budget starts when it does.
_REQUEST_STARTED: ContextVar[float | None] = ContextVar("request_started", default=None)


@dataclass(frozen=True, slots=True)
class BackgroundWork:
    """Lookups made for background work (bulk checks): their share and their budget."""

    # contract §7: at most this share of each department's rate and concurrency.
    share: float
    # How long the lookups of one piece of background work may take: the pace of the
    # departments, not a caller waiting, bounds them.
    budget_s: float


_BACKGROUND: ContextVar[BackgroundWork | None] = ContextVar("background_work", default=None)


@contextmanager
def background_work(share: float, budget_s: float) -> Iterator[None]:
    """Used by the gateway's background workers around the lookups of one piece of work."""
    token = _BACKGROUND.set(BackgroundWork(share, budget_s))
    try:
        yield
    finally:
        _BACKGROUND.reset(token)


def background() -> BackgroundWork | None:
    """The background work the current lookup is made for; None for a caller's request."""
    return _BACKGROUND.get()


@contextmanager
def request_budget(started: float) -> Iterator[None]:
    """Used by the loaders around every department round of one request."""
    token = _REQUEST_STARTED.set(started)
    try:
        yield
    finally:
        _REQUEST_STARTED.reset(token)


def lookup_deadline(timeout_s: float) -> float:
    """Loop time by which a lookup must end: its request's start (or now) plus timeout_s."""
    now = asyncio.get_running_loop().time()
    started = _REQUEST_STARTED.get()
    work = _BACKGROUND.get()
    budget = max(timeout_s, work.budget_s) if work is not None else timeout_s
    return (now if started is None else min(started, now)) + budget
