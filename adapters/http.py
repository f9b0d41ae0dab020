"""Low-level HTTP for the department adapters: budget, retries, breaker, size caps, failures."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from adapters.base import AdapterDeps
from adapters.breaker import BreakerOptions, CircuitBreaker
from adapters.deadline import background, lookup_deadline
from adapters.observe import CallOutcome, outcome_of
from adapters.retry import Pause, RetryOptions, RetryPolicy, retrying
from adapters.shared import SharedPace, SharedUnavailable
from core.records import Department
from core.sources import FailureKind, SourceError, SourceHealth, SourceState

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)

# Per-subject API answers are small; anything near this is not an answer we asked for.
API_MAX_BYTES = 20 * 1024 * 1024
_READ_CHUNK = 64 * 1024
# The deadline of the lookup a call belongs to, set by SourceHttp.settle: every call made
# inside it (pages, chunks, both operations) knows how much of the budget is left.
_LOOKUP_DEADLINE: ContextVar[float | None] = ContextVar("lookup_deadline", default=None)
_ATTEMPT_MARGIN_S = 0.02
# Send times a lookup booked with its department's Pacer, taken by its calls in turn (the
# list is shared by the tasks of the lookup's calls); calls beyond them take free slots.
_BOOKED: ContextVar[list[float] | None] = ContextVar("booked_sends", default=None)
# A call sent this long after its send time (it waited for a concurrency slot) takes a new
# one: sent late, it would join the calls of a later moment past the rate.
_LATE_S = 0.02

# The knobs every adapter calling its department through SourceHttp reads.
HTTP_OPTIONS: tuple[type, ...] = (RetryOptions, BreakerOptions)


class PayloadError(ValueError):
    """An answer that does not have the documented shape; it becomes BAD_PAYLOAD.

    Messages are fixed texts written here (field names at most), never upstream content,
    because a SourceError message may reach clients.
    """


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A response read in full: used by adapters that look at status or headers themselves."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    charset: str | None


# An accepted status the adapter still reads as a failure (tax: the SOAP Fault in a 500).
FailureOf = Callable[[HttpAnswer], SourceError | None]


async def fetch(
    session: aiohttp.ClientSession,
    department: Department,
    method: str,
    url: str,
    *,
    timeout_s: float,
    params: Mapping[str, str] | None = None,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    accept: frozenset[int] = frozenset({200}),
    max_bytes: int = API_MAX_BYTES,
) -> HttpAnswer:
    """One HTTP exchange; any failure is raised as a SourceError of the right kind."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with session.request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            timeout=timeout,
            # No department redirects; following one would leave the configured host.
            allow_redirects=False,
        ) as response:
            if response.status not in accept:
                raise status_error(department, response.status, response.headers)
            body = await _read_capped(response, department, max_bytes)
            return HttpAnswer(response.status, response.headers, body, response.charset)
    except TimeoutError:
        # Checked before ClientError: aiohttp's ServerTimeoutError is both.
        raise SourceError(department, FailureKind.TIMEOUT, "no answer within the timeout") from None
    except aiohttp.ClientError:
        raise SourceError(department, FailureKind.UNAVAILABLE, "connection failed") from None


def status_error(department: Department, status: int, headers: Mapping[str, str]) -> SourceError:
    """The SourceError an unexpected HTTP status stands for (README: 429, 5xx maintenance)."""
    if status == 429:
        return SourceError(
            department,
            FailureKind.RATE_LIMITED,
            "rate limited (HTTP 429)",
            retry_after_s=parse_retry_after(headers.get("Retry-After")),
        )
    if status >= 500:
        # A 503 may say when the maintenance ends (Retry-After), as a 429 says when to return.
        retry_after = parse_retry_after(headers.get("Retry-After")) if status == 503 else None
        return SourceError(
            department, FailureKind.UNAVAILABLE, f"HTTP {status}", retry_after_s=retry_after
        )
    return SourceError(department, FailureKind.BAD_PAYLOAD, f"unexpected HTTP {status}")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


