"""Issue 15 ("also wrong"): the grid's balance guard never ran. ``StrategyContext.balances``
was never filled, so a grid placed every buy level below the price whatever the account
could pay, and the exchange refused the ones beyond its cash. The engine now reads the free
balances at start, after fills and every 30 s, and strategies see them."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from exchange_sim.testing import RunningSimulator
from support.engine import SYMBOL, shard_engine
from tradebot_contracts.strategies import GridParams
from tradebot_runtime.domain import Bar, Side
from tradebot_runtime.journal import Journal
from tradebot_runtime.strategies.grid import Grid

pytestmark = pytest.mark.integration


async def test_the_grid_places_only_the_buy_levels_the_account_can_pay(
    simulator: RunningSimulator, journal: Journal
) -> None:
    account = simulator.account().name
    await simulator.admin.set_balances(account, {"USDT": "100", "BTC": "0"})
    price = (await simulator.admin.prices())["BTCUSDT"]
    grid = Grid(
        GridParams(lower=str(price * Decimal("0.8")), upper=str(price * Decimal("1.2")),
                   levels=11, order_size="40"),
        [SYMBOL],
    )  # fmt: skip
    engine = await shard_engine(simulator, journal, f"ns/b-{uuid.uuid4().hex[:6]}", 1, grid)
    try:
        assert engine.balances.get("USDT") == Decimal(100)
        close = engine.last_price[SYMBOL]
        placed = await engine.on_bar(
            Bar(SYMBOL, "1m", 60_000, close, close, close, close, Decimal(1))
        )
        buys = [r for r in placed if r.intent.side is Side.BUY]
        assert len(buys) == 2  # 100 USDT pays two 40 USDT levels, not five
        ledger = await simulator.admin.ledger(account)
        assert ledger["rejections"] == []
    finally:
        await engine.client.close()
