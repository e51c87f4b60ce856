"""The shared Redis token bucket in front of stock ccxt: several clients on one account
at full demand stay inside the exchange's limit; without Redis the local share holds."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import ccxt.async_support as ccxt_async
import pytest
import redis.asyncio as redis

from exchange_sim.config import Limits
from exchange_sim.testing import RunningSimulator, running_simulator
from support.procs import free_port
from support.servers import Redis
from tradebot_contracts.endpoint import endpoint_overrides
from tradebot_runtime import metrics
from tradebot_runtime.ratelimit import SharedRateLimiter, budget_params, install
from tradebot_runtime.ratelimit_cost import request_cost

pytestmark = pytest.mark.integration

WEIGHT_LIMIT = 400  # simulator: request weight per minute
BUDGET_UNITS = 480  # ccxt units per minute (= 2400 weight/min on Binance before SAFETY)
DURATION_S = 4.0
CLIENTS = 3


def _client(sim: RunningSimulator) -> Any:
    account = sim.account()
    config = endpoint_overrides("binance", sim.url)
    config.update(apiKey=account.api_key, secret=account.secret, enableRateLimit=False)
    return ccxt_async.binance(config)


async def _violations(sim: RunningSimulator) -> int:
    summary = await sim.admin.summary()
    total = sum(a["rate_limit_violations"] for a in summary["accounts"].values())
    return total + sum(v["violations"] for v in summary["unattributed_rate_limit"].values())


async def _hammer(
    sim: RunningSimulator, limiters: list[SharedRateLimiter | None]
) -> tuple[int, float]:
    """Each client calls fetch_balance as fast as it can for DURATION_S; returns the calls
    made and the seconds until the last one returned."""
    clients = [_client(sim) for _ in limiters]
    try:
        await asyncio.gather(*(c.load_markets() for c in clients))
        await sim.admin.request("POST", "/admin/ratelimits/reset")
        await sim.admin.request("POST", "/admin/ledger/reset")
        for client, limiter in zip(clients, limiters, strict=True):
            if limiter is not None:
                install(client, limiter)
        start = time.monotonic()
        deadline = start + DURATION_S
        calls = 0

        async def worker(client: Any) -> None:
            nonlocal calls
            while time.monotonic() < deadline:
                try:
                    await client.fetch_balance()
                    calls += 1
                except (ccxt_async.RateLimitExceeded, ccxt_async.DDoSProtection):
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(worker(c) for c in clients))
        return calls, time.monotonic() - start
    finally:
        await asyncio.gather(*(c.close() for c in clients))


def _max_units(limiter: SharedRateLimiter, elapsed: float, pods: int = 1) -> float:
    params = limiter.params.local_share(pods) if pods > 1 else limiter.params
    return (params.capacity_milli + params.rate_milli_per_s * elapsed) / 1000 * pods


async def test_demand_without_limiter_violates() -> None:
    """Control: the demand of this test really exceeds the simulator's limit."""
    async with running_simulator(limits=Limits(weight_per_minute=WEIGHT_LIMIT)) as sim:
        await _hammer(sim, [None] * CLIENTS)
        assert await _violations(sim) > 0


async def test_three_clients_share_one_budget(redis_server: Redis) -> None:
    r = redis.Redis.from_url(redis_server.url)
    key = f"tradebot:ratelimit:test:{uuid.uuid4().hex[:6]}"
    params = budget_params("binance", BUDGET_UNITS)
    limiters = [SharedRateLimiter(r, key, params, pods=lambda: CLIENTS) for _ in range(CLIENTS)]
    try:
        async with running_simulator(limits=Limits(weight_per_minute=WEIGHT_LIMIT)) as sim:
            calls, elapsed = await _hammer(sim, list(limiters))
            assert await _violations(sim) == 0
    finally:
        await r.aclose()
    cost = float(request_cost("binance", "fetch_balance"))
    # one shared bucket: together the clients got about one budget, not three
    assert calls * cost <= _max_units(limiters[0], elapsed) + cost
    assert calls * cost >= 0.6 * _max_units(limiters[0], DURATION_S)
    assert not any(limiter.using_local_share for limiter in limiters)
    assert metrics.RATE_LIMIT_FALLBACK._value.get() == 0


async def test_redis_down_uses_local_share() -> None:
    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)
    params = budget_params("binance", BUDGET_UNITS)
    limiters = [
        SharedRateLimiter(dead, "k", params, pods=lambda: CLIENTS, retry_s=60)
        for _ in range(CLIENTS)
    ]
    try:
        async with running_simulator(limits=Limits(weight_per_minute=WEIGHT_LIMIT)) as sim:
            calls, elapsed = await _hammer(sim, list(limiters))
            assert await _violations(sim) == 0
    finally:
        await dead.aclose()
    assert all(limiter.using_local_share for limiter in limiters)
    assert metrics.RATE_LIMIT_FALLBACK._value.get() == 1
    cost = float(request_cost("binance", "fetch_balance"))
    # each pod gets a third of the budget: together again at most one budget
    assert calls * cost <= _max_units(limiters[0], elapsed, CLIENTS) + CLIENTS * cost
    assert calls > 0
