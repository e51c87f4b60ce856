"""Bad input at run time against the real simulator (stock ccxt) and PostgreSQL: an unknown
symbol in the config, an insufficient balance, invalid market data. Each gives a clear
problem (log, the heartbeat's messages via ``engine.problems``, a metric), no crash and no
order at the exchange."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async
import pytest
from prometheus_client import REGISTRY

from exchange_sim.testing import RunningSimulator
from tradebot_contracts.endpoint import endpoint_overrides
from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_runtime.domain import Action, Bar, Fill, OrderIntent, OrderType, Side, Trade
from tradebot_runtime.engine import ShardEngine
from tradebot_runtime.exchange.client import ExchangeClient
from tradebot_runtime.journal import Fence, Journal
from tradebot_runtime.marketdata import FeedSettings, MarketFeed
from tradebot_runtime.orders import OrderState
from tradebot_runtime.positions import PnlTracker
from tradebot_runtime.risk import RiskEngine, RiskLimits
from tradebot_runtime.strategies.base import StrategyContext

pytestmark = pytest.mark.integration
SYMBOL = "BTC/USDT"
UNKNOWN = "NOPE/USDT"


class AlwaysBuy:
    """Asks for a small market buy on every bar."""

    def warmup(self, bars: Sequence[Bar]) -> None: ...

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> list[Action]:
        return [OrderIntent(bar.symbol, Side.BUY, OrderType.MARKET, Decimal("0.001"))]

    def on_tick(self, tick: Trade, ctx: StrategyContext) -> list[Action]:
        return []

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> list[Action]:
        return []


@pytest.fixture
async def engine(simulator: RunningSimulator, journal: Journal) -> AsyncIterator[ShardEngine]:
    account = simulator.account()
    config = endpoint_overrides("binance", simulator.url)
    config.update(apiKey=account.api_key, secret=account.secret)
    client = ExchangeClient(ccxt_async.binance(config), ClientOrderIds("binance", _bot(), "a"))
    try:
        await client.load_markets()
        eng = ShardEngine(
            journal=journal, client=client, strategy=AlwaysBuy(),
            risk=RiskEngine(RiskLimits(max_order_notional=Decimal(100000))),
            fence=Fence(client.ids.bot, "a", 0, 1), symbols=[SYMBOL, UNKNOWN],
            is_leader=lambda: True, pnl=PnlTracker(Decimal(10000)),
        )  # fmt: skip
        await eng.start("pod-1")  # the unknown symbol must not break reconciliation
        last = await client.fetch_last_price(SYMBOL)
        assert last is not None
        eng.last_price[SYMBOL] = last
        yield eng
    finally:
        await client.close()


def _bot() -> str:
    return f"ns/bad-{uuid.uuid4().hex[:6]}"


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _bar(symbol: str, price: Decimal, **overrides: Any) -> Bar:
    fields: dict[str, Any] = {"open": price, "high": price, "low": price, "close": price,
                              "volume": Decimal(1)}  # fmt: skip
    fields.update(overrides)
    return Bar(symbol=symbol, timeframe="1m", ts=60_000, **fields)


async def _orders(sim: RunningSimulator) -> list[dict[str, Any]]:
    ledger = await sim.admin.ledger(sim.account().name)
    return list(ledger["orders"])


async def test_unknown_symbol_is_reported_and_never_traded(
    simulator: RunningSimulator, engine: ShardEngine
) -> None:
    assert engine.symbols == [SYMBOL]
    assert "unknown symbol NOPE/USDT" in engine.problems[f"symbol:{UNKNOWN}"]
    assert _sample("tradebot_config_errors_total", kind="unknown_symbol") >= 1
    intent = OrderIntent(UNKNOWN, Side.BUY, OrderType.MARKET, Decimal(1))
    assert await engine.submit(intent) is None
    assert await _orders(simulator) == []
    # the known symbol still trades
    placed = await engine.on_bar(_bar(SYMBOL, engine.last_price[SYMBOL]))
    assert [r.state for r in placed] == [OrderState.FILLED]
    assert len(await _orders(simulator)) == 1


async def test_insufficient_balance_is_a_clear_rejection(
    simulator: RunningSimulator, engine: ShardEngine
) -> None:
    account = simulator.account().name
    await simulator.admin.request("PUT", f"/admin/accounts/{account}/balances", {"USDT": "0"})
    before = _sample("trading_order_rejections_total", symbol=SYMBOL, reason="InsufficientFunds")
    placed = await engine.on_bar(_bar(SYMBOL, engine.last_price[SYMBOL]))
    assert [r.state for r in placed] == [OrderState.REJECTED]
    problem = engine.problems[f"order:{SYMBOL}"]
    assert problem.startswith("order rejected by the exchange") and "InsufficientFunds" in problem
    after = _sample("trading_order_rejections_total", symbol=SYMBOL, reason="InsufficientFunds")
    assert after == before + 1
    assert [o for o in await _orders(simulator) if o["status"] != "REJECTED"] == []
    assert not engine.stopped and engine.orders == {}
    # money back: the next order goes through and clears the problem
    await simulator.admin.request("PUT", f"/admin/accounts/{account}/balances", {"USDT": "1e6"})
    placed = await engine.on_bar(_bar(SYMBOL, engine.last_price[SYMBOL]))
    assert [r.state for r in placed] == [OrderState.FILLED]
    assert f"order:{SYMBOL}" not in engine.problems


async def test_invalid_candles_are_dropped_and_the_feed_goes_stale(
    simulator: RunningSimulator, engine: ShardEngine
) -> None:
    """Candles the Bar type refuses (high below low, zero prices) are counted and dropped:
    no bar reaches the engine, the feed is not refreshed (it reports stale) and no order
    is placed; a valid candle goes through to the engine, which places its order."""
    bars: list[Bar] = []

    async def on_bar(bar: Bar, live: bool) -> None:
        bars.append(bar)
        await engine.on_bar(bar)

    feed = MarketFeed(engine.client, [SYMBOL], "1m", on_bar, settings=FeedSettings())
    state = feed.feeds[SYMBOL]
    p = float(engine.last_price[SYMBOL])
    before = _sample("tradebot_market_data_invalid_total", symbol=SYMBOL)
    bad = [[60_000, p, p / 2, p, p, 1.0], [120_000, 0.0, 0.0, 0.0, 0.0, 1.0]]
    await feed._ingest_rows(state, bad)
    assert bars == [] and state.last_update_ms is None and feed.stale(SYMBOL)
    assert _sample("tradebot_market_data_invalid_total", symbol=SYMBOL) == before + 2
    assert await _orders(simulator) == []
    await feed._ingest_rows(state, [[60_000, p, p, p, p, 1.0], [120_000, p, p, p, p, 1.0]])
    assert [b.ts for b in bars] == [60_000, 120_000] and not feed.stale(SYMBOL)
    assert len(await _orders(simulator)) == 2  # AlwaysBuy: one order per valid candle


async def test_invalid_ticker_price_leaves_the_feed_stale(
    simulator: RunningSimulator, engine: ShardEngine
) -> None:
    """A non-positive price from the exchange neither refreshes the feed nor marks."""
    marks: list[Decimal] = []

    async def on_bar(bar: Bar, live: bool) -> None: ...

    feed = MarketFeed(
        engine.client, [SYMBOL], "1m", on_bar, on_price=lambda s, p: marks.append(p),
        settings=FeedSettings(),
    )  # fmt: skip
    before = _sample("tradebot_market_data_invalid_total", symbol=SYMBOL)
    state = feed.feeds[SYMBOL]
    feed._touch(state, Decimal(0))
    assert marks == [] and state.last_update_ms is None and feed.stale(SYMBOL)
    assert _sample("tradebot_market_data_invalid_total", symbol=SYMBOL) == before + 1
    feed._touch(state, engine.last_price[SYMBOL])
    assert marks == [engine.last_price[SYMBOL]] and not feed.stale(SYMBOL)
