"""ExchangeClient.market_rules: built once per loaded market, rebuilt after a reload.

Every intent reads its symbol's rules (conform to steps and minimums); they come from a
stock ccxt exchange whose markets are set in memory (no network)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async
import pytest

from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_runtime.exchange.client import ExchangeClient


def btc_usdt(price_tick: str) -> dict[str, Any]:
    return {
        "id": "BTCUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT",
        "baseId": "BTC", "quoteId": "USDT", "type": "spot", "spot": True, "active": True,
        "precision": {"amount": "0.00001", "price": price_tick},
        "limits": {"amount": {"min": "0.00001"}, "cost": {"min": "5"}},
    }  # fmt: skip


@pytest.fixture
async def client() -> AsyncIterator[ExchangeClient]:
    exchange = ccxt_async.binance()
    exchange.set_markets([btc_usdt("0.01")])
    yield ExchangeClient(exchange, ClientOrderIds("binance", "ns/bot", "acct"))
    await exchange.close()


async def test_rules_are_built_once_per_loaded_market(client: ExchangeClient) -> None:
    first = client.market_rules("BTC/USDT")
    assert first.price_tick == Decimal("0.01") and first.min_notional == Decimal(5)
    assert client.market_rules("BTC/USDT") is first


async def test_reloaded_markets_give_new_rules(client: ExchangeClient) -> None:
    before = client.market_rules("BTC/USDT")
    client.exchange.set_markets([btc_usdt("0.1")])  # what load_markets(reload=True) does
    after = client.market_rules("BTC/USDT")
    assert (before.price_tick, after.price_tick) == (Decimal("0.01"), Decimal("0.1"))


async def test_unknown_symbol_still_raises_ccxts_error(client: ExchangeClient) -> None:
    with pytest.raises(ccxt_async.BadSymbol):
        client.market_rules("DOGE/USDT")
