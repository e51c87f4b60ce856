"""Issue 15: the ``reduce_only`` flag of an intent was checked by our risk engine but never
sent, so a derivatives exchange could open the other side with it. It now goes out as
ccxt's ``reduceOnly`` on contract markets (spot has no such flag and would refuse it)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async

from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_runtime.domain import OrderIntent, OrderType, Side
from tradebot_runtime.exchange.client import ExchangeClient, SendStatus
from tradebot_runtime.orders import OrderRecord

MARKETS = [
    {"id": "BTCUSDT", "symbol": "BTC/USDT:USDT", "base": "BTC", "quote": "USDT",
     "settle": "USDT", "type": "swap", "spot": False, "swap": True, "contract": True,
     "linear": True, "active": True, "precision": {}, "limits": {}},
    {"id": "BTCUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "type": "spot",
     "spot": True, "contract": False, "active": True, "precision": {}, "limits": {}},
]  # fmt: skip


async def _params_sent(exchange: Any, symbol: str, reduce_only: bool) -> dict[str, Any]:
    sent: dict[str, Any] = {}

    async def create_order(*args: Any) -> dict[str, Any]:
        sent.update(args[5])
        return {"id": "1", "clientOrderId": args[5].get("newClientOrderId"), "symbol": symbol,
                "status": "closed", "filled": 0.001, "amount": 0.001, "side": "sell"}  # fmt: skip

    exchange.set_markets(MARKETS)
    exchange.create_order = create_order
    ids = ClientOrderIds("binance", "ns/bot", "acct")
    client = ExchangeClient(exchange, ids)
    intent = OrderIntent(
        symbol, Side.SELL, OrderType.MARKET, Decimal("0.001"), reduce_only=reduce_only
    )
    record = OrderRecord(ids.build(0, 1, 1), intent, 0, 1, 1, created_ms=1)
    assert (await client.create_order(record)).status is SendStatus.ACKED
    return sent


async def test_reduce_only_is_sent_on_contract_markets_only() -> None:
    exchange = ccxt_async.binanceusdm()
    try:
        assert (await _params_sent(exchange, "BTC/USDT:USDT", True))["reduceOnly"] is True
        assert "reduceOnly" not in await _params_sent(exchange, "BTC/USDT:USDT", False)
        assert "reduceOnly" not in await _params_sent(exchange, "BTC/USDT", True)
    finally:
        await exchange.close()
