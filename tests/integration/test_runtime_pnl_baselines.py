"""Issue 15, scenario 3: the daily-loss and drawdown limits reset on every restart or
failover. A fresh PnlTracker on each Lease acquisition took the current total as the day's
opening and the current equity as the peak, so a pod killed at its loss limit came back
with a whole new budget. The baselines are now journaled by the leader (fenced) and read
on takeover, and PnL is sampled on every mark change, not only when an order is tried."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest

from exchange_sim.testing import RunningSimulator
from support.engine import SYMBOL, shard_engine
from tradebot_runtime.domain import Bar, OrderIntent, OrderType, Side
from tradebot_runtime.journal import Journal
from tradebot_runtime.orders import OrderState
from tradebot_runtime.risk import RiskEngine, RiskLimits

pytestmark = pytest.mark.integration
LIMITS = RiskLimits(max_daily_loss=Decimal(5), max_drawdown_pct=Decimal(50))


def _buy() -> OrderIntent:
    return OrderIntent(SYMBOL, Side.BUY, OrderType.MARKET, Decimal("0.002"), tag="t")


async def test_a_spent_daily_loss_budget_survives_a_takeover(
    simulator: RunningSimulator, journal: Journal
) -> None:
    bot = f"ns/b-{uuid.uuid4().hex[:6]}"
    old = await shard_engine(simulator, journal, bot, 1)
    try:
        old.risk = RiskEngine(LIMITS)
        bought = await old.submit(_buy())
        assert bought is not None and bought.state is OrderState.FILLED
        await old.poll_orders()  # books the fill, samples and saves the baselines
        price = old.last_price[SYMBOL]
        crash = price * Decimal("0.9")  # the mark falls 10 %: about 12 USDT lost
        await old.on_bar(Bar(SYMBOL, "1m", 60_000, price, price, crash, crash, Decimal(1)))
        await old.poll_orders()
        now = int(time.time() * 1000)
        daily = old.pnl.update(now, old.book.total_pnl(old.last_price)).daily_pnl
        assert daily < -Decimal(5)
        assert await old.submit(_buy()) is None  # the loss limit holds new risk
    finally:
        await old.client.close()

    new = await shard_engine(simulator, journal, bot, 2)  # the pod was killed; a standby
    try:
        new.risk = RiskEngine(LIMITS)
        new.last_price[SYMBOL] = crash
        assert await new.submit(_buy()) is None  # still over the day's loss: no new budget
        ledger = await simulator.admin.ledger(simulator.account().name)
        assert len(ledger["orders"]) == 1
    finally:
        await new.client.close()
