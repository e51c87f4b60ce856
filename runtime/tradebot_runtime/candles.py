"""Candles: timeframe arithmetic, aggregation from trades or finer candles, gap detection
and staleness.

All times are integer milliseconds (UTC). A candle covers the half-open interval
``[ts, ts + timeframe)``; buckets are aligned to the Unix epoch, except weekly candles,
which open on Monday 00:00 UTC like the exchanges' ``1w`` klines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from tradebot_runtime.domain import ZERO, Bar, Trade

_UNIT_MS: Final = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_TIMEFRAME_RE: Final = re.compile(r"^([1-9][0-9]{0,4})([smhdw])$")
# 1970-01-01 was a Thursday; weekly buckets start on Monday 1970-01-05.
_WEEK_OFFSET_MS: Final = 4 * 86_400_000


@dataclass(frozen=True, slots=True)
class Timeframe:
    """A fixed-length candle period such as ``1m``, ``5m``, ``1h``, ``1d`` or ``1w``.

    Months (``1M``) are not supported: they have no fixed length.
    """

    label: str
    ms: int

    @classmethod
    def parse(cls, label: str) -> Timeframe:
        match = _TIMEFRAME_RE.match(label)
        if match is None:
            raise ValueError(
                f"not a timeframe: {label!r}; expected a number and one of s, m, h, d, w "
                "(e.g. 1m, 5m, 1h, 1d)"
            )
        count, unit = int(match.group(1)), match.group(2)
        if unit == "w" and count != 1:
            raise ValueError(f"only 1w is supported for weeks, got {label!r}")
        return cls(label=label, ms=count * _UNIT_MS[unit])

    @property
    def _offset(self) -> int:
        return _WEEK_OFFSET_MS if self.ms == _UNIT_MS["w"] else 0

    def bucket_start(self, ts: int) -> int:
        """Open time of the candle that contains ``ts``."""
        offset = self._offset
        return (ts - offset) // self.ms * self.ms + offset

    def is_aligned(self, ts: int) -> bool:
        return self.bucket_start(ts) == ts

    def divides(self, coarser: Timeframe) -> bool:
        """True when candles of this timeframe tile those of ``coarser`` exactly."""
        return (
            coarser.ms % self.ms == 0
            and coarser._offset % self.ms == 0
            and self._offset % self.ms == 0
            # weekly candles open on Mondays, so they cannot be split into e.g. 7d buckets
            and (self._offset == 0 or coarser._offset != 0)
        )

    def __str__(self) -> str:
        return self.label


def parse_timeframe(label: str) -> Timeframe:
    """``"5m"`` -> Timeframe(label="5m", ms=300000)."""
    return Timeframe.parse(label)


@dataclass(slots=True)
class _Building:
    ts: int
    open: Decimal
    open_ts: int
    high: Decimal
    low: Decimal
    close: Decimal
    close_ts: int
    volume: Decimal


class CandleAggregator:
    """Builds candles of one symbol and timeframe from trades or from finer candles.

    Feed it in roughly chronological order. A candle is emitted (returned) when the first
    data of a later bucket arrives, or by ``flush(now_ms)`` once its period has ended.
    Data older than the candle being built cannot change an emitted candle: it is counted
    in ``late_updates`` and otherwise ignored (backfill repairs history, see ``find_gaps``).

    With ``fill_empty`` the aggregator emits flat zero-volume candles for buckets without
    any trade between two candles (what exchanges do for quiet periods). Leave it off when
    the feed may have been interrupted: then an empty bucket is a gap to backfill, not a
    quiet period.
    """

    def __init__(self, symbol: str, timeframe: Timeframe, *, fill_empty: bool = False) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.fill_empty = fill_empty
        self.late_updates = 0
        self._current: _Building | None = None
        self._last_emitted_ts: int | None = None
        self._last_close: Decimal | None = None

    def add_trade(self, trade: Trade) -> list[Bar]:
        """Add one trade; returns the candles this trade closed (usually none or one)."""
        if trade.symbol != self.symbol:
            raise ValueError(f"trade for {trade.symbol} fed to the {self.symbol} aggregator")
        return self._add(
            ts=trade.ts,
            open_=trade.price,
            high=trade.price,
            low=trade.price,
            close=trade.price,
            volume=trade.amount,
            first_ts=trade.ts,
            last_ts=trade.ts,
        )

    def add_bar(self, bar: Bar) -> list[Bar]:
        """Add one finer candle (e.g. a 1m candle into a 5m aggregator)."""
        if bar.symbol != self.symbol:
            raise ValueError(f"candle for {bar.symbol} fed to the {self.symbol} aggregator")
        source = Timeframe.parse(bar.timeframe)
        if not source.divides(self.timeframe):
            raise ValueError(f"{bar.timeframe} candles cannot be aggregated into {self.timeframe}")
        if not source.is_aligned(bar.ts):
            raise ValueError(f"candle open time {bar.ts} is not aligned to {bar.timeframe}")
        # the finer candle's open and close happen at its start and (just before) its end
        return self._add(
            ts=bar.ts,
            open_=bar.open,
            high=bar.high,
            low=bar.low,
            close=bar.close,
            volume=bar.volume,
            first_ts=bar.ts,
            last_ts=bar.ts + source.ms - 1,
        )

    def flush(self, now_ms: int) -> list[Bar]:
        """Emit the candle being built if its period ended before ``now_ms``."""
        current = self._current
        if current is None or now_ms < current.ts + self.timeframe.ms:
            return []
        self._current = None
        return [self._emit(current)]

    @property
    def last_emitted_ts(self) -> int | None:
        """Open time of the most recent emitted candle."""
        return self._last_emitted_ts

    def _add(
        self,
        *,
        ts: int,
        open_: Decimal,
        high: Decimal,
        low: Decimal,
        close: Decimal,
        volume: Decimal,
        first_ts: int,
        last_ts: int,
    ) -> list[Bar]:
        bucket = self.timeframe.bucket_start(ts)
        if self._last_emitted_ts is not None and bucket <= self._last_emitted_ts:
            self.late_updates += 1
            return []
        emitted: list[Bar] = []
        current = self._current
        if current is not None and bucket < current.ts:
            self.late_updates += 1
            return []
        if current is not None and bucket > current.ts:
            emitted.append(self._emit(current))
            current = None
        if current is None:
            if self.fill_empty and self._last_emitted_ts is not None:
                emitted.extend(self._flat_bars(self._last_emitted_ts, bucket))
            self._current = _Building(
                ts=bucket,
                open=open_,
                open_ts=first_ts,
                high=high,
                low=low,
                close=close,
                close_ts=last_ts,
                volume=volume,
            )
            return emitted
        # same bucket: data may arrive slightly out of order, so open/close follow time
        if first_ts < current.open_ts:
            current.open, current.open_ts = open_, first_ts
        if last_ts >= current.close_ts:
            current.close, current.close_ts = close, last_ts
        current.high = max(current.high, high)
        current.low = min(current.low, low)
        current.volume += volume
        return emitted

    def _flat_bars(self, after_ts: int, before_ts: int) -> list[Bar]:
        close = self._last_close
        if close is None:
            return []
        step = self.timeframe.ms
        bars = [
            Bar(self.symbol, self.timeframe.label, ts, close, close, close, close, ZERO)
            for ts in range(after_ts + step, before_ts, step)
        ]
        if bars:
            self._last_emitted_ts = bars[-1].ts
        return bars

    def _emit(self, current: _Building) -> Bar:
        bar = Bar(
            symbol=self.symbol,
            timeframe=self.timeframe.label,
            ts=current.ts,
            open=current.open,
            high=current.high,
            low=current.low,
            close=current.close,
            volume=current.volume,
        )
        self._last_emitted_ts = current.ts
        self._last_close = current.close
        return bar


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Half-open range ``[start, end)`` of candle open times, in ms."""

    start: int
    end: int

    def bar_count(self, timeframe: Timeframe) -> int:
        return (self.end - self.start) // timeframe.ms


