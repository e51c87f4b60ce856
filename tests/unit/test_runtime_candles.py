"""Domain value types and candle aggregation, gaps and staleness."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradebot_runtime.candles import (
    CandleAggregator,
    Timeframe,
    TimeRange,
    find_gaps,
    is_stale,
    latest_closed_open,
    missing_closed_candles,
    parse_timeframe,
)
from tradebot_runtime.domain import (
    Bar,
    Fill,
    OrderIntent,
    OrderType,
    Side,
    Trade,
    split_symbol,
    to_decimal,
)

D = Decimal
MINUTE = 60_000
T0 = 1_700_000_040_000  # a minute boundary (divisible by 60_000)


def trade(ts: int, price: str, amount: str = "1") -> Trade:
    return Trade("BTC/USDT", ts, D(price), D(amount))


# --- domain -----------------------------------------------------------------------------


def test_to_decimal_avoids_float_noise() -> None:
    assert to_decimal(0.1) == D("0.1")
    assert to_decimal("1e-8") == D("0.00000001")
    with pytest.raises(ValueError):
        to_decimal(float("nan"))
    with pytest.raises(TypeError):
        to_decimal(True)


def test_order_intent_validation() -> None:
    with pytest.raises(ValueError):
        OrderIntent("BTC/USDT", Side.BUY, OrderType.LIMIT, D(1))  # limit without price
    with pytest.raises(ValueError):
        OrderIntent("BTC/USDT", Side.BUY, OrderType.MARKET, D(0))
    with pytest.raises(ValueError):
        OrderIntent("BTC/USDT", Side.BUY, OrderType.MARKET, D(1), price=D(5))
    with pytest.raises(TypeError):
        OrderIntent("BTC/USDT", Side.BUY, OrderType.MARKET, 1.5)  # type: ignore[arg-type]
    sell = OrderIntent("BTC/USDT", Side.SELL, OrderType.LIMIT, D(2), price=D(10))
    assert sell.signed_amount() == D(-2)
    assert Side.SELL.opposite is Side.BUY and Side.BUY.sign == 1


def test_bar_rejects_inconsistent_ohlc() -> None:
    with pytest.raises(ValueError):
        Bar("BTC/USDT", "1m", T0, D(10), D(9), D(8), D(9), D(1))  # open above high


def test_fill_needs_trade_id_and_symbol_split() -> None:
    with pytest.raises(ValueError):
        Fill("", "c1", "BTC/USDT", Side.BUY, D(1), D(1), D(0), "USDT", T0)
    assert split_symbol("BTC/USDT:USDT") == ("BTC", "USDT")
    with pytest.raises(ValueError):
        split_symbol("BTCUSDT")


# --- timeframes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "ms"),
    [("1m", 60_000), ("5m", 300_000), ("1h", 3_600_000), ("1d", 86_400_000), ("30s", 30_000)],
)
def test_parse_timeframe(label: str, ms: int) -> None:
    assert parse_timeframe(label).ms == ms


@pytest.mark.parametrize("label", ["", "0m", "1M", "m", "1y", "2w", "1.5h", " 1m"])
def test_parse_timeframe_rejects(label: str) -> None:
    with pytest.raises(ValueError):
        parse_timeframe(label)


def test_weekly_buckets_open_on_monday() -> None:
    week = parse_timeframe("1w")
    # 2024-01-03 (Wednesday) 12:00 UTC -> Monday 2024-01-01 00:00 UTC
    assert week.bucket_start(1_704_283_200_000) == 1_704_067_200_000
    assert parse_timeframe("1d").divides(week)
    assert not week.divides(parse_timeframe("14d"))


@given(st.integers(min_value=0, max_value=2**42), st.sampled_from(["1m", "5m", "1h", "1d", "1w"]))
def test_bucket_start_contains_ts(ts: int, label: str) -> None:
    tf = parse_timeframe(label)
    start = tf.bucket_start(ts)
    assert start <= ts < start + tf.ms
    assert tf.bucket_start(start) == start


# --- aggregation --------------------------------------------------------------------------


def test_aggregates_trades_into_ohlcv() -> None:
    agg = CandleAggregator("BTC/USDT", parse_timeframe("1m"))
    assert agg.add_trade(trade(T0 + 1_000, "100", "1")) == []
    assert agg.add_trade(trade(T0 + 2_000, "105", "2")) == []
    assert agg.add_trade(trade(T0 + 3_000, "95", "0.5")) == []
    assert agg.add_trade(trade(T0 + 59_999, "101", "1")) == []
    closed = agg.add_trade(trade(T0 + MINUTE, "102"))
    assert closed == [Bar("BTC/USDT", "1m", T0, D(100), D(105), D(95), D(101), D("4.5"))]


def test_out_of_order_trade_in_same_bucket_sets_open_and_close_by_time() -> None:
    agg = CandleAggregator("BTC/USDT", parse_timeframe("1m"))
    agg.add_trade(trade(T0 + 30_000, "100"))
    agg.add_trade(trade(T0 + 10_000, "90"))  # earlier: becomes the open
    agg.add_trade(trade(T0 + 20_000, "95"))  # not the latest: not the close
    (bar,) = agg.flush(T0 + MINUTE)
    assert (bar.open, bar.close, bar.low, bar.high) == (D(90), D(100), D(90), D(100))


def test_late_trade_is_counted_not_applied() -> None:
    agg = CandleAggregator("BTC/USDT", parse_timeframe("1m"))
    agg.add_trade(trade(T0, "100"))
    agg.add_trade(trade(T0 + MINUTE, "101"))
    assert agg.add_trade(trade(T0 + 5, "50")) == []
    assert agg.late_updates == 1
    (bar,) = agg.flush(T0 + 2 * MINUTE)
    assert bar.low == D(101)


def test_flush_only_after_period_end() -> None:
    agg = CandleAggregator("BTC/USDT", parse_timeframe("1m"))
    agg.add_trade(trade(T0, "100"))
    assert agg.flush(T0 + MINUTE - 1) == []
    assert [b.ts for b in agg.flush(T0 + MINUTE)] == [T0]
    assert agg.flush(T0 + 10 * MINUTE) == []


def test_fill_empty_emits_flat_candles_for_quiet_buckets() -> None:
    agg = CandleAggregator("BTC/USDT", parse_timeframe("1m"), fill_empty=True)
    agg.add_trade(trade(T0, "100"))
    closed = agg.add_trade(trade(T0 + 3 * MINUTE, "110"))
    assert [b.ts for b in closed] == [T0, T0 + MINUTE, T0 + 2 * MINUTE]
    assert closed[1].open == closed[1].close == D(100) and closed[1].volume == 0


def test_without_fill_empty_quiet_buckets_stay_gaps() -> None:
    agg = CandleAggregator("BTC/USDT", parse_timeframe("1m"))
    agg.add_trade(trade(T0, "100"))
    closed = agg.add_trade(trade(T0 + 3 * MINUTE, "110"))
    assert [b.ts for b in closed] == [T0]


def test_aggregates_1m_bars_into_5m() -> None:
    agg = CandleAggregator("BTC/USDT", parse_timeframe("5m"))
    start = parse_timeframe("5m").bucket_start(T0)
    closes = ["10", "12", "9", "11", "13"]
    for i, close in enumerate(closes):
        c = D(close)
        bar = Bar("BTC/USDT", "1m", start + i * MINUTE, c, c + 1, c - 1, c, D(2))
        assert agg.add_bar(bar) == []
    (five,) = agg.flush(start + 5 * MINUTE)
    assert five == Bar("BTC/USDT", "5m", start, D(10), D(14), D(8), D(13), D(10))


def test_add_bar_rejects_incompatible_timeframe() -> None:
    agg = CandleAggregator("BTC/USDT", parse_timeframe("5m"))
    with pytest.raises(ValueError):
        agg.add_bar(Bar("BTC/USDT", "3m", 0, D(1), D(1), D(1), D(1), D(0)))
    with pytest.raises(ValueError):
        agg.add_trade(Trade("ETH/USDT", 0, D(1), D(1)))


@given(
    st.lists(
        st.tuples(st.integers(0, 10 * MINUTE - 1), st.integers(1, 1000), st.integers(0, 50)),
        min_size=1,
        max_size=60,
    )
)
def test_aggregation_conserves_volume_and_extremes(rows: list[tuple[int, int, int]]) -> None:
    rows = sorted(rows)
    agg = CandleAggregator("BTC/USDT", parse_timeframe("1m"))
    bars: list[Bar] = []
    for offset, price, amount in rows:
        bars += agg.add_trade(trade(T0 + offset, str(price), str(amount)))
    bars += agg.flush(T0 + 11 * MINUTE)
    assert sum(b.volume for b in bars) == sum(D(a) for _, _, a in rows)
    assert max(b.high for b in bars) == max(D(p) for _, p, _ in rows)
    assert min(b.low for b in bars) == min(D(p) for _, p, _ in rows)
    assert len({b.ts for b in bars}) == len(bars)


# --- gaps and staleness -------------------------------------------------------------------


def test_find_gaps_merges_consecutive_missing_candles() -> None:
    tf = parse_timeframe("1m")
    have = [T0, T0 + MINUTE, T0 + 4 * MINUTE, T0 + 6 * MINUTE]
    gaps = find_gaps(have, tf, T0, T0 + 8 * MINUTE)
    assert gaps == [
        TimeRange(T0 + 2 * MINUTE, T0 + 4 * MINUTE),
        TimeRange(T0 + 5 * MINUTE, T0 + 6 * MINUTE),
        TimeRange(T0 + 7 * MINUTE, T0 + 8 * MINUTE),
    ]
    assert gaps[0].bar_count(tf) == 2


def test_find_gaps_none_and_all() -> None:
    tf = parse_timeframe("1m")
    full = [T0 + i * MINUTE for i in range(5)]
    assert find_gaps(full, tf, T0, T0 + 5 * MINUTE) == []
    assert find_gaps([], tf, T0, T0 + 5 * MINUTE) == [TimeRange(T0, T0 + 5 * MINUTE)]
    assert find_gaps([], tf, T0, T0) == []


@given(st.sets(st.integers(0, 40)), st.integers(1, 41))
def test_find_gaps_is_exact_complement(present: set[int], count: int) -> None:
    tf = parse_timeframe("1m")
    have = [T0 + i * MINUTE for i in present]
    gaps = find_gaps(have, tf, T0, T0 + count * MINUTE)
    missing = {ts for gap in gaps for ts in range(gap.start, gap.end, MINUTE)}
    expected = {T0 + i * MINUTE for i in range(count)} - set(have)
    assert missing == expected
    assert all(a.end < b.start for a, b in itertools.pairwise(gaps))


def test_staleness() -> None:
    tf = parse_timeframe("1m")
    assert is_stale(T0, None, tf)
    assert not is_stale(T0 + MINUTE + 5_000, T0, tf)
    assert is_stale(T0 + MINUTE + 5_001, T0, tf)
    assert not is_stale(T0 + MINUTE + 20_000, T0, tf, grace_ms=30_000)


def test_missing_closed_candles() -> None:
    tf = parse_timeframe("1m")
    now = T0 + 5 * MINUTE + 10
    assert latest_closed_open(now, tf) == T0 + 4 * MINUTE
    assert missing_closed_candles(now, T0 + 4 * MINUTE, tf) == 0
    assert missing_closed_candles(now, T0 + MINUTE, tf) == 3


def test_timeframe_str() -> None:
    assert str(Timeframe.parse("15m")) == "15m"
