"""Pytest fixtures for the exchange simulator: ``pytest_plugins = ["exchange_sim.pytest_plugin"]``
(the simulator's own tests and the project's tests both load it).

Each test gets a fresh in-process simulator on 127.0.0.1 (a free port; the market moves
only when the test steps it) and, on request, stock ccxt clients pointed at it. A ccxt
client can never reach a real exchange: make_ccxt refuses any URL not on the simulator,
and at teardown the test fails if ccxt called an endpoint the simulator does not serve.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

from exchange_sim.testing import RunningSimulator, make_ccxt, running_simulator


@pytest.fixture
async def simulator() -> AsyncIterator[RunningSimulator]:
    async with running_simulator() as sim:
        yield sim
        unsupported = sim.sim.ledger.unsupported
        assert not unsupported, f"ccxt called endpoints the simulator lacks: {unsupported}"


@pytest.fixture
async def binance(simulator: RunningSimulator) -> AsyncIterator[ccxt_async.binance]:
    """ccxt.async_support.binance with the first account's keys, markets loaded."""
    exchange = make_ccxt(ccxt_async.binance, simulator.url, simulator.account(), timeout=3000)
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


@pytest.fixture
async def binance_pro(simulator: RunningSimulator) -> AsyncIterator[ccxt_pro.binance]:
    """ccxt.pro.binance (WebSocket) with the first account's keys, markets loaded."""
    exchange = make_ccxt(ccxt_pro.binance, simulator.url, simulator.account(), timeout=3000)
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()
