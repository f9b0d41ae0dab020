"""Per-client rate limit of contract §5 (RATE_LIMITED): a token bucket for each client.

With [cache] url the buckets are Redis's, one per client for all replicas (contract §11,
gateway/redis_budget.py); when Redis cannot be reached a replica counts in-process, at its
share of each rate (rate / [cache] replicas).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.shared import SharedUnavailable
from core.errors import ErrorCode
from core.roles import ANONYMOUS, Caller, Role
from gateway.config import LimitsConfig, RateConfig
from gateway.redis_budget import RedisRates
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

    def __init__(
        self,
        limits: LimitsConfig,
        clock: Callable[[], float] = time.monotonic,
        share: float = 1.0,
    ) -> None:
        self.limits = limits
        self.clock = clock
        # This replica's share of every rate and burst: 1 alone, 1 / replicas as the
        # fallback of shared buckets.
        self.share = share
        self._clients: dict[str, _Bucket] = {}  # bounded by the [[clients]] of the config
        public = self.rate_for(Role.PUBLIC)
        # An address idle this long has a full bucket again: forgetting it changes nothing.
        refill_s = public.burst / public.rate_per_s
        self._addresses: TTLCache[str, _Bucket] = TTLCache(MAX_ADDRESSES, refill_s, timer=clock)

    def rate_for(self, role: Role) -> RateConfig:
        """The bucket of a role at this limiter's share."""
        rate = self.limits.rate_for(role)
        if self.share == 1.0:
            return rate
        return RateConfig(rate.rate_per_s * self.share, max(1, math.floor(rate.burst * self.share)))

    def wait_s(self, caller: Caller, address: str) -> float:
        """0 when the request may go ahead (taking a token), else the seconds until one frees."""
        rate = self.rate_for(caller.role)
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

    def __init__(
        self, app: ASGIApp, limits: LimitsConfig, shared: RedisRates | None = None
    ) -> None:
        self.app = app
        self.shared = shared
        # Without Redis, the whole rate here; with it, the fallback at this replica's share.
        share = 1.0 / shared.replicas if shared is not None else 1.0
        self.limiter = RateLimiter(limits, share=share)

    async def wait_s(self, caller: Caller, address: str) -> float:
        """The shared bucket's answer, else (no Redis, or unreachable) the in-process one."""
        if self.shared is not None:
            if caller is ANONYMOUS:
                key = f"address:{address_key(address)}"
            else:
                key = f"client:{caller.client_id}"
            try:
                return await self.shared.wait_s(key, self.limiter.limits.rate_for(caller.role))
            except SharedUnavailable:
                pass  # counted by the backend; this request at this replica's share
        return self.limiter.wait_s(caller, address)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if guarded(scope):
            caller: Caller = scope.get("state", {}).get("caller", ANONYMOUS)
            client = scope.get("client")
            wait_s = await self.wait_s(caller, client[0] if client else "")
            if wait_s > 0:
                retry_after = max(1, math.ceil(wait_s))
                message = f"rate limit exceeded; retry after {retry_after} s"
                headers = [(b"retry-after", str(retry_after).encode())]
                await refuse(send, 429, ErrorCode.RATE_LIMITED, message, headers)
                return
        await self.app(scope, receive, send)
