"""1m candles over the WebSocket (ccxt.pro watch_ohlcv) against the simulator, with one
clock for both sides so that a minute boundary takes no wall time.

The bug this guards: ``watch_ohlcv`` returns only the candles updated since the previous
call, i.e. the candle being built; once the stream moved on to minute N+1, the closed
minute N never appeared in a batch after its end, so a strategy on 1m (or any exchange
timeframe) received no live bar over the WebSocket (the demo's 1m grid placed nothing)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

from exchange_sim.server import Simulator
from exchange_sim.testing import TEST_CONFIG
from tradebot_contracts.endpoint import endpoint_overrides
from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_runtime.candles import Timeframe
from tradebot_runtime.domain import Bar
from tradebot_runtime.exchange.client import ExchangeClient
from tradebot_runtime.marketdata import FeedSettings, MarketFeed

pytestmark = pytest.mark.integration
SYMBOL = "BTC/USDT"
MINUTE = 60_000


async def test_ws_1m_candle_is_emitted_when_the_stream_moves_to_the_next_minute() -> None:
    start = (int(time.time() * 1000) // MINUTE + 1) * MINUTE  # a minute boundary
    now = [start + 10_000]

    def clock() -> int:
        return now[0]

    sim = Simulator(replace(TEST_CONFIG, host="127.0.0.1", port=0), clock=clock)
    url = await sim.start()
    conf = endpoint_overrides("binance", url)
    rest = ExchangeClient(ccxt_async.binance(dict(conf)), ClientOrderIds("binance", "c/b", "a"))
    ws = ccxt_pro.binance(dict(conf))
    bars: list[tuple[Bar, bool]] = []

    async def on_bar(bar: Bar, live: bool) -> None:
        bars.append((bar, live))

    try:
        await rest.load_markets()
        ws.set_markets(rest.exchange.markets, rest.exchange.currencies)
        feed = MarketFeed(
            rest, [SYMBOL], "1m", on_bar, ws=ws, clock=clock,
            settings=FeedSettings(freeze_timeout_s=30.0),
        )  # fmt: skip
        # what load_history would have left: everything up to the minute before `start`
        feed.feeds[SYMBOL].last_emitted_ts = start - MINUTE
        task = asyncio.create_task(feed.run())

        async def step_until(check: object, what: str) -> None:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                await sim.step()
                await asyncio.sleep(0.05)
                if callable(check) and check():
                    return
            pytest.fail(f"timed out waiting for {what}; bars: {bars}")

        # minute `start` is being built: streamed, not closed, nothing emitted
        await step_until(lambda: feed.feeds[SYMBOL].source == "ws", "the kline stream")
        for _ in range(5):
            now[0] += 5_000
            await sim.step()
            await asyncio.sleep(0.05)
        assert bars == []
        # the clock passes the boundary; the next step trades in minute start+1 and the
        # stream sends only that candle: minute `start` must be emitted, live
        now[0] = start + MINUTE + 1_000
        await step_until(lambda: bars, "the closed 1m candle")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await ws.close()
        await rest.close()
        await sim.stop()
    assert [(b.ts, live) for b, live in bars] == [(start, True)]
    bar = bars[0][0]
    assert bar.timeframe == "1m" and Timeframe.parse("1m").is_aligned(bar.ts)
    assert bar.low <= bar.close <= bar.high