async def _read_capped(
    response: aiohttp.ClientResponse, department: Department, max_bytes: int
) -> bytes:
    too_large = SourceError(department, FailureKind.BAD_PAYLOAD, "answer too large")
    if response.content_length is not None and response.content_length > max_bytes:
        raise too_large
    parts: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_READ_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        parts.append(chunk)
    return b"".join(parts)


def decode_json(body: bytes) -> object:
    """JSON from a body; an HTML maintenance page or truncated text is a PayloadError."""
    try:
        value: object = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise PayloadError("answer is not valid JSON") from None
    return value


class Pacer:
    """Client-side pace where a department publishes a request rate (the courts' 50/s).

    At most `rate_per_s` calls go out in any one-second window, up to `burst` at once: a
    subject's four court calls leave together instead of 20 ms apart (GCRA with a burst
    tolerance, plus a sliding window so bursts never add up past the published rate).
    `book` reserves several send times up front, so a lookup the budget cannot serve
    before its deadline is refused at once instead of spending calls that will time out.
    """

    def __init__(self, rate_per_s: float, burst: int = 1) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a pace needs a positive rate and a burst of at least one request")
        self.rate_per_s = rate_per_s
        self._interval = 1.0 / rate_per_s
        self._tolerance = (burst - 1) * self._interval
        # Theoretical arrival time of the next call (GCRA); send times only ever increase.
        self._tat = 0.0
        # Send times promised within the last second: with the burst, GCRA alone would let
        # rate + burst - 1 calls into one second; the window keeps it to the rate.
        self._per_second = max(1, math.floor(rate_per_s))
        self._sent: deque[float] = deque()

    def book(self, count: int, latest: float) -> list[float] | None:
        """Reserve `count` send times (loop time), or none when the last would be after `latest`."""
        now = asyncio.get_running_loop().time()
        tat, sent = self._tat, list(self._sent)
        times: list[float] = []
        for _ in range(count):
            at = max(now, tat - self._tolerance)
            recent = [t for t in sent if t > at - 1.0]
            if len(recent) >= self._per_second:
                at = max(at, recent[-self._per_second] + 1.0)
            times.append(at)
            sent.append(at)
            tat = max(tat, at) + self._interval
        if times and times[-1] > latest:
            return None
        self._tat = tat
        self._sent = deque(t for t in sent if t > now - 1.0)
        return times


class Pace:
    """A department's pace as SourceHttp uses it (contract §7: the deployment's budget).

    With several replicas sharing a store (AdapterDeps.shared) every booking is made there,
    so all replicas together keep the rate; a booking the store cannot take in time is made
    instead on an in-process Pacer at this replica's share of the rate (rate / replicas),
    and the lookup goes on. Without a shared store the in-process Pacer has the whole rate.
    """

    def __init__(
        self, name: str, rate_per_s: float, burst: int = 1, shared: SharedPace | None = None
    ) -> None:
        self.name = name
        self.rate_per_s = rate_per_s
        self._burst = burst
        self._shared = shared
        replicas = shared.replicas if shared is not None else 1
        self._local = Pacer(rate_per_s / replicas, burst)

    async def book(self, count: int, latest: float) -> list[float] | None:
        """Reserve `count` send times (loop time), or none when the last would be after `latest`."""
        if self._shared is not None:
            try:
                return await self._shared.book(
                    self.name, self.rate_per_s, self._burst, count, latest
                )
            except SharedUnavailable:
                pass  # this booking at this replica's share; the store counts the fallback
        return self._local.book(count, latest)

    async def wait(self, booked_first: bool = True) -> float:
        """Return at the send time of one more request (a booked one, else the next free one)."""
        booked = _BOOKED.get() if booked_first else None
        at = booked.pop(0) if booked else ((await self.book(1, math.inf)) or [0.0])[0]
        delay = at - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)
        return at


