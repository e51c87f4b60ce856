"""Paper broker: the order side of ExchangeClient simulated in process.

Used when a paper bot's ExchangeAccount declares no credentials, and for a paper bot on
a sandbox or live account, which never gets that account's keys (bootstrap.open_exchange;
its shards do not trade at all). Market data and market
rules still come from the (public, unsigned) exchange endpoint through the inherited
ExchangeClient methods; orders never leave the process:

* market orders fill at once at the last price (``on_price`` feeds it; otherwise one
  public ticker read at order time);
* limit orders rest until the price crosses them (buy: last <= limit, sell: last >=
  limit) and then fill completely at the limit price;
* the fee is ``fee_rate`` x notional, in the quote currency;
* the client order id is honoured: it is the order's key, ``lookup`` finds it, a second
  create with the same id is refused (as an exchange does), and the fill's trade id is
  derived from it, so a replay after a failover cannot book the fill twice;
* all money is Decimal.

Working orders live in memory; ``adopt`` re-creates them from the journal after a restart
or failover (the journal is the source of truth in paper mode too).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_runtime.domain import ZERO, Fill, OrderType, Side, split_symbol
from tradebot_runtime.exchange.client import (
    ExchangeClient,
    FillPage,
    OrderReport,
    SendResult,
    SendStatus,
)
from tradebot_runtime.orders import OrderRecord, OrderState

DEFAULT_FEE_RATE = Decimal("0.001")


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class PaperOrder:
    client_order_id: str
    exchange_order_id: str
    symbol: str
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None
    status: str = "open"  # ccxt unified: open, closed, canceled
    filled: Decimal = ZERO

    def report(self) -> OrderReport:
        return OrderReport(
            client_order_id=self.client_order_id,
            exchange_order_id=self.exchange_order_id,
            symbol=self.symbol,
            status=self.status,
            filled=self.filled,
            amount=self.amount,
            side=self.side.value,
        )


class PaperBroker(ExchangeClient):
    """ExchangeClient whose orders are filled locally against the last price."""

    def __init__(
        self,
        exchange: Any,
        ids: ClientOrderIds,
        *,
        fee_rate: Decimal = DEFAULT_FEE_RATE,
        clock: Any = _now_ms,
        **kwargs: Any,
    ) -> None:
        super().__init__(exchange, ids, **kwargs)
        self.fee_rate = fee_rate
        self.clock = clock
        self.prices: dict[str, Decimal] = {}
        self.paper_orders: dict[str, PaperOrder] = {}
        self.fills: dict[str, list[Fill]] = {}
        self._order_numbers = itertools.count(1)

    # -- prices -------------------------------------------------------------------------

    def on_price(self, symbol: str, price: Decimal) -> list[Fill]:
        """A new last price: fill the resting limit orders it crosses."""
        self.prices[symbol] = price
        new: list[Fill] = []
        for order in list(self.paper_orders.values()):
            if order.symbol != symbol or order.status != "open" or order.price is None:
                continue
            crossed = price <= order.price if order.side is Side.BUY else price >= order.price
            if crossed:
                new.append(self._fill(order, order.price))
        return new

    async def _price(self, symbol: str) -> Decimal | None:
        price = self.prices.get(symbol)
        if price is None:
            price = await self.fetch_last_price(symbol)
            if price is not None:
                self.prices[symbol] = price
        return price

    def _fill(self, order: PaperOrder, price: Decimal) -> Fill:
        amount = order.amount - order.filled
        _, quote = split_symbol(order.symbol)
        fill = Fill(
            trade_id=f"paper-{order.client_order_id}",
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            amount=amount,
            fee=price * amount * self.fee_rate,
            fee_currency=quote,
            ts=self.clock(),
        )
        order.filled = order.amount
        order.status = "closed"
        self.fills.setdefault(order.symbol, []).append(fill)
        return fill

    # -- orders -------------------------------------------------------------------------

    async def create_order(
        self, record: OrderRecord, may_send: Callable[[], bool] | None = None
    ) -> SendResult:
        if may_send is not None and not may_send():
            return SendResult(SendStatus.NOT_SENT, reason="the right to send ended")
        intent = record.intent
        cid = record.client_order_id
        if cid in self.paper_orders:
            return SendResult(SendStatus.REJECTED, reason="duplicate client order id")
        order = PaperOrder(
            client_order_id=cid,
            exchange_order_id=f"P{next(self._order_numbers)}",
            symbol=intent.symbol,
            side=intent.side,
            type=intent.type,
            amount=intent.amount,
            price=intent.price,
        )
        price = await self._price(intent.symbol)
        if intent.type is OrderType.MARKET:
            if price is None:
                return SendResult(SendStatus.REJECTED, reason="no price for a market order")
            self.paper_orders[cid] = order
            self._fill(order, price)
        else:
            self.paper_orders[cid] = order
            if price is not None:
                self.on_price(intent.symbol, price)
        return SendResult(SendStatus.ACKED, order.report())

    def adopt(self, records: Iterable[OrderRecord]) -> int:
        """Re-create working orders from the journal (after a restart or failover);
        returns how many were adopted. Orders never acknowledged (SENDING, UNKNOWN) were
        not placed by any broker, so they are left to the lookup (NOT_FOUND)."""
        adopted = 0
        for record in records:
            if record.state not in (OrderState.OPEN, OrderState.PARTIALLY_FILLED):
                continue
            if record.client_order_id in self.paper_orders:
                continue
            intent = record.intent
            self.paper_orders[record.client_order_id] = PaperOrder(
                client_order_id=record.client_order_id,
                exchange_order_id=record.exchange_order_id or f"P{next(self._order_numbers)}",
                symbol=intent.symbol,
                side=intent.side,
                type=intent.type,
                amount=intent.amount,
                price=intent.price,
                filled=record.filled,
            )
            adopted += 1
        return adopted

    async def lookup(self, symbol: str, client_order_id: str) -> OrderReport | None:
        order = self.paper_orders.get(client_order_id)
        return None if order is None else order.report()

    async def cancel(self, symbol: str, client_order_id: str) -> OrderReport | None:
        order = self.paper_orders.get(client_order_id)
        if order is None or order.status != "open":
            return None
        order.status = "canceled"
        return order.report()

    async def open_orders(self, symbol: str) -> list[OrderReport]:
        return [
            o.report()
            for o in self.paper_orders.values()
            if o.symbol == symbol and o.status == "open"
        ]

    async def my_trades(
        self,
        symbol: str,
        since: int | None = None,
        *,
        known: Callable[[str, str], bool] | None = None,
    ) -> list[Fill]:
        return [
            f
            for f in self.fills.get(symbol, [])
            if (since is None or f.ts >= since)
            and (known is None or not known(f.trade_id, f.side.value))
        ]

    async def fills_since(
        self, symbol: str, since: int, *, known: Callable[[str, str], bool] | None = None
    ) -> FillPage:
        fills = await self.my_trades(symbol, since, known=known)
        stamps = [f.ts for f in self.fills.get(symbol, [])]
        return FillPage(fills, max(stamps, default=since))

    async def free_balances(self) -> dict[str, Decimal]:
        return {}
