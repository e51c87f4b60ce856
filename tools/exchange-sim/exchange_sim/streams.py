"""Market stream names (``btcusdt@kline_1m``) and their update cadence."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .marketdata import VALID_INTERVALS

REALTIME = ("trade", "aggTrade", "bookTicker")
_DEPTH = re.compile(r"^depth(5|10|20)?(@100ms|@1000ms)?$")


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str
    symbol: str | None  # None for the all-market "!...@arr" streams
    kind: str  # trade aggTrade bookTicker ticker miniTicker kline depth depthN tickerArr miniArr
    param: str = ""  # kline interval or partial-depth levels
    fast: bool = False  # @100ms variant

    @property
    def realtime(self) -> bool:
        return self.kind in REALTIME


def parse_stream(name: str, symbols: set[str]) -> StreamSpec | None:
    """None when the name is not a stream this exchange serves."""
    if name == "!miniTicker@arr":
        return StreamSpec(name, None, "miniArr")
    if name == "!ticker@arr":
        return StreamSpec(name, None, "tickerArr")
    lower, _, channel = name.partition("@")
    symbol = lower.upper()
    if not channel or lower != lower.lower() or symbol not in symbols:
        return None
    if channel in ("trade", "aggTrade", "bookTicker", "ticker", "miniTicker"):
        return StreamSpec(name, symbol, channel)
    if channel.startswith("kline_"):
        interval = channel[len("kline_") :]
        return StreamSpec(name, symbol, "kline", interval) if interval in VALID_INTERVALS else None
    depth = _DEPTH.match(channel)
    if depth:
        levels, speed = depth.group(1), depth.group(2)
        kind = "depthN" if levels else "depth"
        return StreamSpec(name, symbol, kind, levels or "", fast=speed == "@100ms")
    return None
