"""The account-wide rate budget in Redis, plugged into ccxt's throttle.

ccxt (async_support, 4.x) awaits ``exchange.throttle(cost)`` in ``fetch2`` before every
REST request when ``enableRateLimit`` is true, with ``cost`` from the endpoint's table
(the same ``calculate_rate_limiter_cost`` ratelimit_cost.request_cost uses). ``install``
replaces that method **on the instance** (stock ccxt classes, no subclass) with
``SharedRateLimiter.acquire``, which takes the cost from the Redis token bucket of the
account (TOKEN_BUCKET_LUA via EVALSHA; redis-py's Script re-loads it on NOSCRIPT).

Budget: cost units per minute = ``rate_limit.requests_per_minute`` (read as ccxt cost
units) or ccxt's own budget for the exchange (``60 * 1000 / rateLimit``; for Binance
1200 units = 6000 request weight), times ``SAFETY`` so that exchanges counting in fixed
one-minute windows are never exceeded even with a full burst at a window's edge
(burst = 1 s of budget, at least the largest single request).

When Redis is unreachable every pod falls back to ``BucketParams.local_share`` (budget /
pods using the account) in process, sets ``tradebot_ratelimit_local_fallback`` to 1, and
probes Redis again every ``retry_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tradebot_runtime import metrics
from tradebot_runtime.ratelimit_cost import to_milli_units, units_per_second
from tradebot_runtime.ratelimit_lua import (
    MICRO_PER_MILLI,
    TOKEN_BUCKET_LUA,
    BucketParams,
    BucketState,
    bucket_take,
)

log = logging.getLogger("tradebot.ratelimit")

SAFETY: Final = Decimal("0.9")
MAX_REQUEST_COST_MILLI: Final = 5 * MICRO_PER_MILLI
"""Largest single request cost the bucket must be able to serve (Binance exchangeInfo,
account and myTrades cost 4 units)."""


def budget_params(
    exchange: Any, requests_per_minute: int | None, *, safety: Decimal = SAFETY
) -> BucketParams:
    """Bucket parameters of one account's budget."""
    if requests_per_minute:
        per_minute = Decimal(requests_per_minute)
    else:
        per_minute = units_per_second(exchange) * 60
    rate = int(per_minute * safety * MICRO_PER_MILLI / 60)
    capacity = max(rate, MAX_REQUEST_COST_MILLI)
    return BucketParams(rate_milli_per_s=max(rate, 1), capacity_milli=capacity)


class SharedRateLimiter:
    """Token bucket shared by every pod on one account (Redis), local share as fallback."""

    def __init__(
        self,
        client: redis.Redis | None,
        key: str,
        params: BucketParams,
        *,
        pods: Callable[[], int] = lambda: 1,
        retry_s: float = 5.0,
        redis_timeout_s: float = 0.5,
    ) -> None:
        self.client = client
        self.key = key
        self.params = params
        self.pods = pods
        self.retry_s = retry_s
        self.redis_timeout_s = redis_timeout_s
        self._script = client.register_script(TOKEN_BUCKET_LUA) if client is not None else None
        self._local_state: BucketState | None = None
        self._redis_down_until = 0.0 if client is not None else float("inf")
        self._lock = asyncio.Lock()
        self.waited_s = 0.0

    @property
    def using_local_share(self) -> bool:
        return time.monotonic() < self._redis_down_until

    async def _take_redis(self, cost_milli: int) -> tuple[bool, int]:
        assert self._script is not None
        result = await asyncio.wait_for(
            self._script(
                keys=[self.key],
                args=[cost_milli, self.params.rate_milli_per_s, self.params.capacity_milli],
            ),
            self.redis_timeout_s,
        )
        return bool(int(result[0])), int(result[1])

    def _take_local(self, cost_milli: int) -> tuple[bool, int]:
        share = self.params.local_share(self.pods(), min_capacity_milli=MAX_REQUEST_COST_MILLI)
        result = bucket_take(
            self._local_state,
            int(time.time() * 1000),
            cost_milli,
            share.rate_milli_per_s,
            share.capacity_milli,
        )
        self._local_state = result.state
        return result.allowed, result.wait_ms

    async def _take(self, cost_milli: int) -> tuple[bool, int]:
        if not self.using_local_share:
            try:
                allowed, wait = await self._take_redis(cost_milli)
                metrics.RATE_LIMIT_FALLBACK.set(0)
                return allowed, wait
            except (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError) as exc:
                log.warning("rate budget in Redis unreachable, using the local share: %s", exc)
                self._redis_down_until = time.monotonic() + self.retry_s
                # start the local bucket empty: the shared one may have been drained
                self._local_state = BucketState(0, int(time.time() * 1000))
                metrics.RATE_LIMIT_FALLBACK.set(1)
        async with self._lock:
            return self._take_local(cost_milli)

    async def acquire(self, cost: float | Decimal | None = None) -> None:
        """Wait until ``cost`` ccxt units are available (ccxt's ``throttle`` signature)."""
        units = Decimal(str(cost)) if cost is not None else Decimal(1)
        cost_milli = min(to_milli_units(units), self.params.capacity_milli)
        started = time.monotonic()
        while True:
            allowed, wait_ms = await self._take(cost_milli)
            if allowed:
                break
            await asyncio.sleep(max(wait_ms, 1) / 1000)
        waited = time.monotonic() - started
        if waited > 0.0005:
            self.waited_s += waited
            metrics.RATE_LIMIT_WAIT.inc(waited)


def install(exchange: Any, limiter: SharedRateLimiter) -> None:
    """Route a stock ccxt async exchange's throttle through ``limiter``."""
    exchange.enableRateLimit = True
    exchange.throttle = limiter.acquire
