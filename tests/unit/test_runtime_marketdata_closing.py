"""Which candle rows a feed may emit: ``split_closed`` (pure)."""

from __future__ import annotations

from tradebot_runtime.candles import Timeframe
from tradebot_runtime.marketdata_rows import split_closed

M = 60_000
TF = Timeframe.parse("1m")
T0 = 1_700_000_040_000 // M * M  # a minute boundary


def row(ts: int, close: str = "100") -> list[object]:
    return [ts, "100", "101", "99", close, "1"]


def test_the_open_candle_is_kept_pending_not_emitted() -> None:
    closed, pending = split_closed([row(T0)], None, T0 + 30_000, TF)
    assert closed == [] and pending == row(T0)


def test_a_newer_candle_closes_the_pending_one_even_before_the_clock_does() -> None:
    # watch_ohlcv (newUpdates) returns only the new minute; the clock may lag the exchange
    closed, pending = split_closed([row(T0 + M)], row(T0, "105"), T0 + M - 200, TF)
    assert closed == [row(T0, "105")] and pending == row(T0 + M)


def test_the_clock_closes_the_pending_candle_without_a_newer_one() -> None:
    closed, pending = split_closed([], row(T0), T0 + M + 1, TF)
    assert closed == [row(T0)] and pending is None


def test_a_newer_state_of_the_same_candle_replaces_the_pending_one() -> None:
    closed, pending = split_closed([row(T0, "107")], row(T0, "105"), T0 + 50_000, TF)
    assert closed == [] and pending == row(T0, "107")


def test_rest_batches_emit_every_closed_row_in_order() -> None:
    rows = [row(T0 + 2 * M), row(T0), row(T0 + M)]
    closed, pending = split_closed(rows, None, T0 + 2 * M + 5_000, TF)
    assert closed == [row(T0), row(T0 + M)] and pending == row(T0 + 2 * M)
