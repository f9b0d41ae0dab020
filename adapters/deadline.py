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

# Loop time at which the current request started; None outside a request (health probes,
# direct adapter use), where a lookup's budget starts when it does.
_REQUEST_STARTED: ContextVar[float | None] = ContextVar("request_started", default=None)


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
    return (now if started is None else min(started, now)) + timeout_s