class SourceHttp:
    """One per live adapter: base URL, budget, retries, breaker, concurrency bound and pace.

    A call goes through, in this order: the department's Retry-After pause, the circuit
    breaker, then attempts (retried by the policy), each of which waits for the pace and
    then takes a concurrency slot before it goes out. Pace and backoff waits hold no slot.
    """

    def __init__(
        self,
        deps: AdapterDeps,
        department: Department,
        max_rps: float | None = None,
        burst: int = 1,
    ) -> None:
        self.deps = deps
        self.department = department
        self.base_url = deps.config.url.rstrip("/")
        self.timeout_s = deps.config.timeout_s
        # Shared by every attempt of every call of the adapter (retries and health probes
        # too), so neither a big batch nor a retry storm can flood the department.
        self._slots = asyncio.Semaphore(max(1, deps.config.max_concurrency))
        self._shared_pace = deps.shared.pace if deps.shared is not None else None
        self._pacer = (
            Pace(department.value.lower(), max_rps, burst, self._shared_pace)
            if max_rps is not None
            else None
        )
        # Background work's own bounds (contract §7, [background] share), made at its first
        # call: a share of the slots, and of the pace (shared by the replicas like the pace).
        self._background: tuple[asyncio.Semaphore, Pace | None] | None = None
        self._retry = RetryPolicy.from_config(deps.config)
        self._breaker = CircuitBreaker.from_config(department, deps.config, deps.clock)
        self._pause = Pause(department)
        # Read when metrics are scraped: an open breaker turns half-open by time alone.
        deps.observer.watch_breaker(department, lambda: self._breaker.state.value)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        accept: frozenset[int] = frozenset({200}),
        failure_of: FailureOf | None = None,
    ) -> HttpAnswer:
        """One call to the department (a read, so safe to repeat), within the lookup's budget."""
        deadline = _LOOKUP_DEADLINE.get() or self.deadline()
        await self._pause.wait(deadline, self._retry.min_window_s)
        probe = await self._breaker.admit()
        call = _Call(method, self.base_url + path, params, data, headers, accept, failure_of)

        async def attempt() -> HttpAnswer:
            return await self._attempt(call, deadline)

        # The half-open probe is one attempt: it is there to learn, not to insist.
        attempts = 1 if probe else self._retry.attempts
        try:
            answer = await retrying(attempt, self._retry, self._pause, deadline, attempts)
        except SourceError as error:
            if not self._retry.transient(error):
                self._breaker.succeeded(probe)  # a definite answer: the department is up
            elif call.failed:
                self._breaker.failed(probe, error)
            else:
                self._breaker.released(probe)
            raise
        except BaseException:
            self._breaker.released(probe)
            raise
        self._breaker.succeeded(probe)
        return answer

    async def _attempt(self, call: _Call, deadline: float) -> HttpAnswer:
        work = background()
        if work is None:
            return await self._paced(call, deadline, booked_first=True)
        slots, pacer = self._background_bounds(work.share)
        if pacer is None or self._pacer is None:
            async with slots, self._slots:
                return await self._exchange(call, deadline)
        # Its own share of the pace first (booked by `booked`), waited for holding no slot,
        # then the department's pace just in time: background work holds none of the
        # callers' slots, and the callers' bookings ahead of it keep their place.
        at = await pacer.wait()
        async with slots:
            if asyncio.get_running_loop().time() - at > _LATE_S:
                # It got its slot late (a busy moment): its moment of the share has passed,
                # and calls let through together would go out at the department's whole
                # pace. A new time of the share keeps background work to it.
                await pacer.wait(booked_first=False)
            return await self._paced(call, deadline, booked_first=False)

    async def _paced(self, call: _Call, deadline: float, booked_first: bool) -> HttpAnswer:
        """The department's pace, then a concurrency slot, then the exchange.

        The pace is waited for holding no slot: a call booked far ahead would otherwise keep
        one from a call booked sooner, which would then leave late, together with the calls
        booked for its moment. A call that still got its slot late takes a new send time.
        """
        if self._pacer is None:
            async with self._slots:
                return await self._exchange(call, deadline)
        if self._shared_pace is None:
            # One process keeps the pace alone: the slot is taken first and the pace waited
            # for in it, so a call never leaves after its moment (issue 11's measured order;
            # waiting first and re-booking late calls halved complete answers at 64 callers).
            async with self._slots:
                await self._pacer.wait(booked_first)
                return await self._exchange(call, deadline)
        at = await self._pacer.wait(booked_first)
        async with self._slots:
            if asyncio.get_running_loop().time() - at > _LATE_S:
                await self._pacer.wait(booked_first=False)
            return await self._exchange(call, deadline)

    def _background_bounds(self, share: float) -> tuple[asyncio.Semaphore, Pace | None]:
        if self._background is None:
            slots = max(1, math.floor(self.deps.config.max_concurrency * share))
            pacer = (
                Pace(
                    f"{self._pacer.name}:background",
                    self._pacer.rate_per_s * share,
                    1,
                    self._shared_pace,
                )
                if self._pacer is not None
                else None
            )
            self._background = (asyncio.Semaphore(slots), pacer)
        return self._background

    async def _exchange(self, call: _Call, deadline: float) -> HttpAnswer:
        """One attempt on the wire, once its slot and pace are had."""
        # Ends a moment before the lookup's deadline, so that a hung department is seen
        # timing out here (and counted) rather than the whole lookup being cut off.
        left = deadline - asyncio.get_running_loop().time() - _ATTEMPT_MARGIN_S
        window = min(self._retry.attempt_timeout_s, left)
        if window <= 0:
            raise SourceError(self.department, FailureKind.TIMEOUT, "no answer within the timeout")
        # Observed from here: the exchange itself, not the wait for a slot or the pace.
        observed = self.deps.observer.department_call(self.department)
        outcome = CallOutcome.CANCELLED
        try:
            answer = await fetch(
                self.deps.session,
                self.department,
                call.method,
                call.url,
                timeout_s=window,
                params=call.params,
                data=call.data,
                headers=observed.headers(call.headers),
                accept=call.accept,
            )
            error = call.failure_of(answer) if call.failure_of is not None else None
            if error is not None:
                raise error
            outcome = CallOutcome.OK
            return answer
        except SourceError as error:
            outcome = outcome_of(error)
            # A timeout of an attempt the budget cut short (it queued behind a big
            # batch) says nothing about the department; every other failure does.
            cut_short = error.kind is FailureKind.TIMEOUT and window < self._retry.min_window_s
            if self._retry.transient(error) and not cut_short:
                call.failed = True
            raise
        finally:
            observed.finished(outcome)

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> object:
        """GET answered by JSON (courts, market single calls)."""
        answer = await self.request("GET", path, params=params)
        return decode_json(answer.body)

    async def post_json(self, path: str, payload: object) -> object:
        """POST a JSON body answered by JSON (market batch calls)."""
        answer = await self.request(
            "POST",
            path,
            data=orjson.dumps(payload),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        return decode_json(answer.body)

    @asynccontextmanager
    async def booked(self, calls: int) -> AsyncIterator[None]:
        """Around a lookup whose first `calls` calls must all fit its budget (courts)."""
        if self._pacer is None:
            yield
            return
        deadline = _LOOKUP_DEADLINE.get() or self.deadline()
        work = background()
        # Background work books on its own share of the pace (see _attempt).
        pacer = self._pacer if work is None else self._background_bounds(work.share)[1]
        assert pacer is not None
        # The last booked call must still leave time for a normal answer.
        times = await pacer.book(calls, deadline - self._retry.min_window_s)
        if times is None:
            raise SourceError(
                self.department,
                FailureKind.OVER_BUDGET,
                f"{calls} calls cannot be sent within the request budget at the pace allowed",
            )
        token = _BOOKED.set(times)
        try:
            yield
        finally:
            _BOOKED.reset(token)

    def deadline(self) -> float:
        """Loop time by which a whole lookup must be answered (contract §6: timeout_s)."""
        return lookup_deadline(self.timeout_s)

    async def settle(self, work: Awaitable[T], deadline: float) -> T | SourceError:
        """The result of a chunk's work, or the SourceError standing in for it."""
        result = await self._settled(work, deadline)
        # Counted per chunk, also when nothing was sent (over budget, breaker open): what
        # the lookups got, where department calls count what went upstream.
        error = result if isinstance(result, SourceError) else None
        self.deps.observer.lookup_settled(self.department, outcome_of(error))
        return result

    async def _settled(self, work: Awaitable[T], deadline: float) -> T | SourceError:
        token = _LOOKUP_DEADLINE.set(deadline)
        try:
            async with asyncio.timeout_at(deadline):
                return await work
        except SourceError as exc:
            return exc
        except PayloadError as exc:
            return SourceError(self.department, FailureKind.BAD_PAYLOAD, str(exc))
        except TimeoutError:
            # The chunk as a whole (queueing, pace, several pages) ran past timeout_s.
            return SourceError(self.department, FailureKind.TIMEOUT, "no answer within the timeout")
        finally:
            _LOOKUP_DEADLINE.reset(token)

    async def probe(self, work: Awaitable[object]) -> SourceHealth:
        """health() of a live source: OK when one cheap real call succeeds in time."""
        result = await self.settle(work, self.deadline())
        if isinstance(result, SourceError):
            log.info("%s health probe failed: %s", self.department.value, result.message)
            return SourceHealth(
                self.department, SourceState.UNAVAILABLE, None, result.public_message
            )
        return SourceHealth(self.department, SourceState.OK, self.deps.clock.now())

    async def in_chunks(
        self,
        codes: Sequence[str],
        size: int,
        fetch: Callable[[list[str]], Awaitable[Mapping[str, R]]],
    ) -> dict[str, R | SourceError]:
        """Batch lookups: chunks of `size` under one deadline; a failed chunk fails its codes."""
        unique = list(dict.fromkeys(codes))
        chunks = [unique[i : i + size] for i in range(0, len(unique), size)]
        deadline = self.deadline()
        answers = await asyncio.gather(*(self.settle(fetch(chunk), deadline) for chunk in chunks))
        results: dict[str, R | SourceError] = {}
        for chunk, answer in zip(chunks, answers, strict=True):
            for code in chunk:
                results[code] = answer if isinstance(answer, SourceError) else answer[code]
        return results


@dataclass(slots=True)
class _Call:
    """One call to a department, as its attempts repeat it, and what they showed."""

    method: str
    url: str
    params: Mapping[str, str] | None
    data: bytes | None
    headers: Mapping[str, str] | None
    accept: frozenset[int]
    failure_of: FailureOf | None
    # Set when an attempt failed in a way that is the department's; the breaker counts it.
    failed: bool = False


async def gather_strict(*calls: Coroutine[Any, Any, T]) -> list[T]:
    """Run calls together: all results, or the first failure with the other calls cancelled."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call) for call in calls]
    except BaseExceptionGroup as failures:
        # One failing call decides the whole chunk's answer; re-raise it as itself, so the
        # callers' SourceError/PayloadError handling applies unchanged.
        first: BaseException = failures
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return [task.result() for task in tasks]


# Helpers for reading decoded JSON: every shape check raises PayloadError.


def as_object(value: object, what: str) -> dict[str, object]:
    """A JSON object, or PayloadError naming what was expected."""
    if not isinstance(value, dict):
        raise PayloadError(f"{what} is not an object")
    return value


def as_list(value: object, what: str) -> list[object]:
    """A JSON array, or PayloadError naming what was expected."""
    if not isinstance(value, list):
        raise PayloadError(f"{what} is not a list")
    return value


def opt_text(obj: Mapping[str, object], key: str) -> str | None:
    """A string field where empty, null or absent all mean no value."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{key} is not a string")
    value = value.strip()
    return value or None


def req_text(obj: Mapping[str, object], key: str) -> str:
    """A string field that must be present and non-empty (ids, codes)."""
    value = opt_text(obj, key)
    if value is None:
        raise PayloadError(f"{key} is missing")
    return value


def req_int(obj: Mapping[str, object], key: str) -> int:
    """An integer field (JSON number without fraction; booleans refused)."""
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{key} is not an integer")
    return value
