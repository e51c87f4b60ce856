"""Kline aggregation and rolling 24h statistics over a market's 1m candles (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from .decimals import ZERO
from .errors import BinanceError
from .models import Candle

MINUTE = 60_000
INTERVALS_MS: dict[str, int] = {
    "1m": MINUTE,
    "3m": 3 * MINUTE,
    "5m": 5 * MINUTE,
    "15m": 15 * MINUTE,
    "30m": 30 * MINUTE,
    "1h": 60 * MINUTE,
    "2h": 120 * MINUTE,
    "4h": 240 * MINUTE,
    "6h": 360 * MINUTE,
    "8h": 480 * MINUTE,
    "12h": 720 * MINUTE,
    "1d": 1440 * MINUTE,
    "3d": 3 * 1440 * MINUTE,
    "1w": 7 * 1440 * MINUTE,
}
VALID_INTERVALS = (*INTERVALS_MS, "1M")
_WEEK_OFFSET = 4 * 1440 * MINUTE  # 1970-01-01 was a Thursday; Binance weeks start Monday


def check_interval(interval: str) -> None:
    if interval not in VALID_INTERVALS:
        raise BinanceError(-1120)


def bucket_start(open_time: int, interval: str) -> int:
    if interval == "1M":
        dt = datetime.fromtimestamp(open_time / 1000, tz=UTC)
        return int(datetime(dt.year, dt.month, 1, tzinfo=UTC).timestamp() * 1000)
    size = INTERVALS_MS[interval]
    if interval == "1w":
        return open_time - (open_time - _WEEK_OFFSET) % size
    return open_time - open_time % size


def bucket_end(start: int, interval: str) -> int:
    """Close time (inclusive, ms) of the bucket opening at ``start``."""
    if interval == "1M":
        dt = datetime.fromtimestamp(start / 1000, tz=UTC)
        year, month = (dt.year + 1, 1) if dt.month == 12 else (dt.year, dt.month + 1)
        return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000) - 1
    return start + INTERVALS_MS[interval] - 1


def _merge(into: Candle | None, c: Candle, start: int) -> Candle:
    if into is None:
        return Candle(
            start,
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume,
            c.quote_volume,
            c.trades,
            c.taker_buy_volume,
            c.taker_buy_quote,
            c.first_trade_id,
            c.last_trade_id,
        )
    into.high = max(into.high, c.high)
    into.low = min(into.low, c.low)
    into.close = c.close
    into.volume += c.volume
    into.quote_volume += c.quote_volume
    into.trades += c.trades
    into.taker_buy_volume += c.taker_buy_volume
    into.taker_buy_quote += c.taker_buy_quote
    if into.first_trade_id < 0:
        into.first_trade_id = c.first_trade_id
    if c.last_trade_id >= 0:
        into.last_trade_id = c.last_trade_id
    return into


def aggregate(candles: Iterable[Candle], interval: str) -> list[Candle]:
    out: list[Candle] = []
    current: Candle | None = None
    for c in candles:
        start = bucket_start(c.open_time, interval)
        if current is not None and current.open_time != start:
            out.append(current)
            current = None
        current = _merge(current, c, start)
    if current is not None:
        out.append(current)
    return out


def klines(
    candles: Sequence[Candle],
    interval: str,
    start_time: int | None,
    end_time: int | None,
    limit: int,
) -> list[Candle]:
    """Binance semantics: from startTime forward, else the last ``limit`` up to endTime."""
    check_interval(interval)
    lo = bucket_start(start_time, interval) if start_time is not None else None
    selected: list[Candle] = []
    if lo is None and interval != "1M" and candles:
        # Only the tail can be returned: skip the scan over older candles.
        newest = end_time if end_time is not None else candles[-1].open_time
        horizon = bucket_start(newest, interval) - limit * INTERVALS_MS[interval]
        for c in reversed(candles):
            if c.open_time < horizon:
                break
            selected.append(c)
        selected.reverse()
    else:
        selected = list(candles)
    rows = [
        k
        for k in aggregate(selected, interval)
        if (start_time is None or bucket_end(k.open_time, interval) >= start_time)
        and (end_time is None or k.open_time <= end_time)
    ]
    return rows[:limit] if start_time is not None else rows[-limit:]


@dataclass(frozen=True, slots=True)
class Rolling24h:
    open_price: Decimal
    high: Decimal
    low: Decimal
    prev_close: Decimal
    volume: Decimal
    quote_volume: Decimal
    count: int
    first_id: int
    last_id: int

    @property
    def weighted_avg(self) -> Decimal:
        return self.quote_volume / self.volume if self.volume > ZERO else self.open_price


def rolling_24h(candles: Sequence[Candle], now_ms: int, last_price: Decimal) -> Rolling24h:
    since = now_ms - 86_400_000
    window: list[Candle] = []
    prev_close = last_price
    for c in reversed(candles):
        if c.open_time < since - since % MINUTE:
            prev_close = c.close
            break
        window.append(c)
    window.reverse()
    if not window:
        return Rolling24h(last_price, last_price, last_price, prev_close, ZERO, ZERO, 0, -1, -1)
    merged: Candle | None = None
    for c in window:
        merged = _merge(merged, c, window[0].open_time)
    assert merged is not None
    return Rolling24h(
        open_price=window[0].open,
        high=merged.high,
        low=merged.low,
        prev_close=prev_close,
        volume=merged.volume,
        quote_volume=merged.quote_volume,
        count=merged.trades,
        first_id=merged.first_trade_id,
        last_id=merged.last_trade_id,
    )
