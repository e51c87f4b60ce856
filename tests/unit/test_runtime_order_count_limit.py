"""The new-order bucket (ccxt has no notion of Binance's orders-per-10s limit): driven at
full demand through the bucket's exact Python mirror, no 10 s interval ever holds more
than the account's limit, and the limit is nearly used."""

from __future__ import annotations

import pytest

from tradebot_runtime.ratelimit import order_count_params
from tradebot_runtime.ratelimit_lua import BucketState, bucket_take

ONE_ORDER = 1000  # milli-units


def accepted_times(limit: int, seconds: int) -> list[int]:
    """Times (ms) of the orders a greedy sender gets through, trying every millisecond."""
    params = order_count_params(limit)
    state: BucketState | None = None
    times = []
    for now in range(0, seconds * 1000):
        result = bucket_take(state, now, ONE_ORDER, params.rate_milli_per_s, params.capacity_milli)
        state = result.state
        if result.allowed:
            times.append(now)
    return times


@pytest.mark.parametrize("limit", [1, 2, 5, 9, 10, 11, 50, 100])
def test_no_ten_second_interval_exceeds_the_limit(limit: int) -> None:
    times = accepted_times(limit, 60)
    worst = max(
        sum(1 for t in times if start <= t < start + 10_000) for start in range(0, 50_001, 100)
    )
    assert worst <= limit
    # and the budget is used: at least 80% of the limit over the minute (90% by design)
    assert len(times) >= 0.8 * limit * 6


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="ordersPer10s"):
        order_count_params(0)
