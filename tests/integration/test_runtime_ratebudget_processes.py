"""One account's rate budget shared by three separate OS processes at full demand.

Each process is this file run as a script: the runtime's own ExchangeClient on a stock
ccxt binance pointed at the simulator, its throttle routed through the runtime's
SharedRateLimiter (Redis token bucket, ``pods`` = 3, as the app installs it), calling the
exchange as fast as the limiter lets it. The simulator enforces a weight limit far below
what one unthrottled client does; the ledger must show 0 violations, and the achieved
share of the budget is reported (together about one budget, none starved)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from exchange_sim.config import Limits
from exchange_sim.testing import running_simulator

if TYPE_CHECKING:  # the worker runs as a script, without the tests' import path
    from fixtures.servers import Redis

pytestmark = pytest.mark.integration

PROCESSES = 3
WEIGHT_LIMIT = 400  # simulator: request weight per minute (binance weight)
BUDGET_UNITS = 480  # the account's budget in ccxt units per minute, before SAFETY
DURATION_S = 6.0
SCRIPT = str(Path(__file__).resolve())


async def _worker() -> None:
    """Reads its settings (with the simulator keys: never argv or env) from stdin."""
    import ccxt.async_support as ccxt_async
    import redis.asyncio as redis

    from tradebot_runtime import metrics
    from tradebot_runtime.exchange.client import ExchangeClient
    from tradebot_runtime.exchange.endpoint import endpoint_overrides
    from tradebot_runtime.order_ids import ClientOrderIds
    from tradebot_runtime.ratelimit import SharedRateLimiter, budget_params, install
    from tradebot_runtime.ratelimit_cost import request_cost

    loop = asyncio.get_running_loop()
    settings = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
    config = endpoint_overrides("binance", settings["url"])
    config.update(apiKey=settings["api_key"], secret=settings["secret"])
    exchange = ccxt_async.binance(config)
    client = ExchangeClient(exchange, ClientOrderIds("binance", "rl/bot", "sim"))
    r = redis.Redis.from_url(settings["redis_url"], socket_timeout=1.0)
    limiter = SharedRateLimiter(
        r, settings["key"], budget_params(exchange, BUDGET_UNITS), pods=lambda: PROCESSES
    )
    try:
        install(exchange, limiter)
        await client.load_markets()
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        start = time.monotonic()
        deadline = start + DURATION_S
        calls = errors = 0
        while time.monotonic() < deadline:
            try:
                await client.free_balances()
                calls += 1
            except Exception:
                errors += 1
        result = {
            "calls": calls,
            "errors": errors,
            "units": str(calls * request_cost("binance", "fetch_balance")),
            "elapsed": time.monotonic() - start,
            "waited_s": limiter.waited_s,
            "wait_metric": metrics.RATE_LIMIT_WAIT._value.get(),
            "local_share": limiter.using_local_share,
        }
        print(json.dumps(result), flush=True)
    finally:
        await client.close()
        await r.aclose()


async def test_three_processes_share_one_account_budget(redis_server: Redis) -> None:
    from tradebot_runtime.ratelimit import budget_params

    key = f"tradebot:ratelimit:procs:{uuid.uuid4().hex[:6]}"
    async with running_simulator(limits=Limits(weight_per_minute=WEIGHT_LIMIT)) as sim:
        account = sim.account()
        settings = {"url": sim.url, "api_key": account.api_key, "secret": account.secret,
                    "redis_url": redis_server.url, "key": key}  # fmt: skip
        procs = []
        for _ in range(PROCESSES):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, SCRIPT, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            procs.append(proc)
        try:
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(settings).encode() + b"\n")
                await proc.stdin.drain()
            for proc in procs:
                assert proc.stdout is not None
                line = await asyncio.wait_for(proc.stdout.readline(), 60)
                assert line.strip() == b"ready", line
            # load_markets spent weight before the measured window: start from zero
            await sim.admin.request("POST", "/admin/ratelimits/reset")
            await sim.admin.request("POST", "/admin/ledger/reset")
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
            outputs = [await asyncio.wait_for(p.communicate(), DURATION_S + 30) for p in procs]
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        summary = await sim.admin.summary()
    assert all(p.returncode == 0 for p in procs), outputs
    results = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
    violations = sum(a["rate_limit_violations"] for a in summary["accounts"].values())
    violations += sum(v["violations"] for v in summary["unattributed_rate_limit"].values())

    params = budget_params("binance", BUDGET_UNITS)
    elapsed = max(r["elapsed"] for r in results)
    budget = (params.capacity_milli + params.rate_milli_per_s * elapsed) / 1000
    units = [float(Decimal(r["units"])) for r in results]
    total = sum(units)
    print(
        f"rate budget, {PROCESSES} processes, {elapsed:.1f}s: {total:.0f} of {budget:.0f} units "
        f"({total / budget:.0%} of the budget); per process "
        + ", ".join(f"{u / total:.0%}" for u in units)
        + f"; violations {violations}"
    )
    assert violations == 0
    assert all(r["errors"] == 0 and not r["local_share"] for r in results), results
    # full demand: every process waited for tokens, so the budget was the bottleneck
    assert all(r["waited_s"] > 1.0 and r["wait_metric"] > 1.0 for r in results), results
    # together about one budget (not three), and used well
    assert total <= budget + 4 * PROCESSES
    assert total >= 0.6 * budget
    # no process starved (the split is reported, not asserted: a shared bucket serves
    # whoever asks when tokens are there, it does not promise equal parts)
    assert min(units) > 0


if __name__ == "__main__":
    asyncio.run(_worker())
