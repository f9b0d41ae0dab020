"""Fault injection shared by the four sandbox departments: knobs, middleware, admin, counters.

Every department server is built by `department_app`, which installs one middleware that
applies the knobs of a `FaultState` before the department's own handler runs, counts every
request, and serves the `/_admin/...` endpoints (exempt from both).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final

import orjson
from aiohttp import web

KnobValue = float | int | bool | None

DEPARTMENTS: Final = ("courts", "market", "tax", "water")
# courts.md "Errors": more than 50 requests/s per caller is answered 429; the others
# publish no fixed limit, only "429 when pushed" (README), which the throttle knob plays.
DEFAULT_RATE_LIMIT_RPS: Final[Mapping[str, float | None]] = {
    "courts": 50.0,
    "market": None,
    "tax": None,
    "water": None,
}
_RATE_KNOBS: Final = ("error_rate", "throttle_rate", "fhdm_error_rate")
_COUNT_KNOBS: Final = ("retry_after_s", "error_burst", "throttle_burst")
_BOOL_KNOBS: Final = ("down", "hang", "garbage", "dtd", "rebuilding")
_TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS: Final = frozenset({"0", "false", "no", "off"})
_NONE_WORDS: Final = frozenset({"none", "null", "off", ""})
_HANG_POLL_S: Final = 0.05
# Arrival times kept for tests that check when calls came (a Retry-After honoured).
_ARRIVALS_KEPT: Final = 10_000
# Request headers of the latest calls, for tests that check what a caller sent (traceparent).
_HEADERS_KEPT: Final = 200


@dataclass
class FaultState:
    """The knobs of one department server, with the randomness and counters they drive."""

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0  # uniform extra delay in [0, jitter] on top of latency_ms
    error_rate: float = 0.0  # fraction answered 500/503 with an HTML body
    error_burst: int = 0  # the next N requests answered 500/503, then normal again
    throttle_rate: float = 0.0  # fraction answered 429 with Retry-After
    throttle_burst: int = 0  # the next N requests answered 429 with Retry-After
    retry_after_s: int = 1
    down: bool = False  # every request 503 maintenance
    hang: bool = False  # never answer; the request ends when the client goes away
    garbage: bool = False  # HTTP 200 with a body that is not the documented format
    rate_limit_rps: float | None = None  # token bucket per client IP; None disables
    fhdm_error_rate: float = 0.0  # tax only: fraction answered fhdm 2001 inside HTTP 200
    dtd: bool = False  # tax only: answer with an entity-expansion DTD
    rebuilding: bool = False  # water only: 503 while the daily files are rebuilt
    seed: str = "sandbox"  # not a knob: seeds `rng` so test runs are reproducible
    rng: random.Random = field(init=False, repr=False, compare=False)
    requests: Counter[str] = field(init=False, repr=False, compare=False)
    # Loop-independent monotonic time and "<METHOD> <path>" of each request, oldest first.
    arrivals: deque[tuple[float, str]] = field(init=False, repr=False, compare=False)
    # "<METHOD> <path>" and the request headers of the latest calls, oldest first.
    headers: deque[tuple[str, dict[str, str]]] = field(init=False, repr=False, compare=False)
    _buckets: dict[str, tuple[float, float]] = field(init=False, repr=False, compare=False)
    _baseline: dict[str, KnobValue] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.update(self.knobs())  # validates, and stores ints given for floats as floats
        self.rng = random.Random(self.seed)
        self.requests = Counter()
        self.arrivals = deque(maxlen=_ARRIVALS_KEPT)
        self.headers = deque(maxlen=_HEADERS_KEPT)
        self._buckets = {}
        self._baseline = self.knobs()

    @classmethod
    def for_department(cls, department: str) -> FaultState:
        """Used when a server starts without explicit faults: the documented defaults."""
        if department not in DEPARTMENTS:
            raise ValueError(f"unknown department {department!r}")
        return cls(rate_limit_rps=DEFAULT_RATE_LIMIT_RPS[department], seed=department)

    def knobs(self) -> dict[str, KnobValue]:
        """Used by GET /_admin/faults and resets: the current knob values."""
        return {name: getattr(self, name) for name in KNOBS}

    def update(self, patch: Mapping[str, object]) -> None:
        """Used by POST /_admin/faults and set_faults: validate the whole patch, then apply."""
        for name, value in check_knobs(patch).items():
            setattr(self, name, value)

    def reset(self) -> None:
        """Used by POST /_admin/faults/reset: back to the knobs this state was created with."""
        self.update(self._baseline)
        self.rng.seed(self.seed)
        self._buckets.clear()

    def chance(self, rate: float) -> bool:
        """Used for every probabilistic knob; draws only when the knob is on (reproducible)."""
        return rate > 0 and self.rng.random() < rate

    def take_token(self, caller: str, now: float) -> float:
        """Token bucket of one caller: 0 when allowed, else the seconds until a token frees."""
        rate = self.rate_limit_rps
        if rate is None:
            return 0.0
        capacity = max(rate, 1.0)  # one second's worth of burst
        tokens, last = self._buckets.get(caller, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * rate)
        if tokens >= 1.0:
            self._buckets[caller] = (tokens - 1.0, now)
            return 0.0
        self._buckets[caller] = (tokens, now)
        return (1.0 - tokens) / rate


KNOBS: Final = tuple(f.name for f in fields(FaultState) if f.init and f.name != "seed")


def check_knobs(patch: Mapping[str, object]) -> dict[str, KnobValue]:
    """Validated copy of a knob patch; raises ValueError naming the first bad knob."""
    return {name: _check_knob(name, value) for name, value in patch.items()}


def _check_knob(name: str, value: object) -> KnobValue:
    if name not in KNOBS:
        raise ValueError(f"unknown knob {name!r}; knobs are {', '.join(KNOBS)}")
    if name in _BOOL_KNOBS:
        if not isinstance(value, bool):
            raise ValueError(f"{name} takes true or false")
        return value
    if name == "rate_limit_rps" and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} takes a number")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} takes a finite number >= 0")
    if name in _RATE_KNOBS and value > 1:
        raise ValueError(f"{name} is a fraction between 0 and 1")
    if name == "rate_limit_rps" and value == 0:
        raise ValueError("rate_limit_rps takes a number > 0, or null to disable")
    if name in _COUNT_KNOBS:
        if not isinstance(value, int):
            raise ValueError(f"{name} takes a whole number")
        return value
    return float(value)


def parse_fault_spec(spec: str) -> tuple[str, dict[str, KnobValue]]:
    """Used by the `sandbox` command line: "courts:latency_ms=200,error_rate=0.1"."""
    department, sep, assignments = spec.partition(":")
    department = department.strip()
    if not sep or department not in DEPARTMENTS:
        raise ValueError(f"fault spec must start with one of {', '.join(DEPARTMENTS)} and ':'")
    knobs: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in assignments.split(","))):
        name, eq, raw = item.partition("=")
        if not eq:
            raise ValueError(f"fault spec item {item!r} is not knob=value")
        knobs[name.strip()] = _parse_knob_text(name.strip(), raw.strip())
    return department, check_knobs(knobs)


def _parse_knob_text(name: str, raw: str) -> object:
    if name in _BOOL_KNOBS:
        word = raw.lower()
        if word in _TRUE_WORDS | _FALSE_WORDS:
            return word in _TRUE_WORDS
        raise ValueError(f"{name} takes true or false, got {raw!r}")
    if name == "rate_limit_rps" and raw.lower() in _NONE_WORDS:
        return None
    try:
        return int(raw) if name in _COUNT_KNOBS else float(raw)
    except ValueError:
        raise ValueError(f"{name} takes a number, got {raw!r}") from None


# --- how each department looks when it fails -------------------------------------------


@dataclass(frozen=True, slots=True)
class FaultResponses:
    """A department's own failure answers; each department module supplies one."""

    maintenance: Callable[[], web.Response]  # 503 while `down`
    failure: Callable[[int], web.Response]  # 500 or 503 drawn by `error_rate`
    throttled: Callable[[int], web.Response]  # 429; the middleware adds Retry-After
    garbage: Callable[[], web.Response]  # 200, not the documented format


