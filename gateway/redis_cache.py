"""[cache] url (contract §11): the Redis several replicas share, and the answer store on it.

`RedisBackend` is the one client of a replica: every operation is bounded by `[cache]
timeout_s`, and one that fails (refused, reset, timed out, or any Redis error) makes the
replica use its in-process state for that call, skip Redis for RETRY_S, and say so (log,
/readyz, the metrics). Nothing here ever fails a query.

`RedisAnswers` implements adapters.shared.SharedAnswers: per key (`<department>:<parts>:
<code>`), under `<prefix>answer:<key>`, the fresh answer (`:fresh`, cache_ttl_s), the last
good answer (`:good`, stale_ttl_s) and the claim of the replica fetching it (`:flight`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from adapters.shared import ABANDONED, CLAIMED, FAILED, HIT, WAITING, Found, SharedUnavailable
from gateway.config_state import CacheConfig

T = TypeVar("T")
log = logging.getLogger(__name__)

# After a failed operation Redis is left alone this long: meanwhile every call goes
# in-process at once (no timeout spent), then the next one tries again.
RETRY_S = 1.0
# What fell back, for credit_gateway_cache_fallbacks_total{what}: a closed set.
PACE = "pace"
ANSWERS = "answers"
RATE_LIMIT = "rate_limit"
FALLBACK_KINDS = (PACE, ANSWERS, RATE_LIMIT)
# Connections to Redis at once; past it an operation falls back rather than queue.
MAX_CONNECTIONS = 256
# A failed fetch is told to the replicas waiting on it this long (they look every 50 ms at
# most); a new lookup takes the key over at once: failures are never served from here.
FAILED_MARK_MS = 2000


class RedisBackend:
    """One per runtime: the client, whether Redis answers, and the fallbacks counted."""

    def __init__(self, config: CacheConfig) -> None:
        self.config = config
        self.prefix = config.key_prefix
        self.client: redis.Redis = redis.Redis.from_url(
            config.url,
            # Bounded by timeout_s around each operation; these only stop a socket from
            # outliving it, and no retry may stretch it.
            socket_timeout=max(config.timeout_s, 0.5),
            socket_connect_timeout=max(config.timeout_s, 0.5),
            retry=Retry(NoBackoff(), 0),
            max_connections=MAX_CONNECTIONS,
        )
        # Set by the runtime when /metrics is on.
        self.on_fallback: Callable[[str], None] | None = None
        self._down_until = 0.0
        self._up = True
        self._cause: str | None = None

    @property
    def up(self) -> bool:
        """False from a failed operation until one succeeds again (the metrics' gauge)."""
        return self._up

    @property
    def cause(self) -> str | None:
        """Why the latest operation failed, for /readyz's log line."""
        return self._cause

    async def run(self, what: str, op: Callable[[redis.Redis], Awaitable[T]]) -> T:
        """One operation within timeout_s; SharedUnavailable (counted) when Redis fails."""
        if time.monotonic() < self._down_until:
            self._fell_back(what)
            raise SharedUnavailable("redis is down")
        try:
            return await self._bounded(op)
        except SharedUnavailable:
            self._fell_back(what)
            raise

    async def probe(self) -> bool:
        """Used by /readyz: a PING now, also while calls skip Redis."""
        try:
            await self._bounded(lambda client: client.ping())
        except SharedUnavailable:
            return False
        return True

    async def close(self) -> None:
        """Used when the gateway stops."""
        await self.client.aclose()

    async def _bounded(self, op: Callable[[redis.Redis], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self.config.timeout_s):
                result = await op(self.client)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            raise SharedUnavailable(str(exc)) from None
        if not self._up:
            log.warning("cache: Redis answers again; shared state in use")
        self._up = True
        self._cause = None
        return result

    def _failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + RETRY_S
        cause = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self._up:
            # Once per outage: each call that falls back is counted, not logged.
            log.warning(
                "cache: Redis cannot be reached (%s); answers, paces and rate limits are "
                "in-process at 1/%d of the budgets until it answers",
                cause,
                self.config.replicas,
            )
        self._up = False
        self._cause = cause

    def _fell_back(self, what: str) -> None:
        if self.on_fallback is not None:
            self.on_fallback(what)


# Each key: its fresh answer, or a claim taken for ARGV[1] (PX ARGV[2]) unless another
# replica holds a live one. A failure mark left by a failed fetch is taken over at once.
_LOOKUP = """
local out = {}
for i = 1, #KEYS, 2 do
  local value = redis.call('GET', KEYS[i])
  if value then
    out[#out + 1] = {'hit', value}
  else
    local claim = redis.call('GET', KEYS[i + 1])
    if (not claim) or string.sub(claim, 1, 7) == 'failed:' then
      redis.call('SET', KEYS[i + 1], ARGV[1], 'PX', ARGV[2])
      out[#out + 1] = {'claimed'}
    else
      out[#out + 1] = {'waiting'}
    end
  end
end
return out
"""

# A claimed fetch ended. KEYS: (fresh, good, flight) per answer, then flight per failure.
# ARGV: token, fresh ms, good ms (0: none), failure mark ms, answer count, the answers, then
# the failures' kinds. Claims are released only where they are still this fetch's.
_LAND = """
local token = ARGV[1]
local fresh_ms = tonumber(ARGV[2])
local good_ms = tonumber(ARGV[3])
local mark_ms = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
for i = 1, n do
  local value = ARGV[5 + i]
  redis.call('SET', KEYS[3 * i - 2], value, 'PX', fresh_ms)
  if good_ms > 0 then
    redis.call('SET', KEYS[3 * i - 1], value, 'PX', good_ms)
  end
  if redis.call('GET', KEYS[3 * i]) == token then
    redis.call('DEL', KEYS[3 * i])
  end
end
for j = 1, #KEYS - 3 * n do
  local key = KEYS[3 * n + j]
  if redis.call('GET', key) == token then
    redis.call('SET', key, 'failed:' .. token .. ':' .. ARGV[5 + n + j], 'PX', mark_ms)
  end
end
return 1
"""


class RedisAnswers:
    """adapters.shared.SharedAnswers on Redis: fresh and last good answers, claims."""

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend
        self._lookup = backend.client.register_script(_LOOKUP)
        self._land = backend.client.register_script(_LAND)

    def _base(self, key: str) -> str:
        return f"{self._backend.prefix}answer:{key}"

    async def lookup(self, keys: Sequence[str], token: str, claim_s: float) -> dict[str, Found]:
        """Fresh answers, claims taken, or keys another replica is fetching (one script)."""
        if not keys:
            return {}
        names = [f"{self._base(k)}:{suffix}" for k in keys for suffix in ("fresh", "flight")]
        claim_ms = max(1, round(claim_s * 1000))

        async def op(client: redis.Redis) -> Any:
            return await self._lookup(keys=names, args=[token, claim_ms], client=client)

        rows = await self._backend.run(ANSWERS, op)
        found: dict[str, Found] = {}
        for key, row in zip(keys, rows, strict=True):
            state = _bytes(row[0])
            if state == b"hit":
                found[key] = Found(HIT, _bytes(row[1]))
            elif state == b"claimed":
                found[key] = Found(CLAIMED)
            else:
                found[key] = Found(WAITING)
        return found

    async def poll(self, keys: Sequence[str]) -> dict[str, Found]:
        """Keys other replicas are fetching: answered, failed, or still in flight."""
        names = [f"{self._base(k)}:{suffix}" for k in keys for suffix in ("fresh", "flight")]

        async def op(client: redis.Redis) -> list[bytes | None]:
            values = await client.mget(names)
            return [v.encode() if isinstance(v, str) else v for v in values]

        values = await self._backend.run(ANSWERS, op)
        found: dict[str, Found] = {}
        for i, key in enumerate(keys):
            value, claim = values[2 * i], values[2 * i + 1]
            if value is not None:
                found[key] = Found(HIT, value)
            elif claim is None:
                # Its replica stopped, or the claim ran out: nothing will come from there.
                found[key] = Found(ABANDONED)
            elif claim.startswith(b"failed:"):
                found[key] = Found(FAILED, claim.rsplit(b":", 1)[-1])
            else:
                found[key] = Found(WAITING)
        return found

    async def land(
        self,
        answers: Mapping[str, bytes],
        failed: Mapping[str, str],
        token: str,
        fresh_s: float,
        good_s: float,
    ) -> None:
        """Answers kept, failures told, this fetch's claims released (one script)."""
        if not answers and not failed:
            return
        names: list[str] = []
        for key in answers:
            base = self._base(key)
            names += [f"{base}:fresh", f"{base}:good", f"{base}:flight"]
        names += [f"{self._base(key)}:flight" for key in failed]
        args: list[bytes | str | int] = [
            token,
            max(1, round(fresh_s * 1000)),
            max(0, round(good_s * 1000)),
            FAILED_MARK_MS,
            len(answers),
            *answers.values(),
            *failed.values(),
        ]

        async def op(client: redis.Redis) -> Any:
            return await self._land(keys=names, args=args, client=client)

        await self._backend.run(ANSWERS, op)

    async def last_good(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The last good answers any replica kept of these keys."""
        names = [f"{self._base(k)}:good" for k in keys]

        async def op(client: redis.Redis) -> list[bytes | None]:
            values = await client.mget(names)
            return [v.encode() if isinstance(v, str) else v for v in values]

        values = await self._backend.run(ANSWERS, op)
        return {key: value for key, value in zip(keys, values, strict=True) if value is not None}


def _bytes(value: bytes | str) -> bytes:
    # A URL asking for decode_responses=true gets text back; answers are bytes here.
    return value.encode() if isinstance(value, str) else value
