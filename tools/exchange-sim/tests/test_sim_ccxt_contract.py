"""Contract: the STOCK ccxt binance classes (REST and pro) work against the simulator,
configured only through URLs and options, and parse the values the simulator holds."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

from exchange_sim.testing import RunningSimulator

pytestmark = pytest.mark.integration

T = TypeVar("T")
D = Decimal
FIXTURES = Path(__file__).resolve().parent / "data" / "ccxt" / "binance"


def dec(value: Any) -> Decimal:
    return Decimal(str(value))


async def within(awaitable: Awaitable[T], seconds: float = 5.0) -> T:
    return await asyncio.wait_for(awaitable, seconds)


async def test_load_markets_matches_the_real_market_definitions(
    binance: ccxt_async.binance,
) -> None:
    real = json.loads((FIXTURES / "markets.json").read_text())
    spot = {s for s, m in binance.markets.items() if m["spot"]}
    assert spot == {
        "BTC/USDT",
        "ETH/USDT",
        "LTC/USDT",
        "ADA/USDT",
        "XRP/USDT",
        "DOGE/USDT",
        "TRX/USDT",
    }
    for symbol in spot:
        ours, theirs = binance.markets[symbol], real[symbol]
        # the fixture predates ccxt's TICK_SIZE precision mode: it stores decimal places
        digits = {k: Decimal(1).scaleb(-v) for k, v in theirs["precision"].items()}
        assert {k: dec(v) for k, v in ours["precision"].items()} == digits, symbol
        for limit in ("amount", "price", "cost"):
            assert ours["limits"][limit]["min"] == theirs["limits"][limit]["min"], (symbol, limit)
        assert (ours["id"], ours["base"], ours["quote"]) == (
            theirs["id"],
            theirs["base"],
            theirs["quote"],
        )


async def test_fetch_ticker_ohlcv_and_order_book(
    simulator: RunningSimulator, binance: ccxt_async.binance
) -> None:
    market = simulator.sim.engine.markets["BTCUSDT"]
    ticker = await binance.fetch_ticker("BTC/USDT")
    assert dec(ticker["last"]) == market.last_price
    assert (dec(ticker["bid"]), dec(ticker["ask"])) == (market.best_bid, market.best_ask)
    assert ticker["symbol"] == "BTC/USDT" and ticker["baseVolume"] > 0

    candles = await binance.fetch_ohlcv("BTC/USDT", "1m", limit=5)
    assert len(candles) == 5
    assert [b[0] - a[0] for a, b in itertools.pairwise(candles)] == [60_000] * 4
    engine_last = market.candles[-1]
    assert candles[-1][0] == engine_last.open_time
    assert [dec(v) for v in candles[-1][1:6]] == [
        engine_last.open,
        engine_last.high,
        engine_last.low,
        engine_last.close,
        engine_last.volume,
    ]
    for _, o, h, low, c, _v in candles:
        assert low <= min(o, c) <= max(o, c) <= h
    hourly = await binance.fetch_ohlcv("BTC/USDT", "1h", limit=2)
    assert hourly[-1][0] % 3_600_000 == 0

    book = await binance.fetch_order_book("BTC/USDT", 5)
    assert len(book["bids"]) == len(book["asks"]) == 5
    assert dec(book["bids"][0][0]) == market.best_bid and dec(book["asks"][0][0]) == market.best_ask
    assert [b[0] for b in book["bids"]] == sorted((b[0] for b in book["bids"]), reverse=True)
    assert [a[0] for a in book["asks"]] == sorted(a[0] for a in book["asks"])
    assert book["nonce"] == market.update_id


async def test_order_lifecycle(simulator: RunningSimulator, binance: ccxt_async.binance) -> None:
    market = simulator.sim.engine.markets["BTCUSDT"]
    balance = await binance.fetch_balance()
    assert (balance["USDT"]["free"], balance["BTC"]["total"]) == (100000, 1)

    limit = await binance.create_order(
        "BTC/USDT", "limit", "buy", 0.01, 50000, {"newClientOrderId": "bot-acc-0-1-1"}
    )
    assert limit["clientOrderId"] == "bot-acc-0-1-1" and limit["status"] == "open"
    assert (limit["price"], limit["amount"], limit["filled"]) == (50000, 0.01, 0)
    balance = await binance.fetch_balance()
    assert balance["USDT"]["used"] == 500 and balance["USDT"]["free"] == 99500

    ask = market.best_ask
    bought = await binance.create_order(
        "BTC/USDT", "market", "buy", 0.01, params={"newClientOrderId": "bot-acc-0-1-2"}
    )
    assert bought["status"] == "closed" and bought["filled"] == 0.01
    assert dec(bought["average"]) == ask
    assert bought["fee"] == {"currency": "BTC", "cost": 0.00001}
    assert dec(bought["cost"]) == ask * D("0.01")

    found = await binance.fetch_order(None, "BTC/USDT", {"origClientOrderId": "bot-acc-0-1-1"})
    assert (found["id"], found["status"], found["clientOrderId"]) == (
        limit["id"],
        "open",
        "bot-acc-0-1-1",
    )
    by_id = await binance.fetch_order(bought["id"], "BTC/USDT")
    assert by_id["status"] == "closed" and by_id["filled"] == 0.01

    open_orders = await binance.fetch_open_orders("BTC/USDT")
    assert [o["id"] for o in open_orders] == [limit["id"]]

    canceled = await binance.cancel_order(limit["id"], "BTC/USDT")
    assert canceled["status"] == "canceled" and canceled["id"] == limit["id"]
    assert await binance.fetch_open_orders("BTC/USDT") == []

    trades = await binance.fetch_my_trades("BTC/USDT")
    assert len(trades) == 1
    (trade,) = trades
    assert (trade["order"], trade["side"], trade["takerOrMaker"]) == (bought["id"], "buy", "taker")
    assert dec(trade["price"]) == ask and trade["amount"] == 0.01
    assert trade["fee"]["currency"] == "BTC"

    balance = await binance.fetch_balance()
    assert balance["USDT"]["used"] == 0
    assert dec(balance["USDT"]["total"]) == D(100000) - ask * D("0.01")
    assert dec(balance["BTC"]["total"]) == D("1.00999")

    ledger = await simulator.admin.ledger("default")
    assert [o["clientOrderId"] for o in ledger["orders"]] == ["bot-acc-0-1-1", "bot-acc-0-1-2"]
    assert ledger["duplicates"] == []


async def test_market_buy_by_cost_and_sell(
    simulator: RunningSimulator, binance: ccxt_async.binance
) -> None:
    # ccxt turns amount * price into quoteOrderQty for market buys
    spent = await binance.create_order("ETH/USDT", "market", "buy", 0.5, 3000)
    assert spent["status"] == "closed"
    assert 0 < spent["cost"] <= 1500 and spent["filled"] > 0
    assert spent["info"]["origQuoteOrderQty"] == "1500.00000000"
    sold = await binance.create_order("ETH/USDT", "market", "sell", 1)
    bid = simulator.sim.engine.markets["ETHUSDT"].best_bid
    assert sold["status"] == "closed" and dec(sold["average"]) <= bid
    assert sold["fee"]["currency"] == "USDT"


async def test_a_resting_order_fills_when_the_market_moves(
    simulator: RunningSimulator, binance: ccxt_async.binance
) -> None:
    order = await binance.create_order("BTC/USDT", "limit", "sell", 0.02, 61000)
    assert order["status"] == "open"
    await simulator.admin.set_price("BTCUSDT", "61500")
    filled = await binance.fetch_order(order["id"], "BTC/USDT")
    assert filled["status"] == "closed" and filled["filled"] == 0.02
    (trade,) = await binance.fetch_my_trades("BTC/USDT")
    assert trade["takerOrMaker"] == "maker" and trade["price"] == 61000
    assert trade["fee"] == {"currency": "USDT", "cost": 1.22}


async def test_rejections_map_to_ccxt_exceptions(binance: ccxt_async.binance) -> None:
    with pytest.raises(ccxt_async.InsufficientFunds):
        await binance.create_order("BTC/USDT", "market", "sell", 5)
    with pytest.raises(ccxt_async.InvalidOrder):
        await binance.create_order(
            "BTC/USDT", "limit", "buy", 0.01, 50000, {"newClientOrderId": "dup-1-1"}
        )
        await binance.create_order(
            "BTC/USDT", "limit", "buy", 0.01, 50000, {"newClientOrderId": "dup-1-1"}
        )
    with pytest.raises(ccxt_async.OrderNotFound):
        await binance.fetch_order("424242", "BTC/USDT")
    with pytest.raises(ccxt_async.OrderNotFound):
        await binance.cancel_order("424242", "BTC/USDT")


# --- WebSocket (ccxt.pro) ---


async def test_watch_ticker_trades_and_ohlcv(
    simulator: RunningSimulator, binance_pro: ccxt_pro.binance
) -> None:
    market = simulator.sim.engine.markets["BTCUSDT"]

    async def stepper() -> None:
        for _ in range(40):
            await asyncio.sleep(0.05)
            await simulator.admin.tick()

    steps = asyncio.create_task(stepper())
    try:
        # ccxt's default ticker channel is miniTicker; name=ticker asks for the full one
        mini = await within(binance_pro.watch_ticker("BTC/USDT"))
        assert mini["symbol"] == "BTC/USDT" and mini["info"]["e"] == "24hrMiniTicker"
        assert dec(mini["last"]) in {t.price for t in market.trades}
        ticker = await within(binance_pro.watch_ticker("BTC/USDT", {"name": "ticker"}))
        assert ticker["info"]["e"] == "24hrTicker"
        assert dec(ticker["last"]) in {t.price for t in market.trades}
        assert ticker["bid"] < ticker["ask"] and ticker["high"] >= ticker["low"]

        trades = await within(binance_pro.watch_trades("BTC/USDT"))
        last = trades[-1]
        public = {t.trade_id: t for t in market.trades}
        assert int(last["id"]) in public
        assert dec(last["price"]) == public[int(last["id"])].price
        assert dec(last["amount"]) == public[int(last["id"])].qty

        ohlcv = await within(binance_pro.watch_ohlcv("BTC/USDT", "1m"))
        candle = ohlcv[-1]
        engine_candle = next(c for c in market.candles if c.open_time == candle[0])
        assert dec(candle[2]) <= engine_candle.high and dec(candle[3]) >= engine_candle.low
        assert candle[0] % 60_000 == 0

        book = await within(binance_pro.watch_order_book("BTC/USDT"))
        assert book["bids"][0][0] < book["asks"][0][0]
    finally:
        steps.cancel()


async def test_watch_orders_and_balance(
    simulator: RunningSimulator, binance: ccxt_async.binance, binance_pro: ccxt_pro.binance
) -> None:
    watch = asyncio.create_task(binance_pro.watch_orders("BTC/USDT"))
    await asyncio.sleep(0.3)  # the WebSocket API subscription is in place
    placed = await binance.create_order(
        "BTC/USDT", "market", "buy", 0.01, params={"newClientOrderId": "ws-acc-0-1-1"}
    )
    orders = await within(watch)
    assert orders[-1]["id"] == placed["id"]
    assert orders[-1]["clientOrderId"] == "ws-acc-0-1-1"
    assert orders[-1]["status"] == "closed" and orders[-1]["filled"] == 0.01

    balance_task = asyncio.create_task(binance_pro.watch_balance())
    await asyncio.sleep(0.2)
    await binance.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
    balance = await within(balance_task)
    assert balance["USDT"]["used"] == 500
    assert dec(balance["BTC"]["free"]) == D("1.00999")
