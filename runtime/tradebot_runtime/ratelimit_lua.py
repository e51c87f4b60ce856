"""The shared token bucket: one per exchange account, in Redis, used by every pod.

``TOKEN_BUCKET_LUA`` runs atomically in Redis (EVALSHA); ``bucket_take`` is its exact
Python mirror, used by unit tests, by the local fallback when Redis is unreachable, and
as the specification. THE TWO MUST STAY IN SYNC: tests/unit/ratelimit_cases.json holds
cases that both must satisfy (the Python side is checked by the unit tests, the Lua side
by the integration tests against a real Redis).

Integer arithmetic only, so Lua (doubles) and Python agree bit for bit:

* costs and capacity are in milli-units (1000 = one ccxt cost unit, see
  ratelimit_cost.to_milli_units); the refill rate is in milli-units per second;
* the stored token count is in micro-units (milli-units x 1000), so that refilling
  ``elapsed_ms x rate`` micro-units is exact;
* all values stay far below 2**53 (capacity <= 10**12 milli-units, rate <= 10**9).

Semantics: refill by the elapsed time (capped at full), then take ``cost`` if that many
tokens are there; otherwise take nothing and return how many ms to wait. A cost above the
capacity can never be served: wait -1. A missing key is a full bucket. Time comes from
Redis (``TIME``) so every pod shares one clock; tests may pass ``now`` explicitly. If the
clock goes backwards there is no refill and the stored time does not move back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

TOKEN_BUCKET_LUA: Final = """
-- tradebot token bucket; mirror: tradebot_runtime.ratelimit_lua.bucket_take
-- KEYS[1]  bucket hash: t = tokens (micro-units), ts = time of last refill (ms)
-- ARGV[1]  cost (milli-units)   ARGV[2] rate (milli-units per second)
-- ARGV[3]  capacity (milli-units)   ARGV[4] now in ms (optional; default Redis TIME)
-- returns  {allowed 1|0, wait_ms (-1: cost above capacity), tokens after (micro-units)}
local cost = tonumber(ARGV[1]) * 1000
local rate = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3]) * 1000
local now
if ARGV[4] ~= nil and ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if tokens > capacity then tokens = capacity end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
local fill_ms = math.floor(capacity / rate) + 1
if elapsed > fill_ms then elapsed = fill_ms end
tokens = tokens + elapsed * rate
if tokens > capacity then tokens = capacity end
if now > ts then ts = now end
local allowed = 0
local wait = 0
if cost > capacity then
  wait = -1
elseif tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  local deficit = cost - tokens
  wait = math.floor(deficit / rate)
  while wait * rate < deficit do wait = wait + 1 end
  while wait > 0 and (wait - 1) * rate >= deficit do wait = wait - 1 end
end
redis.call('HSET', KEYS[1], 't', string.format('%.0f', tokens), 'ts', string.format('%.0f', ts))
redis.call('PEXPIRE', KEYS[1], fill_ms + 1000)
return {allowed, wait, tokens}
"""

MICRO_PER_MILLI: Final = 1000
MAX_CAPACITY_MILLI: Final = 10**12
MAX_RATE_MILLI_PER_S: Final = 10**9


@dataclass(frozen=True, slots=True)
class BucketState:
    """What Redis stores under the bucket key."""

    tokens_micro: int
    ts_ms: int


@dataclass(frozen=True, slots=True)
class TakeResult:
    allowed: bool
    wait_ms: int
    """0 when allowed; -1 when the cost can never fit; otherwise ms until it would fit."""
    state: BucketState


def bucket_take(
    state: BucketState | None,
    now_ms: int,
    cost_milli: int,
    rate_milli_per_s: int,
    capacity_milli: int,
) -> TakeResult:
    """Pure mirror of TOKEN_BUCKET_LUA (same steps, same integer results)."""
    if not 0 < rate_milli_per_s <= MAX_RATE_MILLI_PER_S:
        raise ValueError(f"rate must be in 1..{MAX_RATE_MILLI_PER_S} milli-units/s")
    if not 0 < capacity_milli <= MAX_CAPACITY_MILLI:
        raise ValueError(f"capacity must be in 1..{MAX_CAPACITY_MILLI} milli-units")
    if cost_milli < 0:
        raise ValueError("cost must not be negative")
    cost = cost_milli * MICRO_PER_MILLI
    rate = rate_milli_per_s  # milli-units per s == micro-units per ms
    capacity = capacity_milli * MICRO_PER_MILLI
    if state is None:
        tokens, ts = capacity, now_ms
    else:
        tokens, ts = state.tokens_micro, state.ts_ms
    tokens = min(tokens, capacity)
    elapsed = max(0, now_ms - ts)
    fill_ms = capacity // rate + 1
    elapsed = min(elapsed, fill_ms)
    tokens = min(capacity, tokens + elapsed * rate)
    ts = max(ts, now_ms)
    if cost > capacity:
        return TakeResult(False, -1, BucketState(tokens, ts))
    if tokens >= cost:
        return TakeResult(True, 0, BucketState(tokens - cost, ts))
    deficit = cost - tokens
    wait = -(-deficit // rate)
    return TakeResult(False, wait, BucketState(tokens, ts))


def bucket_ttl_ms(rate_milli_per_s: int, capacity_milli: int) -> int:
    """The PEXPIRE the script sets: an idle bucket disappears once it would be full."""
    return capacity_milli * MICRO_PER_MILLI // rate_milli_per_s + 1 + 1000


@dataclass(frozen=True, slots=True)
class BucketParams:
    """Rate and capacity of one bucket, in the script's units."""

    rate_milli_per_s: int
    capacity_milli: int

    @classmethod
    def per_minute(cls, units_per_minute: int, *, burst_seconds: int = 1) -> BucketParams:
        """A budget of ``units_per_minute`` cost units with a burst of ``burst_seconds``
        worth of tokens (at least one unit)."""
        if units_per_minute <= 0:
            raise ValueError("the budget must be positive")
        rate = units_per_minute * MICRO_PER_MILLI // 60
        capacity = max(MICRO_PER_MILLI, rate * burst_seconds)
        return cls(rate_milli_per_s=max(rate, 1), capacity_milli=capacity)

    def local_share(self, pods: int, *, min_capacity_milli: int = MICRO_PER_MILLI) -> BucketParams:
        """Conservative per-pod bucket when Redis is unreachable: 1/pods of the rate and
        of the burst (every pod may fall back at the same time). ``min_capacity_milli``
        should be the largest single request cost, or that request could never pass."""
        pods = max(pods, 1)
        return BucketParams(
            rate_milli_per_s=max(self.rate_milli_per_s // pods, 1),
            capacity_milli=max(self.capacity_milli // pods, min_capacity_milli),
        )
