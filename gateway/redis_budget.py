"""Budgets all replicas share through Redis (contract §7, §11): department paces, client rates.

Both are Lua scripts, so each booking or token taken is one atomic step on the Redis server,
timed by the server's clock (TIME): the replicas' clocks never have to agree.

- `RedisPace` (adapters.shared.SharedPace): the pace of adapters/http.py's Pacer (GCRA with
  a burst, plus a sliding window so that bursts never add up past the rate), kept under
  `<prefix>pace:<name>:tat` and `…:sent`. Background work books on its own pace
  (`courts:background`, rate × share) before it takes a slot of the department's, as
  in-process: interactive bookings made ahead of it keep their places.
- `RedisRates`: the clients' token buckets of gateway/rate_limit.py, one hash per client
  (`<prefix>rate:client:<id>`) or anonymous address (`<prefix>rate:address:<address>`).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

import redis.asyncio as redis

from gateway.config import RateConfig
from gateway.redis_cache import PACE, RATE_LIMIT, RedisBackend

# At most max_rps booked sends in any window this long: calls reach the department up to a
# few tens of milliseconds after their booked times (a busy event loop, a new connection),
# and with no margin the sends of a late moment could meet those of the next second
# there. It costs 5% of the rate while the pace is saturated.
WINDOW_S = 1.05

# KEYS: tat, sent. ARGV: count, bounded (1/0), latest (s from now), rate, burst, window,
# nonce. Returns the server's now, then the booked send times (server time), or only now
# when the last would be later than `latest` (then nothing is booked).
_BOOK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local count = tonumber(ARGV[1])
local bounded = ARGV[2] == '1'
local latest = tonumber(ARGV[3])
local rate = tonumber(ARGV[4])
local burst = tonumber(ARGV[5])
local window = tonumber(ARGV[6])
local nonce = ARGV[7]
local interval = 1.0 / rate
local tolerance = (burst - 1) * interval
local per_window = math.max(1, math.floor(rate))
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local raw = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. string.format('%.6f', now - window),
  '+inf', 'WITHSCORES')
local sent = {}
for i = 2, #raw, 2 do
  sent[#sent + 1] = tonumber(raw[i])
end
local booked = {}
for _ = 1, count do
  local at = math.max(now, tat - tolerance)
  local n = #sent
  if n >= per_window then
    local edge = sent[n - per_window + 1]
    if edge > at - window then
      at = math.max(at, edge + window)
    end
  end
  local j = #sent
  while j > 0 and sent[j] > at do
    j = j - 1
  end
  table.insert(sent, j + 1, at)
  booked[#booked + 1] = at
  tat = math.max(tat, at) + interval
end
if bounded and booked[#booked] - now > latest then
  return {string.format('%.6f', now)}
end
for i, at in ipairs(booked) do
  redis.call('ZADD', KEYS[2], string.format('%.6f', at), string.format('%.6f:%s:%d', at, nonce, i))
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.6f', now - window))
redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX',
  math.ceil((math.max(tat - now, 0) + window) * 1000) + 1000)
redis.call('PEXPIRE', KEYS[2], math.ceil((booked[#booked] - now + window) * 1000) + 1000)
local out = {string.format('%.6f', now)}
for i, at in ipairs(booked) do
  out[i + 1] = string.format('%.6f', at)
end
return out
"""

# KEYS: the bucket. ARGV: rate per s, burst. Returns 0 when a token was taken, else the
# seconds until one frees (as text).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1])
local at = tonumber(bucket[2])
if (not tokens) or (not at) then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at',
  string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return string.format('%.6f', wait)
"""


class ServerClock:
    """The Redis server's clock (TIME) as this event loop's clock sees it.

    Each booking tells the server's time at some moment between sending the script and
    reading its answer; the midpoint of the quickest such round trip is the best estimate
    (NTP's rule), within half of it. A busy event loop reads answers late: those samples
    are slow ones and do not replace a quick one. An estimate ages by the most two clocks
    drift apart (0.5 ms a second, NTP's slew bound), so a newer sample replaces it in time.
    """

    DRIFT = 0.0005

    def __init__(self) -> None:
        # (error bound, offset, loop time measured)
        self._best: tuple[float, float, float] | None = None

    def observe(self, sent: float, received: float, server_now: float) -> None:
        """One round trip: loop time before sending and after reading, the server's time."""
        error = (received - sent) / 2
        offset = server_now - (sent + received) / 2
        best = self._best
        if best is None or error <= best[0] + (received - best[2]) * self.DRIFT:
            self._best = (error, offset, received)

    def to_loop(self, server_time: float) -> float:
        """A server time as loop time (observe has been called)."""
        assert self._best is not None
        return server_time - self._best[1]


class RedisPace:
    """adapters.shared.SharedPace on Redis: one pace per name for the whole deployment."""

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend
        self._book = backend.client.register_script(_BOOK)
        self._clock = ServerClock()

    @property
    def replicas(self) -> int:
        """[cache] replicas: the share each replica paces at while Redis is down."""
        return self._backend.config.replicas

    async def book(
        self, name: str, rate_per_s: float, burst: int, count: int, latest: float
    ) -> list[float] | None:
        """Send times (loop time) booked for the deployment, or None: not before `latest`."""
        if count <= 0:
            return []
        loop = asyncio.get_running_loop()
        bounded = math.isfinite(latest)
        base = f"{self._backend.prefix}pace:{name}"
        args = [
            count,
            1 if bounded else 0,
            f"{latest - loop.time():.6f}" if bounded else "0",
            repr(float(rate_per_s)),
            burst,
            repr(WINDOW_S),
            uuid.uuid4().hex,
        ]

        async def op(client: redis.Redis) -> tuple[float, Any, float]:
            sent = loop.time()
            answer = await self._book(
                keys=[f"{base}:tat", f"{base}:sent"], args=args, client=client
            )
            return sent, answer, loop.time()

        sent, answer, received = await self._backend.run(PACE, op)
        self._clock.observe(sent, received, float(answer[0]))
        if len(answer) == 1:
            return None
        # Server times, as every replica books them, on this replica's clock.
        return [self._clock.to_loop(float(at)) for at in answer[1:]]


class RedisRates:
    """The clients' token buckets, shared by every replica (gateway/rate_limit.py)."""

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend
        self._take = backend.client.register_script(_TAKE)

    @property
    def replicas(self) -> int:
        """[cache] replicas: each replica's share of a client's rate while Redis is down."""
        return self._backend.config.replicas

    async def wait_s(self, key: str, rate: RateConfig) -> float:
        """0 when a token of the bucket `key` was taken, else the seconds until one frees.

        Raises SharedUnavailable when Redis cannot be reached (counted as a fallback).
        """
        name = f"{self._backend.prefix}rate:{key}"
        args: list[str | int] = [repr(float(rate.rate_per_s)), rate.burst]

        async def op(client: redis.Redis) -> Any:
            return await self._take(keys=[name], args=args, client=client)

        return float(await self._backend.run(RATE_LIMIT, op))
