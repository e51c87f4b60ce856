"""ccxt market data payloads: OHLCV rows and trades to ``Bar``/``Trade``, and which rows of
a candle stream are closed (pure; used by marketdata.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tradebot_runtime.candles import Timeframe, latest_closed_open
from tradebot_runtime.domain import Bar, Trade, to_decimal


def split_closed(
    rows: Sequence[Sequence[Any]],
    pending: Sequence[Any] | None,
    now: int,
    timeframe: Timeframe,
) -> tuple[list[Any], Sequence[Any] | None]:
    """(closed rows sorted by open time, the newest row if still open).

    ``pending`` is the newest open row of an earlier batch; a row of the same open time in
    ``rows`` replaces it. A row is closed when its period ended at ``now`` or a newer row
    exists: a stream that returns only the candle being built has moved past it."""
    by_ts: dict[int, Sequence[Any]] = {}
    if pending is not None:
        by_ts[int(pending[0])] = pending
    for row in rows:
        by_ts[int(row[0])] = row
    if not by_ts:
        return [], None
    newest = max(by_ts)
    latest = latest_closed_open(now, timeframe)
    closed = [by_ts[ts] for ts in sorted(by_ts) if ts <= latest or ts < newest]
    still_open = by_ts[newest] if newest > latest else None
    return closed, still_open


def row_to_bar(symbol: str, timeframe: str, row: Sequence[Any]) -> Bar:
    return Bar(
        symbol=symbol,
        timeframe=timeframe,
        ts=int(row[0]),
        open=to_decimal(row[1]),
        high=to_decimal(row[2]),
        low=to_decimal(row[3]),
        close=to_decimal(row[4]),
        volume=to_decimal(row[5] if row[5] is not None else 0),
    )


def trade_from_ccxt(symbol: str, trade: dict[str, Any]) -> Trade:
    return Trade(
        symbol=symbol,
        price=to_decimal(trade["price"]),
        amount=to_decimal(trade["amount"]),
        ts=int(trade["timestamp"]),
    )
