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
probes Redis again every ``retry_s``. "Pods using the account" counts every bot's pods:
the budget key is per account, and several bots may share it, while the caller's
``pods`` (the bot's own presence) only sees one bot. So while Redis is reachable each
limiter also registers in the sorted set ``<key>:pods`` (member -> expiry, refreshed every
``pods_ttl_s / 3``) and remembers how many are registered; the fallback divides by the
larger of the two counts (``fallback_pods``).

429 before 418: when the exchange answers 429 (or 418) anyway (another tenant of the
account, a budget set too high), every further request would count towards Binance's
escalation to an IP ban. ``install`` therefore also hooks the instance's
``on_rest_response``: a 429/418 reply pauses every request of this process through the
limiter for the reply's ``Retry-After`` (at least ``MIN_PAUSE_S``), counted in
``tradebot_ratelimit_pauses_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
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
MIN_PAUSE_S: Final = 1.0
"""Pause after a 429/418 without a usable Retry-After header."""
MAX_PAUSE_S: Final = 300.0
"""Upper bound of one pause (a bogus Retry-After must not stop the pod for hours)."""


class _Credit:
    """Tokens already taken (milli-units) for the next request(s) of a task. A mutable
    holder: a task created meanwhile (e.g. by ``asyncio.wait_for``) shares it instead of
    copying it, so a credit is never spent twice."""

    milli = 0


_PREPAID: Final = contextvars.ContextVar[_Credit | None]("tradebot_ratelimit_prepaid", default=None)

_SEND_GATE: Final = contextvars.ContextVar[Callable[[], bool] | None](
    "tradebot_ratelimit_send_gate", default=None
)
"""Set around an order's create request (``send_gate``): may it still go out?"""


class SendDeadlinePassed(Exception):
    """The request was about to go out after the sender lost the right to send (its Lease
    lapsed during a rate-limit wait): it is not sent, and nothing reached the exchange."""


@contextlib.contextmanager
def send_gate(may_send: Callable[[], bool]) -> Iterator[None]:
    """While the block runs, every throttle wait of this task ends with ``may_send()``:
    False raises SendDeadlinePassed before the request is signed and sent."""
    token = _SEND_GATE.set(may_send)
    try:
        yield
    finally:
        _SEND_GATE.reset(token)


GATE_POLL_S: Final = 0.2
"""A pause (429, 418) is slept in slices this long while a send gate is set, so that a
lapsed Lease ends the wait at once instead of after up to 300 s."""


async def _nap(seconds: float) -> None:
    await asyncio.sleep(min(seconds, GATE_POLL_S) if _SEND_GATE.get() is not None else seconds)


def _check_gate() -> None:
    gate = _SEND_GATE.get()
    if gate is not None and not gate():
        raise SendDeadlinePassed("the right to send ended while waiting for the rate limit")


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


def order_count_params(orders_per_10s: int) -> BucketParams:
    """The bucket of an account's new-order limit (Binance: orders per 10 s, counted per
    account, separately from request weight). One token per order. Any 10 s interval then
    holds at most capacity + 10 s x rate = floor(N / 10) + 0.9 N <= N orders (capacity 1
    below N = 10: floor(1 + 0.9 N) <= N), whatever the exchange's window alignment."""
    if orders_per_10s <= 0:
        raise ValueError("ordersPer10s must be positive")
    capacity = to_milli_units(Decimal(max(1, orders_per_10s // 10)))
    rate = to_milli_units(Decimal(orders_per_10s) * Decimal("0.09"))  # 0.9 N per 10 s
    return BucketParams(rate_milli_per_s=max(rate, 1), capacity_milli=capacity)


def retry_after_s(status: int, headers: Mapping[str, Any] | None) -> float | None:
    """How long to stop sending after a reply with ``status``: None unless it is a 429 or
    418; else its Retry-After in seconds (case-insensitive header, delta-seconds), within
    [MIN_PAUSE_S, MAX_PAUSE_S]."""
    if status not in (418, 429):
        return None
    value: Any = None
    for name, raw in (headers or {}).items():
        if str(name).lower() == "retry-after":
            value = raw
            break
    try:
        seconds = float(str(value).strip()) if value is not None else MIN_PAUSE_S
    except ValueError:
        seconds = MIN_PAUSE_S
    if seconds != seconds:  # NaN
        seconds = MIN_PAUSE_S
    return min(max(seconds, MIN_PAUSE_S), MAX_PAUSE_S)


def fallback_pods(bot_pods: int, account_pods: int) -> int:
    """Pods to divide the budget by without Redis: the larger of this bot's live pods and
    the pods of every bot last seen on the account (never below 1)."""
    return max(bot_pods, account_pods, 1)


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
        member: str | None = None,
        pods_ttl_s: float = 30.0,
    ) -> None:
        self.client = client
        self.key = key
        self.params = params
        self.pods = pods
        self.retry_s = retry_s
        self.redis_timeout_s = redis_timeout_s
        self.member = member or uuid.uuid4().hex
        self.pods_ttl_s = pods_ttl_s
        self.account_pods = 1
        """Limiters registered on the account at the last refresh (every bot's pods)."""
        self._registered_at: float | None = None
        self._registering = False
        self._script = client.register_script(TOKEN_BUCKET_LUA) if client is not None else None
        self._local_state: BucketState | None = None
        self._redis_down_until = 0.0 if client is not None else float("inf")
        if client is None:  # no Redis at all: the local share for good, and said so
            metrics.RATE_LIMIT_FALLBACK.set(1)
        self._lock = asyncio.Lock()
        self._paused_until = 0.0
        self.waited_s = 0.0

    @property
    def using_local_share(self) -> bool:
        return time.monotonic() < self._redis_down_until

    @property
    def paused(self) -> bool:
        return time.monotonic() < self._paused_until

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (the exchange said 429/418 with Retry-After)."""
        until = time.monotonic() + seconds
        if until > self._paused_until:
            if not self.paused:
                log.warning("exchange rate limit hit: pausing requests", extra={"seconds": seconds})
            self._paused_until = until
        metrics.RATE_LIMIT_PAUSES.inc()

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

    async def _register(self) -> None:
        """Refresh this limiter's entry in ``<key>:pods`` and count the live entries."""
        now = time.monotonic()
        if self._registering or (
            self._registered_at is not None and now - self._registered_at < self.pods_ttl_s / 3
        ):
            return
        assert self.client is not None
        self._registering = True
        try:
            key = f"{self.key}:pods"
            wall = time.time()
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {self.member: wall + self.pods_ttl_s})
                pipe.zremrangebyscore(key, "-inf", wall)
                pipe.zcard(key)
                pipe.expire(key, max(int(self.pods_ttl_s * 4), 60))
                result = await asyncio.wait_for(pipe.execute(), self.redis_timeout_s)
            self.account_pods = max(int(result[2]), 1)
            metrics.RATE_LIMIT_ACCOUNT_PODS.set(self.account_pods)
            self._registered_at = now
        except Exception as exc:  # advisory: the next refresh tries again
            log.debug("rate budget pod registry not updated: %s", exc)
        finally:
            self._registering = False

    def _take_local(self, cost_milli: int) -> tuple[bool, int]:
        pods = fallback_pods(self.pods(), self.account_pods)
        share = self.params.local_share(pods, min_capacity_milli=MAX_REQUEST_COST_MILLI)
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
                await self._register()
                return allowed, wait
            except (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError) as exc:
                log.warning("rate budget in Redis unreachable, using the local share: %s", exc)
                self._redis_down_until = time.monotonic() + self.retry_s
                # start the local bucket empty: the shared one may have been drained
                self._local_state = BucketState(0, int(time.time() * 1000))
                metrics.RATE_LIMIT_FALLBACK.set(1)
        async with self._lock:
            return self._take_local(cost_milli)

    async def prepay(self, cost: Decimal) -> None:
        """Take ``cost`` units now for a request this task sends soon: its ``acquire``
        then returns at once. The engine prepays an order before journaling it, so no
        rate-limit wait sits between the journal write and the send (a kill there leaves
        an order nobody can confirm; a long wait there would send after the Lease may be
        gone). ``drop_prepaid`` forgets what was not used."""
        await self.acquire(cost)
        credit = _PREPAID.get()
        if credit is None:
            credit = _Credit()
            _PREPAID.set(credit)
        credit.milli += min(to_milli_units(cost), self.params.capacity_milli)

    @staticmethod
    def drop_prepaid() -> None:
        credit = _PREPAID.get()
        if credit is not None:
            credit.milli = 0

    async def acquire(self, cost: float | Decimal | None = None) -> None:
        """Wait until ``cost`` ccxt units are available (ccxt's ``throttle`` signature)."""
        units = Decimal(str(cost)) if cost is not None else Decimal(1)
        cost_milli = min(to_milli_units(units), self.params.capacity_milli)
        credit = _PREPAID.get()
        if credit is not None and credit.milli > 0:  # taken before (prepay): only the
            used = min(credit.milli, cost_milli)  # difference, if any, is waited for
            credit.milli -= used
            cost_milli -= used
            if cost_milli == 0:
                _check_gate()
                return
        started = time.monotonic()
        while True:
            _check_gate()  # after every wait, and right before the request goes out
            pause = self._paused_until - time.monotonic()
            if pause > 0:
                await _nap(pause)
                continue
            allowed, wait_ms = await self._take(cost_milli)
            if allowed:
                break
            await asyncio.sleep(max(wait_ms, 1) / 1000)
        _check_gate()
        waited = time.monotonic() - started
        if waited > 0.0005:
            self.waited_s += waited
            metrics.RATE_LIMIT_WAIT.inc(waited)


def install(exchange: Any, limiter: SharedRateLimiter) -> None:
    """Route a stock ccxt async exchange's throttle through ``limiter``, and pause it on
    429/418 replies (ccxt calls ``on_rest_response`` with every reply's status and
    headers before it raises DDoSProtection / RateLimitExceeded)."""
    exchange.enableRateLimit = True
    exchange.throttle = limiter.acquire
    original = exchange.on_rest_response

    def on_rest_response(code: Any, reason: Any, url: Any, method: Any, headers: Any,
                         *rest: Any) -> Any:  # fmt: skip
        try:
            seconds = retry_after_s(int(code), headers)
        except (TypeError, ValueError):
            seconds = None
        if seconds is not None:
            limiter.pause(seconds)
        return original(code, reason, url, method, headers, *rest)

    exchange.on_rest_response = on_rest_response
