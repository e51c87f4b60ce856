"""Two bots on one account (one pod each) share the account's Redis budget. Each bot's
own presence sees only its pod, so without an account-wide count each would fall back to
the whole budget when Redis goes away: together twice the exchange's limit. The limiters
register on the account while Redis is up and divide by every pod seen there."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import redis.asyncio as redis

from devenv import redis as devenv_redis
from tradebot_runtime.ratelimit import SharedRateLimiter, budget_params

pytestmark = pytest.mark.integration

BUDGET_UNITS = 600  # per minute: 9 units/s after SAFETY


async def _drain(limiter: SharedRateLimiter, seconds: float) -> float:
    """Units granted to one client at full demand (cost 1) within ``seconds``."""
    granted = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await limiter.acquire(1)
        granted += 1
    return granted


async def test_fallback_share_counts_every_bot_on_the_account() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="tradebot-redis-accountwide-"))
    server = devenv_redis.running(workdir)
    url = server.__enter__().url
    running = True
    params = budget_params("binance", BUDGET_UNITS)
    clients = [redis.Redis.from_url(url, socket_timeout=0.5) for _ in range(2)]
    try:
        # bot A and bot B: one pod each, so each bot's own count says 1
        limiters = [
            SharedRateLimiter(c, "tradebot:ratelimit:ns:acc", params, pods=lambda: 1,
                              retry_s=60, pods_ttl_s=1.5)
            for c in clients
        ]  # fmt: skip
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(lim.account_pods < 2 for lim in limiters):
            await asyncio.gather(*(lim.acquire(0.1) for lim in limiters))
            await asyncio.sleep(0.1)
        assert [lim.account_pods for lim in limiters] == [2, 2]

        server.__exit__(None, None, None)  # Redis goes away
        running = False
        window = 3.0
        granted = await asyncio.gather(*(_drain(lim, window) for lim in limiters))
        assert all(lim.using_local_share for lim in limiters)
        # together at most one budget (rate x window + both halves of the burst)
        rate_per_s = params.rate_milli_per_s / 1000
        bound = rate_per_s * window + params.capacity_milli / 1000 + 2
        print(f"without Redis: granted {granted} in {window}s, one budget = {bound:.0f}")
        assert sum(granted) <= bound
        assert min(granted) > 0
    finally:
        if running:
            server.__exit__(None, None, None)
        await asyncio.gather(*(c.aclose() for c in clients))
        shutil.rmtree(workdir, ignore_errors=True)
