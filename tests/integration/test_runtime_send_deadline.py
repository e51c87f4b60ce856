"""Issue 15, scenario 2: an order sent after its Lease lapsed.

The last leadership check came before ccxt's throttle, and only part of an order's cost is
prepaid on most exchanges: the rest (and any 429 pause, up to minutes) was waited for
inside the throttle, after which the order went out whoever held the shard by then. The
right to send is now checked after every rate-limit wait and right before the request is
signed; an order that may not go out any more is NOT_SENT (abandoned, nothing at the
exchange)."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest

from exchange_sim.testing import RunningSimulator
from support.engine import SYMBOL, shard_engine
from tradebot_runtime.domain import OrderIntent, OrderType, Side
from tradebot_runtime.journal import Journal
from tradebot_runtime.orders import OrderState
from tradebot_runtime.ratelimit import SharedRateLimiter, budget_params, install

pytestmark = pytest.mark.integration


async def test_an_order_whose_lease_lapses_in_the_throttle_is_never_sent(
    simulator: RunningSimulator, journal: Journal
) -> None:
    engine = await shard_engine(simulator, journal, f"ns/b-{uuid.uuid4().hex[:6]}", 1)
    try:
        exchange = engine.client.exchange
        limiter = SharedRateLimiter(None, "budget", budget_params(exchange, 1200))
        install(exchange, limiter)  # the create's cost is paid in the throttle, not before
        valid_until = time.monotonic() + 0.5
        engine.is_leader = lambda: time.monotonic() < valid_until  # a Lease about to lapse
        limiter.pause(2.0)  # a 429 answered just before: the create waits in the throttle
        record = await engine.submit(
            OrderIntent(SYMBOL, Side.BUY, OrderType.MARKET, Decimal("0.001"), tag="t")
        )
        assert record is not None and record.state is OrderState.ABANDONED
        stored = await journal.get_order(record.client_order_id)
        assert stored is not None and stored.state is OrderState.ABANDONED
        ledger = await simulator.admin.ledger(simulator.account().name)
        assert ledger["orders"] == []  # nothing reached the exchange
    finally:
        await engine.client.close()
