"""Issue 15, scenario 5: a failed cancel was never retried.

PENDING_CANCEL was set before the request and nothing took it back: after a cancel that
timed out (not executed at the exchange) the order stayed PENDING_CANCEL for good, no
later cancel touched it (only OPEN orders are cancellable), a delete request's
cancel-all looped forever, and the grid, seeing its level on the way out, placed it
again while the old order still rested (double exposure). Now PENDING_CANCEL lasts only
while the request is in flight, here and after a takeover."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from exchange_sim.testing import RunningSimulator
from support.engine import SYMBOL, shard_engine
from tradebot_runtime.domain import OrderIntent, OrderType, Side
from tradebot_runtime.engine import ShardEngine
from tradebot_runtime.journal import Journal
from tradebot_runtime.orders import OrderRecord, OrderState

pytestmark = pytest.mark.integration


async def _sim_status(sim: RunningSimulator, cid: str) -> str:
    ledger = await sim.admin.ledger(sim.account().name)
    return next(str(o["status"]) for o in ledger["orders"] if o["clientOrderId"] == cid)


async def _resting_buy(engine: ShardEngine) -> OrderRecord:
    price = engine.last_price[SYMBOL] * Decimal("0.9")
    intent = OrderIntent(SYMBOL, Side.BUY, OrderType.LIMIT, Decimal("0.001"), price, tag="t")
    record = await engine.submit(intent)
    assert record is not None and record.state is OrderState.OPEN
    return record


async def test_a_cancel_that_times_out_leaves_the_order_open_and_is_retried(
    simulator: RunningSimulator, journal: Journal
) -> None:
    engine = await shard_engine(simulator, journal, f"ns/b-{uuid.uuid4().hex[:6]}", 1, timeout=1000)
    try:
        record = await _resting_buy(engine)
        cid = record.client_order_id
        await simulator.admin.add_fault(
            kind="timeout", endpoint="DELETE /api/v3/order", when="before", delay_ms=2000,
            count=1,
        )  # fmt: skip
        await engine.cancel(cid)  # times out; the exchange never saw it
        assert record.state is OrderState.OPEN and engine.orders[cid] is record
        stored = await journal.get_order(cid)
        assert stored is not None and stored.state is OrderState.OPEN
        assert await _sim_status(simulator, cid) == "NEW"
        assert await engine.cancel_all() == 0  # the retry goes through
        assert await _sim_status(simulator, cid) == "CANCELED"
        stored = await journal.get_order(cid)
        assert stored is not None and stored.state is OrderState.CANCELED
    finally:
        await engine.client.close()


async def test_a_pending_cancel_left_by_a_dead_leader_is_settled_on_takeover(
    simulator: RunningSimulator, journal: Journal
) -> None:
    bot = f"ns/b-{uuid.uuid4().hex[:6]}"
    old = await shard_engine(simulator, journal, bot, 1)
    try:
        record = await _resting_buy(old)
        record.request_cancel(record.created_ms + 1)  # the leader dies with it in flight
        await journal.update_order(old.fence, record)
    finally:
        await old.client.close()
    new = await shard_engine(simulator, journal, bot, 2)
    try:
        taken = new.orders[record.client_order_id]
        assert taken.state is OrderState.OPEN  # the exchange still has it working
        assert await new.cancel_all() == 0
        assert await _sim_status(simulator, record.client_order_id) == "CANCELED"
    finally:
        await new.client.close()
