"""Webhook delivery of watchlist changes (contract §9): signed POSTs, at least once.

One sender per process, started and stopped with the runtime. It claims due deliveries
from the store (a lease of LEASE_S, as the bulk workers do), POSTs each change's public
fields as JSON, and records the outcome there: a 2xx is delivered; anything else (a
redirect, which is never followed, a 4xx or 5xx, a timeout, a connection error) is tried
again with exponential backoff until the delivery's give-up time. Being in the store, the
state survives restarts, and a sender that died leaves its leases for another to take.

Before every attempt the URL is checked against `[webhooks] allow` again: a URL the
operator no longer allows is not called.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable

import aiohttp

from core.clock import Clock
from gateway.config_state import WebhooksConfig
from store.changes import ChangeRow
from store.database import RELEASE_WAIT_S
from store.webhooks import Delivery, WebhookStore

log = logging.getLogger(__name__)

USER_AGENT = "credit-gateway-webhooks"
NOT_ALLOWED = "not allowed by [webhooks] allow"
# A claimed delivery is another sender's to take after this long (a POST takes at most
# TIMEOUT_S, and a claim's deliveries are sent at once, so the lease never runs out in use).
LEASE_S = 30.0
TIMEOUT_S = 10.0
# Deliveries claimed, and POSTed concurrently, at a time.
BATCH = 16
# The wait after a failure: FIRST_BACKOFF_S, doubling up to MAX_BACKOFF_S, plus up to a
# quarter more at random so that receivers coming back are not hit all at once.
FIRST_BACKOFF_S = 5.0
MAX_BACKOFF_S = 3600.0
# How often an idle sender looks for deliveries another replica stored or made due.
POLL_S = 1.0

DELIVERED, FAILED, GIVEN_UP = "delivered", "failed", "given_up"


def body_of(change: ChangeRow) -> bytes:
    """The exact bytes POSTed for a change: its public fields (SubjectChange) as JSON."""
    return json.dumps(change.public(), ensure_ascii=False, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    """The X-Signature-256 header: sha256=<hex HMAC-SHA256 of the raw body>."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookSender:
    """Started and stopped with the runtime; `wake` is called when deliveries are stored."""

    def __init__(
        self,
        store: WebhookStore,
        config: WebhooksConfig,
        clock: Clock | None = None,
        on_attempt: Callable[[str], None] | None = None,
        *,
        first_backoff_s: float = FIRST_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        lease_s: float = LEASE_S,
        timeout_s: float = TIMEOUT_S,
        batch: int = BATCH,
        poll_s: float = POLL_S,
    ) -> None:
        self._store = store
        # Read before every attempt: replace it to narrow (or widen) the allowed URLs.
        self.config = config
        self._clock = clock or Clock()
        # Called with "delivered", "failed" or "given_up" after each attempt (metrics).
        self._on_attempt = on_attempt
        self._first_backoff_s = first_backoff_s
        self._max_backoff_s = max_backoff_s
        self._lease_s = lease_s
        self._timeout_s = timeout_s
        self._batch = batch
        self._poll_s = poll_s
        # Unique per process: a lease names who holds it.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def wake(self) -> None:
        """Used after changes with deliveries were committed: an idle sender looks now."""
        self._wakeup.set()

    async def start(self) -> None:
        """Opens the HTTP session and starts the delivery loop."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            connector=aiohttp.TCPConnector(limit=self._batch),
        )
        self._task = asyncio.create_task(self._loop(), name="webhook-sender")

    async def close(self) -> None:
        """Stops the loop; its leases are given back for the next process to take."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        # Bounded: with the store gone, its leases simply run out instead.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(RELEASE_WAIT_S):
                await self._store.release(self.owner)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _loop(self) -> None:
        while True:
            try:
                deliveries = await self._store.claim(
                    self.owner, time.time(), self._lease_s, self._batch
                )
                if not deliveries:
                    await self._idle()
                    continue
                outcomes = await asyncio.gather(
                    *(self._attempt(d) for d in deliveries), return_exceptions=True
                )
                for outcome in outcomes:
                    if isinstance(outcome, Exception):
                        # Its lease runs out and it is claimed again.
                        log.error("webhook delivery not recorded", exc_info=outcome)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The store or a bug: nothing is lost (the leases run out and the deliveries
                # are claimed again); wait a little rather than spin.
                log.exception("webhook delivery failed; it is taken up again")
                await asyncio.sleep(self._poll_s)

    async def _idle(self) -> None:
        due = await self._store.next_due()
        delay = self._poll_s if due is None else min(self._poll_s, max(0.05, due - time.time()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), delay)
        self._wakeup.clear()

    async def _attempt(self, delivery: Delivery) -> None:
        if not self.config.allows(delivery.url):
            await self._failed(delivery, NOT_ALLOWED)
            return
        error = await self._post(delivery)
        if error is not None:
            await self._failed(delivery, error)
            return
        await self._store.delivered(self.owner, delivery.change.seq, self._clock.now().isoformat())
        self._report(DELIVERED)

    async def _post(self, delivery: Delivery) -> str | None:
        """One POST; None for a 2xx, else what went wrong (without the body or secret)."""
        assert self._session is not None, "start() first"
        body = body_of(delivery.change)
        headers = {
            "Content-Type": "application/json",
            "X-Change-Id": delivery.change.id,
            "X-Signature-256": signature(delivery.secret, body),
            "User-Agent": USER_AGENT,
        }
        try:
            async with self._session.post(
                delivery.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
        except TimeoutError:
            return f"timed out after {self._timeout_s:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return _short(exc)
        return None if 200 <= status < 300 else f"HTTP {status}"

    async def _failed(self, delivery: Delivery, error: str) -> None:
        attempt = delivery.attempts + 1
        now = time.time()
        next_due = now + self._backoff(attempt)
        gives_up = next_due >= delivery.give_up_at
        await self._store.failed(self.owner, delivery.change.seq, next_due, error)
        if gives_up:
            log.warning(
                "webhook of change %s given up after attempt %d: %s",
                delivery.change.id,
                attempt,
                error,
            )
            self._report(GIVEN_UP)
        else:
            log.warning(
                "webhook of change %s failed (attempt %d): %s; next attempt in %.0f s",
                delivery.change.id,
                attempt,
                error,
                next_due - now,
            )
            self._report(FAILED)

    def _backoff(self, attempt: int) -> float:
        """The wait after the `attempt`-th failure (1-based), jitter included."""
        base = min(self._max_backoff_s, self._first_backoff_s * 2.0 ** min(attempt - 1, 40))
        return base * random.uniform(1.0, 1.25)

    def _report(self, outcome: str) -> None:
        if self._on_attempt is not None:
            self._on_attempt(outcome)


def _short(exc: BaseException) -> str:
    """A one-line error for logs and the store: the exception's type and first words."""
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    return f"{type(exc).__name__}: {first}"[:200] if first else type(exc).__name__
