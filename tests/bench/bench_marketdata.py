"""Market data: messages per second one runtime process handles with the strategy attached.

Run: .venv/bin/python tests/bench/bench_marketdata.py [--duration 15] [--tick-interval 0.0005]

A simulator process (pinned to core 0) streams public trades of all 7 markets as fast as
its price path steps (one trade per market per step); this process (pinned to core 1)
subscribes with stock ccxt.pro (``watch_trades``, as the runtime does for sub-minute
timeframes) in two phases of equal length, each with a fresh connection:

* ``baseline``: ccxt.pro alone -- the WebSocket receive loop parses every message into
  unified trades; a loop per symbol awaits ``watch_trades`` and counts them.
* ``runtime``: the runtime's market-data path on the same stream: ``MarketFeed`` (trade
  de-duplication, Decimal conversion, ``CandleAggregator`` building 1 s candles,
  staleness bookkeeping, last-price updates) with the ``sma-crossover`` strategy attached
  (every closed candle goes to ``on_bar`` with a StrategyContext, as the app does).

Reported per phase: trades handled per second (bounded by what the simulator sends), CPU
time of this process per trade and trades per CPU-second (the stable figure on a shared
machine), and the ratio runtime / baseline CPU per trade. There is no bar in docs/architecture.md;
the figure is for capacity planning (a pod needs a handful of symbols' streams).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_simulator import start_simulator

from tradebot_contracts.endpoint import endpoint_overrides
from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_contracts.strategies import SmaCrossoverParams
from tradebot_runtime.domain import Bar, Position
from tradebot_runtime.exchange.client import ExchangeClient
from tradebot_runtime.marketdata import MarketFeed
from tradebot_runtime.strategies.base import StrategyContext
from tradebot_runtime.strategies.sma_crossover import SmaCrossover

SYMBOLS = ["BTC/USDT", "ETH/USDT", "LTC/USDT", "ADA/USDT", "XRP/USDT", "DOGE/USDT", "TRX/USDT"]


async def _clients(url: str) -> tuple[ExchangeClient, Any, list[int]]:
    """REST client, ccxt.pro client whose ``watch_trades`` counts the trades it returns
    (the same count in both phases), and the counter."""
    conf = endpoint_overrides("binance", url)
    rest = ExchangeClient(ccxt_async.binance(dict(conf)), ClientOrderIds("binance", "b/md", "a"))
    await rest.load_markets()
    ws = ccxt_pro.binance(dict(conf))
    ws.set_markets(rest.exchange.markets, rest.exchange.currencies)
    count = [0]
    watch = ws.watch_trades

    async def counting(symbol: str, *args: Any, **kwargs: Any) -> Any:
        trades = await watch(symbol, *args, **kwargs)
        count[0] += len(trades)
        return trades

    ws.watch_trades = counting
    return rest, ws, count


async def _measure(count: Any, seconds: float, warmup: float = 2.0) -> dict[str, float]:
    await asyncio.sleep(warmup)  # connected, subscribed, first batches in
    n0, cpu0, t0 = count(), time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    n1, cpu1, t1 = count(), time.process_time(), time.monotonic()
    msgs, cpu, wall = n1 - n0, cpu1 - cpu0, t1 - t0
    return {
        "msgs": msgs,
        "msgs_per_s": msgs / wall,
        "cpu_share": cpu / wall,
        "cpu_us_per_msg": cpu / msgs * 1e6 if msgs else float("inf"),
        "msgs_per_cpu_s": msgs / cpu if cpu else 0.0,
    }


async def baseline(url: str, seconds: float) -> dict[str, float]:
    rest, ws, count = await _clients(url)

    async def loop(symbol: str) -> None:
        while True:
            await ws.watch_trades(symbol)

    tasks = [asyncio.create_task(loop(s)) for s in SYMBOLS]
    try:
        return await _measure(lambda: count[0], seconds)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ws.close()
        await rest.close()


async def runtime(url: str, seconds: float) -> dict[str, float]:
    rest, ws, count = await _clients(url)
    params = SmaCrossoverParams.model_validate(
        {"fastPeriod": 2, "slowPeriod": 5, "orderSize": "20"}
    )
    strategy = SmaCrossover(params, SYMBOLS)
    last_price: dict[str, Decimal] = {}
    bars = [0, 0]  # closed candles, intents

    async def on_bar(bar: Bar, live: bool) -> None:
        bars[0] += 1
        if not live:
            strategy.warmup([bar])
            return
        ctx = StrategyContext(
            symbol=bar.symbol, now_ms=int(time.time() * 1000), position=Position(bar.symbol),
            last_price=last_price.get(bar.symbol),
        )  # fmt: skip
        bars[1] += len(strategy.on_bar(bar, ctx))

    def on_price(symbol: str, price: Decimal) -> None:
        last_price[symbol] = price

    feed = MarketFeed(rest, SYMBOLS, "1s", on_bar, ws=ws, on_price=on_price)
    task = asyncio.create_task(feed.run())
    try:
        result = await _measure(lambda: count[0], seconds)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ws.close()
        await rest.close()
    # every trade came over the WebSocket: no REST fallback during the phase
    assert all(f.source == "ws" and f.disconnects == 0 for f in feed.feeds.values()), [
        (f.symbol, f.source, f.disconnects) for f in feed.feeds.values()
    ]
    return result | {"bars": bars[0], "intents": bars[1]}


async def main_async(args: argparse.Namespace) -> None:
    proc, url, _ = start_simulator(1, args.tick_interval)
    try:
        phases: list[tuple[str, dict[str, float]]] = []
        for name in args.phases:
            run = baseline if name == "baseline" else runtime
            phases.append((name, await run(url, args.duration)))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cpus, load {load}, CPython {platform.python_version()}, "
          f"{len(SYMBOLS)} trade streams, sim tick {args.tick_interval}s, "
          f"{args.duration}s per phase")  # fmt: skip
    for name, r in phases:
        extra = (
            f", {r['bars']} closed 1s candles -> strategy, {r['intents']} intents"
            if "bars" in r else ""
        )  # fmt: skip
        print(
            f"{name:9s}: {r['msgs_per_s']:,.0f} trades/s, {r['cpu_us_per_msg']:.1f} us CPU/trade, "
            f"{r['msgs_per_cpu_s']:,.0f} trades per CPU-s, CPU {r['cpu_share']:.0%} of a core"
            + extra
        )
    per_msg: dict[str, float] = {}
    for kind in ("baseline", "runtime"):
        runs = [r for name, r in phases if name == kind]
        if runs:  # CPU per trade over every phase of the kind
            cpu = sum(r["cpu_us_per_msg"] * r["msgs"] for r in runs)
            per_msg[kind] = cpu / max(1.0, sum(r["msgs"] for r in runs))
    if len(per_msg) == 2:
        print(
            f"overall: baseline {per_msg['baseline']:.1f} us/trade, runtime "
            f"{per_msg['runtime']:.1f} us/trade ({1e6 / per_msg['runtime']:,.0f} trades per "
            f"CPU-s); runtime / baseline CPU per trade: "
            f"{per_msg['runtime'] / per_msg['baseline']:.2f}x"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=15.0, help="measured seconds per phase")
    p.add_argument(
        "--tick-interval", type=float, default=0.0005, help="simulator price step interval (s)"
    )
    p.add_argument(
        "--phases", nargs="+", default=["baseline", "runtime", "baseline", "runtime"],
        help="phases in order (interleaved to average out a drifting machine load)",
    )  # fmt: skip
    args = p.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