def json_response(payload: object, status: int = 200) -> web.Response:
    """Used for every JSON answer: raw UTF-8, `application/json; charset=utf-8` (courts.md)."""
    return web.Response(
        body=orjson.dumps(payload), status=status, content_type="application/json", charset="utf-8"
    )


def html_page(status: int, title: str, detail: str = "") -> web.Response:
    """Used for maintenance and internal-failure answers, which the docs say may be HTML."""
    body = (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{status} {title}</title>'
        f"</head><body><h1>{title}</h1><p>{detail}</p><hr><p>nginx</p></body></html>"
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


# --- the department application and its middleware --------------------------------------

FAULTS_KEY: Final = web.AppKey("sandbox_faults", FaultState)
RESPONSES_KEY: Final = web.AppKey("sandbox_fault_responses", FaultResponses)
_ADMIN_PREFIX: Final = "/_admin/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class _Lifecycle:
    """Whether the server is shutting down; hanging requests drop their connection then."""

    stopping: bool = False


_LIFECYCLE_KEY: Final = web.AppKey("sandbox_lifecycle", _Lifecycle)


def department_app(faults: FaultState, responses: FaultResponses) -> web.Application:
    """Used by each department's create_app: the app with fault middleware and admin routes."""
    app = web.Application(middlewares=[_fault_middleware])
    app[FAULTS_KEY] = faults
    app[RESPONSES_KEY] = responses
    app[_LIFECYCLE_KEY] = _Lifecycle()
    # The same app is served again after stop_department/start_department.
    app.on_startup.append(_mark_started)
    app.on_shutdown.append(_mark_stopping)
    app.router.add_get("/_admin/faults", _get_faults)
    app.router.add_post("/_admin/faults", _patch_faults)
    app.router.add_post("/_admin/faults/reset", _reset_faults)
    app.router.add_get("/_admin/stats", _get_stats)
    app.router.add_get("/_admin/arrivals", _get_arrivals)
    app.router.add_post("/_admin/stats/reset", _reset_stats)
    return app


@web.middleware
async def _fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(_ADMIN_PREFIX):
        return await handler(request)
    faults = request.app[FAULTS_KEY]
    key = f"{request.method} {request.path}"
    faults.requests[key] += 1
    faults.arrivals.append((time.monotonic(), key))
    faults.headers.append((key, dict(request.headers)))
    if faults.hang:
        return await _hang_until_client_leaves(request)
    await _delay(faults)
    forced = _forced_answer(faults, request.app[RESPONSES_KEY], request.remote or "")
    if forced is not None:
        return forced
    return await handler(request)


async def _delay(faults: FaultState) -> None:
    extra = faults.rng.uniform(0, faults.latency_jitter_ms) if faults.latency_jitter_ms else 0.0
    delay_ms = faults.latency_ms + extra
    if delay_ms > 0:
        await asyncio.sleep(delay_ms / 1000)


def _forced_answer(
    faults: FaultState, responses: FaultResponses, caller: str
) -> web.Response | None:
    if faults.down:
        return responses.maintenance()
    wait_s = faults.take_token(caller, time.monotonic())
    if wait_s > 0:
        return _with_retry_after(responses.throttled(429), max(1, math.ceil(wait_s)))
    if faults.throttle_burst > 0:
        faults.throttle_burst -= 1
        return _with_retry_after(responses.throttled(429), faults.retry_after_s)
    if faults.chance(faults.throttle_rate):
        return _with_retry_after(responses.throttled(429), faults.retry_after_s)
    if faults.error_burst > 0:
        faults.error_burst -= 1
        return responses.failure(faults.rng.choice((500, 503)))
    if faults.chance(faults.error_rate):
        return responses.failure(faults.rng.choice((500, 503)))
    if faults.garbage:
        return responses.garbage()
    return None


def _with_retry_after(response: web.Response, seconds: int) -> web.Response:
    response.headers["Retry-After"] = str(seconds)
    return response


async def _hang_until_client_leaves(request: web.Request) -> web.StreamResponse:
    # Polled because aiohttp offers no disconnect event to await, and a server run without
    # handler_cancellation would otherwise keep the handler forever; nothing is delivered.
    lifecycle = request.app[_LIFECYCLE_KEY]
    while _connected(request) and not lifecycle.stopping:  # noqa: ASYNC110
        await asyncio.sleep(_HANG_POLL_S)
    if request.transport is not None:
        request.transport.close()  # shutting down: drop the connection, never answer
    return web.Response(status=499)


def _connected(request: web.Request) -> bool:
    return request.transport is not None and not request.transport.is_closing()


async def _mark_started(app: web.Application) -> None:
    app[_LIFECYCLE_KEY].stopping = False


async def _mark_stopping(app: web.Application) -> None:
    app[_LIFECYCLE_KEY].stopping = True


# --- admin endpoints (exempt from faults and counters) -----------------------------------


async def _get_faults(request: web.Request) -> web.Response:
    return json_response(request.app[FAULTS_KEY].knobs())


async def _patch_faults(request: web.Request) -> web.Response:
    faults = request.app[FAULTS_KEY]
    try:
        patch: Any = orjson.loads(await request.read())
        if not isinstance(patch, dict):
            raise ValueError("the body must be a JSON object of knobs")
        faults.update(patch)
    except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
        return json_response({"error": str(exc)}, status=400)
    return json_response(faults.knobs())


async def _reset_faults(request: web.Request) -> web.Response:
    faults = request.app[FAULTS_KEY]
    faults.reset()
    return json_response(faults.knobs())


async def _get_stats(request: web.Request) -> web.Response:
    return json_response({"requests": dict(request.app[FAULTS_KEY].requests)})


async def _get_arrivals(request: web.Request) -> web.Response:
    """When the latest requests came (monotonic seconds) and what they asked, oldest first."""
    arrivals = request.app[FAULTS_KEY].arrivals
    return json_response({"arrivals": [[at, key] for at, key in arrivals]})


async def _reset_stats(request: web.Request) -> web.Response:
    request.app[FAULTS_KEY].requests.clear()
    request.app[FAULTS_KEY].arrivals.clear()
    request.app[FAULTS_KEY].headers.clear()
    return json_response({"requests": {}})
