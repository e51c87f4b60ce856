"""Issue 15, scenario 7: risk did not see fills acknowledged but not yet booked.

A ``closed`` acknowledgement took the order out of the working set while the position
changed only at the next fill poll: a second intent in the same bar passed the position
cap, and a reduce-only one was judged against a flat position (refused when it reduced
the real one, allowed when it would flip it). Acknowledged fills now count at once."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from exchange_sim.testing import RunningSimulator
from support.engine import SYMBOL, shard_engine
from tradebot_runtime.domain import OrderIntent, OrderType, Side
from tradebot_runtime.journal import Journal
from tradebot_runtime.orders import OrderState
from tradebot_runtime.risk import RiskEngine, RiskLimits

pytestmark = pytest.mark.integration


def _market(side: Side, amount: str) -> OrderIntent:
    return OrderIntent(SYMBOL, side, OrderType.MARKET, Decimal(amount), tag="t")


async def test_acknowledged_fills_count_for_risk_before_they_are_booked(
    simulator: RunningSimulator, journal: Journal
) -> None:
    engine = await shard_engine(simulator, journal, f"ns/b-{uuid.uuid4().hex[:6]}", 1)
    try:
        room_for_one = engine.last_price[SYMBOL] * Decimal("0.0015")
        engine.risk = RiskEngine(RiskLimits(max_position_notional=room_for_one))
        first = await engine.submit(_market(Side.BUY, "0.001"))
        assert first is not None and first.state is OrderState.FILLED
        assert engine.book.position(SYMBOL).amount == 0  # no poll yet
        assert await engine.submit(_market(Side.BUY, "0.001")) is None  # over the cap

        engine.set_trading_state("ReduceOnly")
        assert await engine.submit(_market(Side.SELL, "0.002")) is None  # would flip it
        reducing = await engine.submit(_market(Side.SELL, "0.0005"))
        assert reducing is not None and reducing.state is OrderState.FILLED

        ledger = await simulator.admin.ledger(simulator.account().name)
        assert len(ledger["orders"]) == 2
        await engine.sync_fills()
        assert engine.settling == {} and engine.unbooked(SYMBOL) == 0
    finally:
        await engine.client.close()