def find_gaps(
    have_ts: Iterable[int], timeframe: Timeframe, start_ms: int, end_ms: int
) -> list[TimeRange]:
    """Missing candles between ``start_ms`` (inclusive) and ``end_ms`` (exclusive).

    ``have_ts`` are the open times of the candles we hold. Returns merged ranges of open
    times to backfill, e.g. ``[TimeRange(t0, t0 + 3 * tf)]`` for three consecutive missing
    candles. ``start_ms`` is rounded down and ``end_ms`` up to candle boundaries, so pass
    ``end_ms = latest_closed_open(now, tf) + tf.ms`` to cover every closed candle.
    """
    step = timeframe.ms
    first = timeframe.bucket_start(start_ms)
    last_exclusive = timeframe.bucket_start(end_ms - 1) + step if end_ms > first else first
    present = {ts for ts in have_ts if first <= ts < last_exclusive and timeframe.is_aligned(ts)}
    gaps: list[TimeRange] = []
    gap_start: int | None = None
    for ts in range(first, last_exclusive, step):
        if ts in present:
            if gap_start is not None:
                gaps.append(TimeRange(gap_start, ts))
                gap_start = None
        elif gap_start is None:
            gap_start = ts
    if gap_start is not None:
        gaps.append(TimeRange(gap_start, last_exclusive))
    return gaps


def latest_closed_open(now_ms: int, timeframe: Timeframe) -> int:
    """Open time of the most recent candle whose period has fully ended at ``now_ms``."""
    return timeframe.bucket_start(now_ms) - timeframe.ms


def is_stale(
    now_ms: int, last_update_ms: int | None, timeframe: Timeframe, *, grace_ms: int = 5_000
) -> bool:
    """Whether market data for ``timeframe`` is stale.

    ``last_update_ms`` is when the data last changed (the last trade or candle update
    received; None if nothing arrived yet). Data is stale when a whole candle period plus
    ``grace_ms`` passed without an update: the strategy would otherwise act on a candle
    that silently stopped moving. Callers should not trade while stale.
    """
    if last_update_ms is None:
        return True
    return now_ms - last_update_ms > timeframe.ms + grace_ms


def missing_closed_candles(now_ms: int, last_candle_open_ms: int, timeframe: Timeframe) -> int:
    """How many closed candles are missing after the last one we hold (0 = up to date)."""
    latest = latest_closed_open(now_ms, timeframe)
    return max(0, (latest - timeframe.bucket_start(last_candle_open_ms)) // timeframe.ms)
