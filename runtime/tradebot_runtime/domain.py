"""Core value types of the runtime: orders the strategy wants, market data, fills, positions.

Everything is immutable and Decimal-based. Timestamps are integer milliseconds since the
Unix epoch (UTC), the unit ccxt uses. Amounts are in base units, prices in quote units.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

ZERO: Final = Decimal(0)


class Side(enum.StrEnum):
    """Order side; the values are ccxt's strings."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for a buy (position grows), -1 for a sell."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(enum.StrEnum):
    """Order type; the values are ccxt's strings."""

    MARKET = "market"
    LIMIT = "limit"


def to_decimal(value: str | int | float | Decimal) -> Decimal:
    """Convert an exchange number to Decimal without binary-float noise.

    ccxt returns floats: ``Decimal(0.1)`` would be 0.1000000000000000055..., while
    ``Decimal(str(0.1))`` is exactly 0.1. Non-finite values are refused.
    """
    if isinstance(value, bool):
        raise TypeError("a bool is not a number")
    result = value if isinstance(value, Decimal) else Decimal(str(value))
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def _require_positive(name: str, value: Decimal) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{name} must be a finite positive Decimal, got {value}")


def _require_non_negative(name: str, value: Decimal) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a finite non-negative Decimal, got {value}")


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order a strategy wants placed; not yet risk-checked, journaled or sent.

    ``tag`` names the purpose (``"sma:entry"``, ``"grid:L3"``); the journal stores it with
    the order so strategies can recognise their own open orders after a restart.
    """

    symbol: str
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None = None
    reduce_only: bool = False
    tag: str = ""

    def __post_init__(self) -> None:
        _require_positive("amount", self.amount)
        if self.type is OrderType.LIMIT:
            if self.price is None:
                raise ValueError("a limit order needs a price")
            _require_positive("price", self.price)
        elif self.price is not None:
            raise ValueError("a market order has no price; the risk engine uses the last price")

    def signed_amount(self) -> Decimal:
        """The change this order makes to the position when fully filled."""
        return self.amount if self.side is Side.BUY else -self.amount


@dataclass(frozen=True, slots=True)
class CancelIntent:
    """A strategy's request to cancel one of its open orders (always allowed by risk)."""

    client_order_id: str
    symbol: str
    reason: str = ""


Action = OrderIntent | CancelIntent
"""What a strategy returns: orders to place and orders to cancel."""


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV candle; ``ts`` is the open time of the candle."""

    symbol: str
    timeframe: str
    ts: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    def __post_init__(self) -> None:
        for name in ("open", "high", "low", "close"):
            _require_positive(name, getattr(self, name))
        _require_non_negative("volume", self.volume)
        if not self.low <= min(self.open, self.close) <= max(self.open, self.close) <= self.high:
            raise ValueError(
                f"inconsistent candle: o={self.open} h={self.high} l={self.low} c={self.close}"
            )


@dataclass(frozen=True, slots=True)
class Trade:
    """One public trade (tick) from the market data feed."""

    symbol: str
    ts: int
    price: Decimal
    amount: Decimal
    trade_id: str | None = None
    side: Side | None = None

    def __post_init__(self) -> None:
        _require_positive("price", self.price)
        _require_non_negative("amount", self.amount)


Tick = Trade


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one of our orders (ccxt "my trade").

    ``trade_id`` is the exchange's trade id; together with ``symbol`` it identifies the fill
    (some exchanges, Binance among them, number trades per symbol). ``fee`` is in
    ``fee_currency``, which may be the quote, the base or a third asset (e.g. BNB).
    """

    trade_id: str
    client_order_id: str
    symbol: str
    side: Side
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_currency: str
    ts: int

    def __post_init__(self) -> None:
        if not self.trade_id:
            raise ValueError("a fill needs the exchange trade id")
        _require_positive("price", self.price)
        _require_positive("amount", self.amount)
        _require_non_negative("fee", self.fee)

    @property
    def key(self) -> tuple[str, str, str]:
        """Dedup key: (symbol, exchange trade id, side). A trade between two of our own
        orders has one id and two sides, both ours: each is a fill."""
        return (self.symbol, self.trade_id, self.side.value)


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """Snapshot of one of our working orders, as strategies and risk see it."""

    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    amount: Decimal
    filled: Decimal
    price: Decimal | None = None
    tag: str = ""

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled


@dataclass(frozen=True, slots=True)
class Position:
    """Snapshot of the position in one symbol (average-cost accounting, see positions.py).

    ``amount`` is signed: positive long, negative short, zero flat. ``avg_entry_price`` is
    zero when flat. PnL and fees are in the quote currency.
    """

    symbol: str
    amount: Decimal = ZERO
    avg_entry_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees_quote: Decimal = ZERO

    @property
    def is_flat(self) -> bool:
        return self.amount == 0

    def unrealized_pnl(self, mark_price: Decimal) -> Decimal:
        return self.amount * (mark_price - self.avg_entry_price)

    def notional(self, mark_price: Decimal) -> Decimal:
        """Absolute value of the position at ``mark_price``."""
        return abs(self.amount) * mark_price


def split_symbol(symbol: str) -> tuple[str, str]:
    """(base, quote) of a ccxt unified symbol: ``BTC/USDT`` or ``BTC/USDT:USDT``."""
    base, sep, rest = symbol.partition("/")
    if not sep or not base or not rest:
        raise ValueError(f"not a ccxt unified symbol: {symbol!r}")
    quote = rest.split(":", 1)[0]
    if not quote:
        raise ValueError(f"not a ccxt unified symbol: {symbol!r}")
    return base, quote
