"""429/418 replies pause the runtime's requests for the Retry-After (before a ban); the
fallback share without Redis divides by every pod on the account."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tradebot_runtime import metrics
from tradebot_runtime.ratelimit import (
    MAX_PAUSE_S,
    MIN_PAUSE_S,
    SharedRateLimiter,
    fallback_pods,
    install,
    retry_after_s,
)
from tradebot_runtime.ratelimit_lua import BucketParams


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (200, {"Retry-After": "30"}, None),
        (500, {"Retry-After": "30"}, None),
        (429, {"Retry-After": "30"}, 30.0),
        (418, {"retry-after": "120"}, 120.0),
        (429, {}, MIN_PAUSE_S),
        (429, None, MIN_PAUSE_S),
        (429, {"Retry-After": "0"}, MIN_PAUSE_S),
        (429, {"Retry-After": "soon"}, MIN_PAUSE_S),
        (429, {"Retry-After": "nan"}, MIN_PAUSE_S),
        (418, {"Retry-After": "86400"}, MAX_PAUSE_S),
    ],
)
def test_retry_after(status: int, headers: dict[str, str] | None, expected: float | None) -> None:
    assert retry_after_s(status, headers) == expected


class _FakeExchange:
    """Only what ``install`` touches: throttle, enableRateLimit, on_rest_response."""

    def __init__(self) -> None:
        self.enableRateLimit = False
        self.seen: list[int] = []

    def on_rest_response(self, code: Any, reason: Any, url: Any, method: Any, headers: Any,
                         body: Any, request_headers: Any, request_body: Any) -> Any:  # fmt: skip
        self.seen.append(int(code))
        return body


def _limiter() -> SharedRateLimiter:
    # no Redis client: the local bucket, large enough that only the pause can delay
    return SharedRateLimiter(None, "k", BucketParams(rate_milli_per_s=10**9, capacity_milli=10**9))


async def test_a_429_reply_pauses_every_request_for_its_retry_after() -> None:
    limiter = _limiter()
    exchange: Any = _FakeExchange()
    install(exchange, limiter)
    assert exchange.enableRateLimit is True
    before = metrics.RATE_LIMIT_PAUSES._value.get()

    started = time.monotonic()
    await exchange.throttle(1)
    assert time.monotonic() - started < 0.1 and not limiter.paused

    # the hook passes the reply through unchanged and pauses on 429
    assert exchange.on_rest_response(200, "OK", "u", "GET", {}, "b", {}, None) == "b"
    assert not limiter.paused
    assert exchange.on_rest_response(429, "", "u", "GET", {"Retry-After": "1"}, "x", {}, None)
    assert exchange.seen == [200, 429]
    assert limiter.paused
    assert metrics.RATE_LIMIT_PAUSES._value.get() == before + 1

    started = time.monotonic()
    await asyncio.gather(exchange.throttle(1), exchange.throttle(1))
    waited = time.monotonic() - started
    assert 0.8 <= waited < 2.0
    assert not limiter.paused


def test_a_shorter_pause_never_shortens_a_longer_one() -> None:
    limiter = _limiter()
    limiter.pause(30)
    until = limiter._paused_until
    limiter.pause(1)
    assert limiter._paused_until == until


@pytest.mark.parametrize(
    ("bot_pods", "account_pods", "expected"),
    [(1, 1, 1), (2, 1, 2), (1, 3, 3), (4, 3, 4), (0, 0, 1)],
)
def test_fallback_divides_by_every_pod_on_the_account(
    bot_pods: int, account_pods: int, expected: int
) -> None:
    assert fallback_pods(bot_pods, account_pods) == expected
