"""Plain data: orders, fills, public trades, candles and the events the engine emits."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from .decimals import ZERO

BUY = "BUY"
SELL = "SELL"
OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})


@dataclass(slots=True)
class Order:
    account: str
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str  # LIMIT | MARKET | LIMIT_MAKER
    time_in_force: str
    price: Decimal  # 0 for market orders, as Binance reports it
    orig_qty: Decimal
    orig_quote_qty: Decimal
    time: int
    stp_mode: str
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: str = "NEW"
    update_time: int = 0
    locked: Decimal = ZERO  # funds still locked for the unfilled remainder
    trade_ids: list[int] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def snapshot(self) -> Order:
        """A frozen-in-time copy for events (the live order keeps changing)."""
        return Order(
            account=self.account,
            symbol=self.symbol,
            order_id=self.order_id,
            client_order_id=self.client_order_id,
            side=self.side,
            type=self.type,
            time_in_force=self.time_in_force,
            price=self.price,
            orig_qty=self.orig_qty,
            orig_quote_qty=self.orig_quote_qty,
            time=self.time,
            stp_mode=self.stp_mode,
            executed_qty=self.executed_qty,
            cum_quote=self.cum_quote,
            status=self.status,
            update_time=self.update_time,
            locked=self.locked,
            trade_ids=list(self.trade_ids),
        )


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of an account's order (a row of myTrades)."""

    trade_id: int
    order_id: int
    account: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_maker: bool


@dataclass(frozen=True, slots=True)
class PublicTrade:
    trade_id: int
    symbol: str
    price: Decimal
    qty: Decimal
    time: int
    is_buyer_maker: bool


@dataclass(slots=True)
class Candle:
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    trades: int = 0
    taker_buy_volume: Decimal = ZERO
    taker_buy_quote: Decimal = ZERO
    first_trade_id: int = -1
    last_trade_id: int = -1

    def add(self, trade: PublicTrade) -> None:
        self.high = max(self.high, trade.price)
        self.low = min(self.low, trade.price)
        self.close = trade.price
        quote = trade.price * trade.qty
        self.volume += trade.qty
        self.quote_volume += quote
        self.trades += 1
        if not trade.is_buyer_maker:  # the taker was the buyer
            self.taker_buy_volume += trade.qty
            self.taker_buy_quote += quote
        if self.first_trade_id < 0:
            self.first_trade_id = trade.trade_id
        self.last_trade_id = trade.trade_id


@dataclass(slots=True)
class Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO


# --- events (the server renders them as user-data and market stream messages) ---


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    account: str
    order: Order  # snapshot after this execution
    execution_type: str  # NEW | TRADE | CANCELED | EXPIRED
    event_time: int
    fill: Fill | None = None


@dataclass(frozen=True, slots=True)
class BalanceUpdate:
    account: str
    event_time: int
    balances: tuple[tuple[str, Decimal, Decimal], ...]  # (asset, free, locked)


@dataclass(frozen=True, slots=True)
class TradeEvent:
    trade: PublicTrade


Event = ExecutionReport | BalanceUpdate | TradeEvent
