"""Issue 15, scenario 1: abandoned too early, then placed again.

A create that timed out was looked up by client id, and "not found" abandoned it 10 s
after ``sent_ms``; but Binance accepts a request until ``recvWindow`` after its signed
timestamp, which may come later than that (the request's own timeout, a throttle wait).
An order the exchange then took rested unseen: out of the working set, ignored by risk and
halts, and a DCA strategy placed it again. Now the grace is the receive window plus clock
skew from the end of the failed request (for a previous leader's send: from the
takeover), and a takeover looks abandoned orders up again.

The simulator holds the create (a ``latency`` fault before processing) past the client's
timeout and then processes it, checking the signed timestamp at processing time."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal

import ccxt.async_support as ccxt_async
import pytest

from exchange_sim.testing import RunningSimulator, make_ccxt
from support.engine import SYMBOL, shard_engine
from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_runtime.domain import OrderIntent, OrderType, Side
from tradebot_runtime.journal import Journal
from tradebot_runtime.orders import OrderRecord, OrderState

pytestmark = pytest.mark.integration

RECV_WINDOW_MS = 20_000
HELD_MS = 12_000
"""Longer than the old 10 s grace, inside the receive window the request was signed with."""


async def test_an_order_accepted_late_inside_the_receive_window_is_never_abandoned(
    simulator: RunningSimulator, journal: Journal
) -> None:
    engine = await shard_engine(
        simulator, journal, f"ns/b-{uuid.uuid4().hex[:6]}", 1,
        timeout=1000, options={"recvWindow": RECV_WINDOW_MS},
    )  # fmt: skip
    try:
        await simulator.admin.add_fault(
            kind="latency", endpoint="POST /api/v3/order", when="before", delay_ms=HELD_MS,
            count=1,
        )  # fmt: skip
        sent = time.monotonic()
        record = await engine.submit(
            OrderIntent(SYMBOL, Side.BUY, OrderType.MARKET, Decimal("0.001"), tag="dca")
        )
        assert record is not None and record.state is OrderState.UNKNOWN  # timed out
        await asyncio.sleep(max(0.0, HELD_MS / 1000 - 1.5 - (time.monotonic() - sent)))
        assert await engine.resolve_unknown() == 1  # not there yet: still unknown
        assert record.state is OrderState.UNKNOWN
        await asyncio.sleep(max(0.0, HELD_MS / 1000 + 1.0 - (time.monotonic() - sent)))
        assert await engine.resolve_unknown() == 0
        assert record.state is OrderState.FILLED
        ledger = await simulator.admin.ledger(simulator.account().name)
        assert [o["clientOrderId"] for o in ledger["orders"]] == [record.client_order_id]
    finally:
        await engine.client.close()


async def test_a_takeover_revives_an_abandoned_order_the_exchange_took(
    simulator: RunningSimulator, journal: Journal
) -> None:
    bot = f"ns/b-{uuid.uuid4().hex[:6]}"
    old = await shard_engine(simulator, journal, bot, 1)
    try:
        price = old.last_price[SYMBOL] * Decimal("0.9")
        intent = OrderIntent(SYMBOL, Side.BUY, OrderType.LIMIT, Decimal("0.001"), price, tag="g")
        seq = (await journal.allocate_seqs(old.fence, 1)).start
        cid = ClientOrderIds("binance", bot, "acct").build(0, 1, seq)
        record = OrderRecord(cid, intent, 0, 1, seq, created_ms=int(time.time() * 1000))
        record.mark_sending(record.created_ms)
        await journal.insert_intent(old.fence, record)
        # the exchange took it, yet the old leader gave it up
        exchange = make_ccxt(ccxt_async.binance, simulator.url, simulator.account())
        try:
            await exchange.create_order(
                SYMBOL, "limit", "buy", 0.001, float(price), {"newClientOrderId": cid}
            )
        finally:
            await exchange.close()
        record.mark_unknown(record.created_ms + 1)
        record.transition(OrderState.ABANDONED, record.created_ms + 2)
        await journal.update_order(old.fence, record)
    finally:
        await old.client.close()

    new = await shard_engine(simulator, journal, bot, 2)
    try:
        assert new.orders[cid].state is OrderState.OPEN  # working again: risk and halts see it
        stored = await journal.get_order(cid)
        assert stored is not None and stored.state is OrderState.OPEN
        assert await new.cancel_all() == 0
    finally:
        await new.client.close()
