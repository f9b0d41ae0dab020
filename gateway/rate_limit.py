"""Per-client rate limit of contract §5 (RATE_LIMITED): a token bucket for each client."""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import ErrorCode
from core.roles import ANONYMOUS, Caller, Role
from gateway.config import LimitsConfig
from gateway.refusals import guarded, refuse

# Anonymous callers are counted by address; beyond this many at once the least recently
# seen lose their bucket (and start again with a full one) rather than memory growing.
MAX_ADDRESSES = 65_536


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Buckets per configured client id, and per address for anonymous callers."""

    def __init__(self, limits: LimitsConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._clients: dict[str, _Bucket] = {}  # bounded by the [[clients]] of the config
        public = limits.rate_for(Role.PUBLIC)
        # An address idle this long has a full bucket again: forgetting it changes nothing.
        refill_s = public.burst / public.rate_per_s
        self._addresses: TTLCache[str, _Bucket] = TTLCache(MAX_ADDRESSES, refill_s, timer=clock)

    def wait_s(self, caller: Caller, address: str) -> float:
        """0 when the request may go ahead (taking a token), else the seconds until one frees."""
        rate = self.limits.rate_for(caller.role)
        buckets = self._addresses if caller is ANONYMOUS else self._clients
        key = address_key(address) if caller is ANONYMOUS else caller.client_id
        now = self.clock()
        bucket = buckets.get(key) or _Bucket(float(rate.burst), now)
        bucket.tokens = min(rate.burst, bucket.tokens + (now - bucket.at) * rate.rate_per_s)
        bucket.at = now
        buckets[key] = bucket  # set again: renews the address's time to live
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / rate.rate_per_s


def address_key(address: str) -> str:
    """How an anonymous caller is counted: its address, an IPv6 one by its /64."""
    # One IPv6 host usually holds a whole /64; counting single addresses there would let
    # it change address for every request.
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class RateLimitMiddleware:
    """ASGI middleware after AuthMiddleware: answers 429 RATE_LIMITED with Retry-After."""

    def __init__(self, app: ASGIApp, limits: LimitsConfig) -> None:
        self.app = app
        self.limiter = RateLimiter(limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if guarded(scope):
            caller: Caller = scope.get("state", {}).get("caller", ANONYMOUS)
            client = scope.get("client")
            wait_s = self.limiter.wait_s(caller, client[0] if client else "")
            if wait_s > 0:
                retry_after = max(1, math.ceil(wait_s))
                message = f"rate limit exceeded; retry after {retry_after} s"
                headers = [(b"retry-after", str(retry_after).encode())]
                await refuse(send, 429, ErrorCode.RATE_LIMITED, message, headers)
                return
        await self.app(scope, receive, send)
