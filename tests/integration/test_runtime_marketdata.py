"""Market data against the simulator with stock ccxt / ccxt.pro: trade-built candles over
the WebSocket, a dropped or frozen socket falls back to REST and reconnects, candle
history is contiguous (gap backfill), staleness."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

from exchange_sim.testing import RunningSimulator, running_simulator
from tradebot_contracts.endpoint import endpoint_overrides
from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_runtime import metrics
from tradebot_runtime.domain import Bar
from tradebot_runtime.exchange.client import ExchangeClient
from tradebot_runtime.marketdata import FeedSettings, MarketFeed

pytestmark = pytest.mark.integration
SYMBOL = "BTC/USDT"


@pytest.fixture
async def live_sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(tick_interval_s=0.1, stream_interval_ms=100) as sim:
        yield sim


async def _clients(sim: RunningSimulator) -> tuple[ExchangeClient, ccxt_pro.binance]:
    conf = endpoint_overrides("binance", sim.url)
    rest = ExchangeClient(ccxt_async.binance(dict(conf)), ClientOrderIds("binance", "n/b", "a"))
    await rest.load_markets()
    ws = ccxt_pro.binance(dict(conf))
    ws.set_markets(rest.exchange.markets, rest.exchange.currencies)
    return rest, ws


class Collector:
    def __init__(self) -> None:
        self.bars: list[tuple[Bar, bool]] = []
        self.prices: list[Decimal] = []

    async def on_bar(self, bar: Bar, live: bool) -> None:
        self.bars.append((bar, live))

    def on_price(self, symbol: str, price: Decimal) -> None:
        self.prices.append(price)

    def live_count(self) -> int:
        return sum(1 for _, live in self.bars if live)


async def _until(check: object, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {within}s")


def _disconnects() -> float:
    return metrics.WS_DISCONNECTS.labels("trades")._value.get()


@pytest.mark.parametrize("kind", ["ws_drop", "ws_freeze"])
async def test_trade_candles_survive_socket_faults(live_sim: RunningSimulator, kind: str) -> None:
    rest, ws = await _clients(live_sim)
    seen = Collector()
    settings = FeedSettings(freeze_timeout_s=1.0, backoff_initial_s=0.2, backoff_max_s=1.0)
    feed = MarketFeed(rest, [SYMBOL], "1s", seen.on_bar, ws=ws, on_price=seen.on_price,
                      settings=settings)  # fmt: skip
    assert feed.stale(SYMBOL), "no data yet must count as stale"
    task = asyncio.create_task(feed.run())
    try:
        await _until(lambda: seen.live_count() >= 2, 10)
        assert feed.feeds[SYMBOL].source == "ws"
        assert not feed.stale(SYMBOL)
        before = _disconnects()
        fault = await live_sim.admin.add_fault(kind=kind, endpoint="ws", duration_s=3)
        await _until(lambda: _disconnects() > before, 10)
        during = seen.live_count()
        await _until(lambda: seen.live_count() >= during + 2, 10)  # REST keeps bars coming
        assert not feed.stale(SYMBOL)
        await live_sim.admin.clear_faults()
        assert fault
        await _until(lambda: feed.feeds[SYMBOL].source == "ws", 15)  # reconnected
        bars = [b for b, _ in seen.bars]
        opens = [b.ts for b in bars]
        assert opens == sorted(set(opens)), "bars out of order or repeated"
        assert all(b.timeframe == "1s" and b.ts % 1000 == 0 for b in bars)
        assert all(isinstance(p, Decimal) for p in seen.prices)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ws.close()
        await rest.close()


async def test_candle_history_is_contiguous_and_not_live(live_sim: RunningSimulator) -> None:
    rest, ws = await _clients(live_sim)
    seen = Collector()
    feed = MarketFeed(rest, [SYMBOL], "1m", seen.on_bar, ws=None,
                      settings=FeedSettings(history_bars=50))  # fmt: skip
    try:
        await feed.load_history()
        assert len(seen.bars) >= 40
        assert not any(live for _, live in seen.bars), "history must not trade"
        opens = [b.ts for b, _ in seen.bars]
        assert all(b - a == 60_000 for a, b in itertools.pairwise(opens))
        # a gap: pretend 5 candles were missed; the next poll backfills them in order
        feed.feeds[SYMBOL].last_emitted_ts = opens[-6]
        seen.bars.clear()
        rows = await rest.exchange.fetch_ohlcv(SYMBOL, "1m", opens[-1], 2)
        await feed._ingest_rows(feed.feeds[SYMBOL], rows)
        refilled = [b.ts for b, _ in seen.bars]
        assert refilled[:5] == opens[-5:], "missed candles backfilled in order"
    finally:
        await ws.close()
        await rest.close()
