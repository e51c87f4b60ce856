"""Request weight, order-count limits and 429 -> 418 escalation of the simulator."""

from __future__ import annotations

import pytest

from exchange_sim.config import Limits
from exchange_sim.ratelimit import RateLimited, RateLimiter, request_weight

MINUTE = 60_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % MINUTE  # start of a minute


@pytest.mark.parametrize(
    ("method", "path", "params", "weight"),
    [
        ("GET", "/api/v3/exchangeInfo", {}, 20),
        ("GET", "/api/v3/depth", {"symbol": "X"}, 5),
        ("GET", "/api/v3/depth", {"symbol": "X", "limit": "1000"}, 50),
        ("GET", "/api/v3/depth", {"symbol": "X", "limit": "5000"}, 250),
        ("GET", "/api/v3/ticker/24hr", {"symbol": "X"}, 2),
        ("GET", "/api/v3/ticker/24hr", {}, 80),
        ("GET", "/api/v3/openOrders", {"symbol": "X"}, 6),
        ("GET", "/api/v3/openOrders", {}, 80),
        ("GET", "/api/v3/order", {"symbol": "X"}, 4),
        ("POST", "/api/v3/order", {"symbol": "X"}, 1),
        ("GET", "/api/v3/account", {}, 20),
        ("GET", "/api/v3/klines", {"symbol": "X"}, 2),
    ],
)
def test_documented_weights(method: str, path: str, params: dict[str, str], weight: int) -> None:
    assert request_weight(method, path, params) == weight


def test_weight_429_then_418_ban_then_recovery() -> None:
    limiter = RateLimiter(Limits(weight_per_minute=100, violations_before_ban=2, ban_seconds=120))
    assert limiter.charge("k", 60, T0) == 60
    assert limiter.charge("k", 40, T0 + 1) == 100
    codes = []
    for i in range(3):
        with pytest.raises(RateLimited) as err:
            limiter.charge("k", 1, T0 + 1000 + i)
        codes.append((err.value.status, err.value.kind))
    assert codes == [(429, "weight_429"), (429, "weight_429"), (418, "banned_418")]
    assert err.value.code == -1003 and err.value.retry_after == 120
    assert "banned until" in err.value.msg
    # a new minute resets the weight, not the ban
    with pytest.raises(RateLimited) as banned:
        limiter.charge("k", 1, T0 + MINUTE + 5)
    assert banned.value.status == 418
    assert limiter.charge("k", 1, T0 + 1002 + 120_000) == 1  # the ban began at T0 + 1002
    # other buckets were never affected
    assert limiter.charge("other", 100, T0 + 2000) == 100


def test_429_carries_the_seconds_to_the_next_window() -> None:
    limiter = RateLimiter(Limits(weight_per_minute=1))
    limiter.charge("k", 1, T0)
    with pytest.raises(RateLimited) as err:
        limiter.charge("k", 1, T0 + 45_500)
    assert err.value.retry_after == 15


def test_order_count_limit_per_10_seconds() -> None:
    limiter = RateLimiter(Limits(orders_per_10s=3))
    assert [limiter.count_order("a", T0 + i) for i in range(3)] == [(1, 1), (2, 2), (3, 3)]
    with pytest.raises(RateLimited) as err:
        limiter.count_order("a", T0 + 4)
    assert (err.value.code, err.value.status, err.value.kind) == (-1015, 429, "orders_429")
    assert limiter.count_order("b", T0 + 4) == (1, 1)
    assert limiter.count_order("a", T0 + 10_000) == (1, 4)
    assert limiter.order_counts("a", T0 + 10_001) == (1, 4)
