"""The paper broker: market orders fill at the last price, limit orders when the price
crosses, fees from the setting, client ids honoured, fills replay-safe, all Decimal."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_runtime.domain import OrderIntent, OrderType, Side
from tradebot_runtime.exchange.client import SendStatus
from tradebot_runtime.exchange.paper import PaperBroker
from tradebot_runtime.orders import OrderRecord, OrderState

SYMBOL = "BTC/USDT"
IDS = ClientOrderIds("binance", "ns/bot", "acct")


class NoExchange:
    """Stands in for the public ccxt instance; the broker must not call it when it has a
    price (any call fails the test)."""

    id = "binance"
    precisionMode = 0

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected exchange call {name}")


def broker(fee: str = "0.001") -> PaperBroker:
    b = PaperBroker(NoExchange(), IDS, fee_rate=Decimal(fee), clock=lambda: 1_000)
    b.on_price(SYMBOL, Decimal("100"))
    return b


def record(
    seq: int, side: Side, kind: OrderType, amount: str, price: str | None = None
) -> OrderRecord:
    intent = OrderIntent(
        SYMBOL, side, kind, Decimal(amount), Decimal(price) if price is not None else None
    )
    return OrderRecord(IDS.build(0, 1, seq), intent, shard=0, epoch=1, seq=seq, created_ms=0)


async def test_market_order_fills_at_last_price_with_fee() -> None:
    b = broker("0.002")
    rec = record(1, Side.BUY, OrderType.MARKET, "0.5")
    result = await b.create_order(rec)
    assert result.status is SendStatus.ACKED and result.report is not None
    assert result.report.status == "closed" and result.report.filled == Decimal("0.5")
    [fill] = await b.my_trades(SYMBOL)
    assert fill.price == Decimal("100") and fill.amount == Decimal("0.5")
    assert fill.fee == Decimal("0.1000") and fill.fee_currency == "USDT"
    assert fill.client_order_id == rec.client_order_id
    assert isinstance(fill.fee, Decimal)


async def test_limit_order_rests_until_price_crosses() -> None:
    b = broker()
    buy = record(1, Side.BUY, OrderType.LIMIT, "1", "95")
    sell = record(2, Side.SELL, OrderType.LIMIT, "1", "110")
    await b.create_order(buy)
    await b.create_order(sell)
    assert {o.client_order_id for o in await b.open_orders(SYMBOL)} == {
        buy.client_order_id, sell.client_order_id,
    }  # fmt: skip
    assert b.on_price(SYMBOL, Decimal("96")) == []
    [fill] = b.on_price(SYMBOL, Decimal("94.5"))
    assert fill.client_order_id == buy.client_order_id and fill.price == Decimal("95")
    assert b.on_price(SYMBOL, Decimal("109.99")) == []
    [fill] = b.on_price(SYMBOL, Decimal("111"))
    assert fill.side is Side.SELL and fill.price == Decimal("110")
    assert await b.open_orders(SYMBOL) == []
    looked = await b.lookup(SYMBOL, sell.client_order_id)
    assert looked is not None and looked.status == "closed"


async def test_client_id_is_the_key() -> None:
    b = broker()
    rec = record(1, Side.BUY, OrderType.LIMIT, "1", "90")
    assert (await b.create_order(rec)).status is SendStatus.ACKED
    again = await b.create_order(rec)
    assert again.status is SendStatus.REJECTED
    assert await b.lookup(SYMBOL, IDS.build(0, 1, 99)) is None
    cancelled = await b.cancel(SYMBOL, rec.client_order_id)
    assert cancelled is not None and cancelled.status == "canceled"
    assert await b.cancel(SYMBOL, rec.client_order_id) is None
    assert b.on_price(SYMBOL, Decimal("1")) == []  # a cancelled order never fills


async def test_fill_trade_id_is_stable_for_replay_dedup() -> None:
    b = broker()
    rec = record(7, Side.BUY, OrderType.MARKET, "1")
    await b.create_order(rec)
    [fill] = await b.my_trades(SYMBOL)
    assert fill.trade_id == f"paper-{rec.client_order_id}"


async def test_adopt_restores_working_orders_from_the_journal() -> None:
    rec = record(3, Side.BUY, OrderType.LIMIT, "2", "90")
    rec.mark_sending(1)
    rec.apply_exchange_update("open", Decimal(0), 2, exchange_order_id="P1")
    assert rec.state is OrderState.OPEN
    b = broker()
    assert b.adopt([rec]) == 1
    assert b.adopt([rec]) == 0
    [fill] = b.on_price(SYMBOL, Decimal("89"))
    assert fill.client_order_id == rec.client_order_id and fill.amount == Decimal("2")


async def test_market_order_without_any_price_is_rejected() -> None:
    class NoTicker(NoExchange):
        async def fetch_ticker(self, symbol: str) -> dict[str, Any]:
            return {"last": None}

    b = PaperBroker(NoTicker(), IDS)
    result = await b.create_order(record(1, Side.BUY, OrderType.MARKET, "1"))
    assert result.status is SendStatus.REJECTED


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_limit_order_crossing_at_placement_fills_at_once(side: Side) -> None:
    b = broker()
    price = "101" if side is Side.BUY else "99"
    result = await b.create_order(record(1, side, OrderType.LIMIT, "1", price))
    assert result.report is not None and result.report.status == "closed"
