"""Issue 15 ("also wrong"): Halted left resting orders working. The kill switch only
stopped new orders; a grid's resting entries stayed on the book and could still fill.
Halted and ReduceOnly now cancel every working entry (reduce-only orders stay), on every
poll until none is left."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from exchange_sim.testing import RunningSimulator
from support.engine import SYMBOL, shard_engine
from tradebot_runtime.domain import OrderIntent, OrderType, Side
from tradebot_runtime.journal import Journal
from tradebot_runtime.orders import OrderState

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("state", ["Halted", "ReduceOnly"])
async def test_the_kill_switch_cancels_resting_entries(
    simulator: RunningSimulator, journal: Journal, state: str
) -> None:
    engine = await shard_engine(simulator, journal, f"ns/b-{uuid.uuid4().hex[:6]}", 1)
    try:
        price = engine.last_price[SYMBOL] * Decimal("0.9")
        entry = await engine.submit(
            OrderIntent(SYMBOL, Side.BUY, OrderType.LIMIT, Decimal("0.001"), price, tag="g")
        )
        assert entry is not None and entry.state is OrderState.OPEN
        engine.set_trading_state(state)  # type: ignore[arg-type]
        assert await engine.enforce_trading_state() == 1
        assert entry.state is OrderState.CANCELED and engine.orders == {}
        ledger = await simulator.admin.ledger(simulator.account().name)
        assert [o["status"] for o in ledger["orders"]] == ["CANCELED"]
        assert await engine.enforce_trading_state() == 0
    finally:
        await engine.client.close()
