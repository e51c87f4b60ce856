"""Request costs from ccxt's tables and the token-bucket arithmetic (Python mirror)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import ccxt.async_support
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradebot_runtime.ratelimit_cost import (
    UnknownEndpoint,
    request_cost,
    to_milli_units,
    units_per_second,
)
from tradebot_runtime.ratelimit_lua import (
    TOKEN_BUCKET_LUA,
    BucketParams,
    BucketState,
    bucket_take,
    bucket_ttl_ms,
)

D = Decimal
CASES = json.loads((Path(__file__).parent / "ratelimit_cases.json").read_text())["cases"]


# --- request cost ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "params", "cost"),
    [
        ("privatePostOrder", None, "0.2"),
        ("private_post_order", None, "0.2"),
        ("create_order", None, "0.2"),
        ("createOrder", None, "0.2"),
        ("private POST order", None, "0.2"),
        ("fetch_order", None, "0.8"),
        ("fetch_balance", None, "4"),
        ("publicGetKlines", None, "0.4"),
        # variants chosen by ccxt's own calculate_rate_limiter_cost
        ("fetch_open_orders", {"symbol": "BTCUSDT"}, "1.2"),
        ("fetch_open_orders", {}, "16"),
        ("publicGetDepth", {"limit": 100}, "1"),
        ("publicGetDepth", {"limit": 500}, "5"),
        ("publicGetDepth", {"limit": 5000}, "50"),
    ],
)
def test_binance_costs_from_ccxt_table(
    endpoint: str, params: dict[str, Any] | None, cost: str
) -> None:
    assert request_cost("binance", endpoint, params) == D(cost)


def test_costs_match_ccxt_describe_table() -> None:
    api = ccxt.binance().describe()["api"]
    checked = 0
    for path, config in api["private"]["get"].items():
        cost = request_cost("binance", f"private GET {path}", {"symbol": "X"})
        assert cost == D(str(config["cost"]))
        checked += 1
    assert checked > 5


def test_instances_sync_and_async_and_other_exchanges() -> None:
    assert request_cost(ccxt.binance(), "privatePostOrder") == D("0.2")
    assert request_cost(ccxt.async_support.binance(), "privateDeleteOrder") == D("0.2")
    # okx defines costs as fractions of its rateLimit; float noise stays out of Decimal
    assert request_cost("okx", "privatePostTradeOrder") == D("0.3333333333333333")


def test_unknown_endpoints_raise() -> None:
    with pytest.raises(UnknownEndpoint):
        request_cost("binance", "privatePostNothing")
    with pytest.raises(UnknownEndpoint):
        request_cost("binance", "private GET nothing")
    with pytest.raises(UnknownEndpoint):
        request_cost("nosuchexchange", "fetch_order")


def test_ccxt_budget_and_milli_units() -> None:
    assert units_per_second("binance") == D(20)  # rateLimit 50 ms
    assert to_milli_units(D("0.2")) == 200
    assert to_milli_units(D("0.3333333333333333")) == 334  # never under-charge
    assert to_milli_units(D(16)) == 16000


# --- token bucket ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_mirror_matches_shared_cases(case: dict[str, Any]) -> None:
    before = case["state_before"]
    state = None if before is None else BucketState(before["tokens_micro"], before["ts_ms"])
    result = bucket_take(
        state, case["now_ms"], case["cost_milli"], case["rate_milli_per_s"], case["capacity_milli"]
    )
    expected = case["expected"]
    assert result.allowed is expected["allowed"]
    assert result.wait_ms == expected["wait_ms"]
    after = expected["state_after"]
    assert result.state == BucketState(after["tokens_micro"], after["ts_ms"])


def test_lua_script_shape() -> None:
    # the real execution is tested against Redis by the integration tests
    assert "redis.call('HMGET', KEYS[1], 't', 'ts')" in TOKEN_BUCKET_LUA
    assert "redis.call('TIME')" in TOKEN_BUCKET_LUA
    assert "PEXPIRE" in TOKEN_BUCKET_LUA
    assert bucket_ttl_ms(20000, 20000) == 1001 + 1000


@given(
    st.integers(0, 10**7),  # tokens (micro)
    st.integers(0, 10**6),  # elapsed ms
    st.integers(0, 30_000),  # cost (milli)
    st.integers(1, 10**6),  # rate
    st.integers(1, 30_000),  # capacity (milli)
)
def test_bucket_invariants(tokens: int, elapsed: int, cost: int, rate: int, capacity: int) -> None:
    state = BucketState(tokens, 0)
    result = bucket_take(state, elapsed, cost, rate, capacity)
    cap = capacity * 1000
    assert 0 <= result.state.tokens_micro <= cap
    if cost > capacity:
        assert not result.allowed and result.wait_ms == -1
    elif result.allowed:
        assert result.wait_ms == 0
    else:
        # waiting exactly wait_ms is enough, one ms less is not
        later = bucket_take(result.state, elapsed + result.wait_ms, cost, rate, capacity)
        assert later.allowed
        if result.wait_ms > 1:
            sooner = bucket_take(result.state, elapsed + result.wait_ms - 1, cost, rate, capacity)
            assert not sooner.allowed


@given(st.lists(st.integers(0, 50), min_size=1, max_size=200), st.integers(1, 5000))
def test_never_grants_more_than_capacity_plus_refill(gaps: list[int], cost: int) -> None:
    rate, capacity = 20_000, 20_000  # 20 units/s, burst 20 units
    state: BucketState | None = None
    now = 0
    granted = 0
    for gap in gaps:
        now += gap
        result = bucket_take(state, now, cost, rate, capacity)
        state = result.state
        granted += cost if result.allowed else 0
    # over [0, now]: the initial burst plus what the rate refilled (milli-units)
    assert granted <= capacity + rate * now // 1000


def test_bucket_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        bucket_take(None, 0, 1, 0, 1)
    with pytest.raises(ValueError):
        bucket_take(None, 0, 1, 1, 0)
    with pytest.raises(ValueError):
        bucket_take(None, 0, -1, 1, 1)


def test_bucket_params_from_budget_and_local_share() -> None:
    params = BucketParams.per_minute(1200)  # binance: 1200 ccxt units per minute
    assert params == BucketParams(rate_milli_per_s=20_000, capacity_milli=20_000)
    share = params.local_share(4, min_capacity_milli=16_000)
    assert share == BucketParams(rate_milli_per_s=5_000, capacity_milli=16_000)
    assert params.local_share(0) == params
    with pytest.raises(ValueError):
        BucketParams.per_minute(0)
