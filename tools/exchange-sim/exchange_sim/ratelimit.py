"""Binance's REST limits: request weight per minute, order counts per 10 s and per day,
and the 429 -> 418 escalation with Retry-After.

Weight is charged per bucket: the API key when the request carries X-MBX-APIKEY (so each
account has its own budget, matching the design's "one budget per account"), otherwise
the client IP. Windows are fixed and aligned to the clock like Binance's (the budget
resets at the start of each minute).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import Limits
from .errors import BinanceError


def request_weight(method: str, path: str, params: Mapping[str, str]) -> int:
    """The documented weight of a spot REST call."""
    endpoint = path.removeprefix("/api/v3/")
    has_symbol = "symbol" in params
    if endpoint == "depth":
        limit = int(params.get("limit", "100") or 100)
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    if endpoint == "ticker/24hr":
        if has_symbol:
            return 2
        count = params.get("symbols", "").count(",") + 1 if "symbols" in params else 10_000
        return 2 if count <= 20 else 40 if count <= 100 else 80
    if endpoint in ("ticker/price", "ticker/bookTicker"):
        return 2 if has_symbol else 4
    if endpoint == "openOrders" and method == "GET":
        return 6 if has_symbol else 80
    if endpoint == "order" and method == "GET":
        return 4
    table = {
        "exchangeInfo": 20,
        "trades": 25,
        "aggTrades": 4,
        "klines": 2,
        "uiKlines": 2,
        "avgPrice": 2,
        "account": 20,
        "allOrders": 20,
        "myTrades": 20,
        "userDataStream": 2,
    }
    return table.get(endpoint, 1)


class RateLimited(BinanceError):
    """A refusal by the limiter; ``kind`` names the ledger counter it increments."""

    def __init__(self, code: int, msg: str, status: int, kind: str, retry_after: int) -> None:
        super().__init__(code, msg, status)
        self.kind = kind
        self.retry_after = retry_after


@dataclass
class _Bucket:
    minute: int = -1
    weight: int = 0
    violations: int = 0
    banned_until: int = 0


@dataclass
class _Orders:
    window_10s: int = -1
    count_10s: int = 0
    day: int = -1
    count_day: int = 0


class RateLimiter:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._buckets: dict[str, _Bucket] = {}
        self._orders: dict[str, _Orders] = {}

    def _bucket(self, key: str, now_ms: int) -> _Bucket:
        bucket = self._buckets.setdefault(key, _Bucket())
        minute = now_ms // 60_000
        if bucket.minute != minute:
            bucket.minute, bucket.weight, bucket.violations = minute, 0, 0
        return bucket

    def charge(self, key: str, weight: int, now_ms: int, limit: int | None = None) -> int:
        """Charge ``weight``; return the minute's used weight or raise 429/418.
        ``limit`` lowers the weight limit for this request (a weight_limit fault)."""
        bucket = self._bucket(key, now_ms)
        if now_ms < bucket.banned_until:
            raise self._banned(bucket.banned_until, now_ms)
        bucket.weight += weight
        if limit is None or limit > self.limits.weight_per_minute:
            limit = self.limits.weight_per_minute
        if bucket.weight <= limit:
            return bucket.weight
        bucket.violations += 1
        if bucket.violations > self.limits.violations_before_ban:
            bucket.banned_until = now_ms + self.limits.ban_seconds * 1000
            raise self._banned(bucket.banned_until, now_ms)
        retry = math.ceil((60_000 - now_ms % 60_000) / 1000)
        msg = (
            f"Too much request weight used; current limit is {limit} request weight per "
            "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."
        )
        raise RateLimited(-1003, msg, 429, "weight_429", retry)

    @staticmethod
    def _banned(until: int, now_ms: int) -> RateLimited:
        msg = (
            f"Way too much request weight used; IP banned until {until}. "
            "Please use WebSocket Streams for live updates to avoid bans."
        )
        return RateLimited(-1003, msg, 418, "banned_418", math.ceil((until - now_ms) / 1000))

    def ban(self, key: str, seconds: int, now_ms: int) -> None:
        self._bucket(key, now_ms).banned_until = now_ms + seconds * 1000

    def used_weight(self, key: str, now_ms: int) -> int:
        return self._bucket(key, now_ms).weight

    def count_order(self, account: str, now_ms: int) -> tuple[int, int]:
        """Count one new order; return (10s count, day count) or raise -1015."""
        state = self._orders.setdefault(account, _Orders())
        window, day = now_ms // 10_000, now_ms // 86_400_000
        if state.window_10s != window:
            state.window_10s, state.count_10s = window, 0
        if state.day != day:
            state.day, state.count_day = day, 0
        limits = self.limits
        if state.count_10s >= limits.orders_per_10s:
            retry = math.ceil((10_000 - now_ms % 10_000) / 1000)
            msg = (
                f"Too many new orders; current limit is {limits.orders_per_10s} orders "
                "per 10 SECOND."
            )
            raise RateLimited(-1015, msg, 429, "orders_429", retry)
        if state.count_day >= limits.orders_per_day:
            retry = math.ceil((86_400_000 - now_ms % 86_400_000) / 1000)
            msg = f"Too many new orders; current limit is {limits.orders_per_day} orders per 1 DAY."
            raise RateLimited(-1015, msg, 429, "orders_429", retry)
        state.count_10s += 1
        state.count_day += 1
        return state.count_10s, state.count_day

    def order_counts(self, account: str, now_ms: int) -> tuple[int, int]:
        state = self._orders.get(account)
        if state is None:
            return 0, 0
        c10 = state.count_10s if state.window_10s == now_ms // 10_000 else 0
        cday = state.count_day if state.day == now_ms // 86_400_000 else 0
        return c10, cday

    def reset(self) -> None:
        self._buckets.clear()
        self._orders.clear()

    def snapshot(self, now_ms: int) -> dict[str, Any]:
        return {
            key: {
                "used_weight_1m": b.weight if b.minute == now_ms // 60_000 else 0,
                "violations_this_minute": b.violations if b.minute == now_ms // 60_000 else 0,
                "banned_until": b.banned_until if b.banned_until > now_ms else None,
            }
            for key, b in self._buckets.items()
        }
