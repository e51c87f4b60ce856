"""The strategy contract: pure functions of market data and an account snapshot.

A strategy never does I/O and never keeps the source of truth about orders or positions:
the runtime hands it a ``StrategyContext`` built from the journal and the position book
on every call, so a restarted or failed-over strategy makes the same decisions. Its own
state is limited to indicators, which ``warmup`` rebuilds from backfilled candles without
emitting orders.

Calls are per symbol: ``ctx`` describes the symbol of the bar, tick or fill.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Protocol, runtime_checkable

from tradebot_contracts.types import TradingState
from tradebot_runtime.domain import (
    Action,
    Bar,
    Fill,
    OpenOrder,
    OrderIntent,
    OrderType,
    Position,
    Side,
    Trade,
)


@dataclass(frozen=True, slots=True)
class TagStats:
    """Orders journaled for one symbol with one tag, excluding REJECTED and ABANDONED ones
    (orders that never reached the market)."""

    count: int
    last_ts: int
    """Creation time (ms) of the most recent such order."""


@dataclass(frozen=True, slots=True)
class StrategyContext:
    """Read-only snapshot for one symbol at the time of the call.

    ``open_orders`` are our working orders in the symbol, including those journaled but not
    yet acknowledged (INTENT/SENDING/UNKNOWN), so a strategy never doubles an order that is
    still in flight. ``balances`` are free balances by currency (may be empty in paper mode).
    """

    symbol: str
    now_ms: int
    position: Position
    open_orders: tuple[OpenOrder, ...] = ()
    balances: Mapping[str, Decimal] = field(default_factory=dict)
    last_price: Decimal | None = None
    tag_stats: Mapping[str, TagStats] = field(default_factory=dict)
    trading_state: TradingState = "Active"

    def orders_tagged(self, prefix: str) -> list[OpenOrder]:
        return [order for order in self.open_orders if order.tag.startswith(prefix)]


@runtime_checkable
class Strategy(Protocol):
    """What the runtime calls. Each method returns the actions to take now (possibly none);
    every OrderIntent then goes through the risk engine."""

    def warmup(self, bars: Sequence[Bar]) -> None:
        """Rebuild indicator state from closed historical candles; never trades."""
        ...

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> list[Action]:
        """A candle of the strategy's timeframe closed."""
        ...

    def on_tick(self, tick: Trade, ctx: StrategyContext) -> list[Action]:
        """A public trade arrived (most strategies ignore it)."""
        ...

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> list[Action]:
        """One of our orders filled (``ctx`` already includes the fill)."""
        ...


REQUIRED_METHODS: tuple[str, ...] = ("warmup", "on_bar", "on_tick", "on_fill")


class BaseStrategy:
    """Convenience base: no-op ``warmup``/``on_tick``/``on_fill``; subclasses implement
    ``on_bar``. Plugin classes may subclass it (it is not required)."""

    uses_balances: ClassVar[bool] = False
    """True: the strategy reads ``StrategyContext.balances`` (the engine then reads the
    account's balances, a heavy request on most exchanges; others never pay for it)."""

    def __init__(self, parameters: Any, symbols: Sequence[str]) -> None:
        self.parameters = parameters
        self.symbols = tuple(symbols)

    def warmup(self, bars: Sequence[Bar]) -> None:
        return None

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> list[Action]:
        raise NotImplementedError

    def on_tick(self, tick: Trade, ctx: StrategyContext) -> list[Action]:
        return []

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> list[Action]:
        return []


def market_entry(bar: Bar, quote_amount: Decimal, tag: str) -> list[Action]:
    """Buy `quote_amount` worth of the symbol at market (long-only strategies)."""
    amount = quote_amount / bar.close
    return [OrderIntent(bar.symbol, Side.BUY, OrderType.MARKET, amount, tag=tag)]


def market_exit(bar: Bar, position: Decimal, tag: str) -> list[Action]:
    """Sell the whole long position at market; reduce-only so it can never flip to short."""
    return [
        OrderIntent(bar.symbol, Side.SELL, OrderType.MARKET, position, reduce_only=True, tag=tag)
    ]
