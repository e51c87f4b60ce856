"""Runtime hot path: signal -> order sent, including the durable journal write.

Run: .venv/bin/python tests/bench/bench_runtime_hotpath.py [--orders 2000]

Starts its own PostgreSQL (tools/devenv, synchronous_commit on, as in production) and an
in-process exchange simulator (faults off). Measures, in the same run and against the same
server:

* ``submit``: ShardEngine.submit from the call (the strategy's intent) to the moment the
  create request is handed to ccxt: conform -> risk -> fenced journal INSERT + COMMIT ->
  send. The simulator's reply and the ack UPDATE come after "sent" and are not counted.
* ``bare``: one asyncpg INSERT (autocommit: INSERT + COMMIT) of a similar row.

Bars (DESIGN.md): submit p99 <= 2 ms and <= 1.5x bare p99.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import ccxt.async_support as ccxt_async

from devenv import postgres as devenv_postgres
from exchange_sim.testing import running_simulator
from tradebot_contracts.endpoint import endpoint_overrides
from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_runtime.bootstrap import freeze_startup_heap
from tradebot_runtime.domain import OrderIntent, OrderType, Side
from tradebot_runtime.engine import ShardEngine
from tradebot_runtime.exchange.client import ExchangeClient
from tradebot_runtime.journal import Fence, Journal
from tradebot_runtime.positions import PnlTracker
from tradebot_runtime.risk import RiskEngine, RiskLimits
from tradebot_runtime.strategies.dca import Dca

SYMBOL = "BTC/USDT"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench(dsn: str, orders: int) -> dict[str, Any]:
    journal = await Journal.connect(dsn)
    bare_conn = await asyncpg.connect(dsn)
    assert await bare_conn.fetchval("SHOW synchronous_commit") == "on"
    await bare_conn.execute(
        "CREATE TABLE IF NOT EXISTS bench_bare (id text PRIMARY KEY, bot text, shard int,"
        " epoch bigint, seq bigint, symbol text, side text, amount numeric, price numeric,"
        " state text, created_ms bigint)"
    )
    async with running_simulator() as sim:
        account = sim.account()
        config = endpoint_overrides("binance", sim.url)
        config.update(apiKey=account.api_key, secret=account.secret)
        bot = f"bench/{uuid.uuid4().hex[:6]}"
        client = ExchangeClient(ccxt_async.binance(config), ClientOrderIds("binance", bot, "a"))
        await client.load_markets()
        from tradebot_contracts.strategies import DcaParams

        engine = ShardEngine(
            journal=journal, client=client,
            strategy=Dca(DcaParams(interval="1m", amount=Decimal(10)), [SYMBOL]),
            risk=RiskEngine(RiskLimits(max_order_notional=Decimal(10**9))),
            fence=Fence(bot, "a", 0, 1), symbols=[SYMBOL], is_leader=lambda: True,
            pnl=PnlTracker(Decimal(10**6)),
        )  # fmt: skip
        await engine.start("bench")
        freeze_startup_heap()  # as the runtime does once set up
        last = await client.fetch_last_price(SYMBOL)
        assert last is not None
        engine.last_price[SYMBOL] = last
        price = (last * Decimal("0.5")).quantize(Decimal("0.01"))
        sent_at: list[float] = []
        original = client.create_order

        async def create_order(record: Any) -> Any:
            sent_at.append(time.perf_counter())
            return await original(record)

        client.create_order = create_order  # type: ignore[method-assign]
        submit_us: list[float] = []
        bare_us: list[float] = []
        intent = OrderIntent(SYMBOL, Side.BUY, OrderType.LIMIT, Decimal("0.001"), price)
        for i in range(orders):
            # interleaved so that both see the same machine state
            t0 = time.perf_counter()
            await bare_conn.execute(
                "INSERT INTO bench_bare VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                f"{bot}-{i}", bot, 0, 1, i, SYMBOL, "buy", Decimal("0.001"), price,
                "sending", i,
            )  # fmt: skip
            bare_us.append((time.perf_counter() - t0) * 1e6)
            t0 = time.perf_counter()
            record = await engine.submit(intent)
            assert record is not None and sent_at
            submit_us.append((sent_at.pop() - t0) * 1e6)
            if len(engine.orders) >= 200:
                await engine.cancel_all()  # keep the open-order book (and risk inputs) small
        await engine.cancel_all()
        await client.close()
    await bare_conn.execute("DROP TABLE bench_bare")
    await bare_conn.close()
    await journal.close()
    return {
        "submit_p50": pct(submit_us, 0.5), "submit_p99": pct(submit_us, 0.99),
        "bare_p50": pct(bare_us, 0.5), "bare_p99": pct(bare_us, 0.99),
        "submit_mean": statistics.fmean(submit_us), "bare_mean": statistics.fmean(bare_us),
        "submit_max": max(submit_us), "bare_max": max(bare_us),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=2000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-hotpath-pg-"))
    with devenv_postgres.running(tmp) as pg:
        r = asyncio.run(bench(pg.dsn, args.orders))
    ratio = r["submit_p99"] / r["bare_p99"]
    print(f"machine: {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"orders: {args.orders}")
    for label, key in (("signal->sent (journal INSERT+COMMIT included)", "submit"),
                       ("bare asyncpg INSERT+COMMIT", "bare")):  # fmt: skip
        print(f"{label}: p50 {r[key + '_p50']:.0f} us, p99 {r[key + '_p99']:.0f} us, "
              f"mean {r[key + '_mean']:.0f} us, max {r[key + '_max']:.0f} us")  # fmt: skip
    ok = r["submit_p99"] <= 2000 and ratio <= 1.5
    print(f"ratio p99: {ratio:.2f}x  -> {'PASS' if ok else 'FAIL'} (bars: <= 2 ms, <= 1.5x)")


if __name__ == "__main__":
    main()
