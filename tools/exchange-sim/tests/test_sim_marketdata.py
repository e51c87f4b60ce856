"""Kline aggregation and rolling 24h statistics of the exchange simulator."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from exchange_sim.errors import BinanceError
from exchange_sim.marketdata import aggregate, bucket_end, bucket_start, klines, rolling_24h
from exchange_sim.models import Candle

D = Decimal
MIN = 60_000


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


def minute_candles(start: int, n: int) -> list[Candle]:
    out = []
    for i in range(n):
        price = D(100 + i)
        out.append(
            Candle(
                start + i * MIN,
                price,
                price + 2,
                price - 1,
                price + 1,
                D(1),
                price,
                3,
                first_trade_id=3 * i + 1,
                last_trade_id=3 * i + 3,
            )
        )
    return out


def test_five_minute_candles_merge_five_one_minute_candles() -> None:
    rows = aggregate(minute_candles(ms(2024, 1, 1), 10), "5m")
    assert [r.open_time for r in rows] == [ms(2024, 1, 1), ms(2024, 1, 1, 0, 5)]
    first = rows[0]
    assert (first.open, first.high, first.low, first.close) == (D(100), D(106), D(99), D(105))
    assert (first.volume, first.trades, first.first_trade_id, first.last_trade_id) == (
        D(5),
        15,
        1,
        15,
    )


def test_weeks_start_on_monday_and_months_on_the_first() -> None:
    wednesday = ms(2024, 1, 3, 15)
    assert bucket_start(wednesday, "1w") == ms(2024, 1, 1)
    assert bucket_start(ms(2024, 2, 15, 8), "1M") == ms(2024, 2, 1)
    assert bucket_end(ms(2024, 2, 1), "1M") == ms(2024, 3, 1) - 1
    assert bucket_end(ms(2024, 12, 1), "1M") == ms(2025, 1, 1) - 1
    assert bucket_end(ms(2024, 1, 1), "1h") == ms(2024, 1, 1, 1) - 1


def test_klines_from_start_time_forward_or_the_latest() -> None:
    candles = minute_candles(ms(2024, 1, 1), 30)
    latest = klines(candles, "1m", None, None, 3)
    assert [c.open_time for c in latest] == [c.open_time for c in candles[-3:]]
    forward = klines(candles, "5m", ms(2024, 1, 1, 0, 7), None, 2)
    assert [c.open_time for c in forward] == [ms(2024, 1, 1, 0, 5), ms(2024, 1, 1, 0, 10)]
    until = klines(candles, "1m", None, ms(2024, 1, 1, 0, 4), 2)
    assert [c.open_time for c in until] == [ms(2024, 1, 1, 0, 3), ms(2024, 1, 1, 0, 4)]


def test_an_unknown_interval_is_error_1120() -> None:
    with pytest.raises(BinanceError) as err:
        klines([], "7m", None, None, 10)
    assert (err.value.code, err.value.msg) == (-1120, "Invalid interval.")


def test_rolling_24h_only_counts_the_last_day() -> None:
    start = ms(2024, 1, 1)
    candles = minute_candles(start, 1500)  # 25 hours
    now = start + 1500 * MIN
    stats = rolling_24h(candles, now, D(1700))
    assert stats.volume == 1440 and stats.count == 1440 * 3
    assert stats.open_price == candles[60].open
    assert stats.prev_close == candles[59].close
    assert stats.high == candles[-1].high and stats.low == candles[60].low
