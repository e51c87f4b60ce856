"""One shard's order pipeline against the real simulator (stock ccxt) and PostgreSQL:
intent journaled before send, reply-after-accept timeouts resolved by client id without
duplicates, fills booked once, a stale epoch never reaches the exchange."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from exchange_sim.testing import RunningSimulator
from support.engine import SYMBOL, shard_engine
from tradebot_runtime.domain import Bar, OrderIntent, OrderType, Side
from tradebot_runtime.journal import Journal, StaleEpochError
from tradebot_runtime.orders import OrderState

pytestmark = pytest.mark.integration


def _bot() -> str:
    return f"ns/b-{uuid.uuid4().hex[:6]}"


async def _ledger(sim: RunningSimulator) -> dict[str, Any]:
    return await sim.admin.ledger(sim.account().name)


async def test_limit_order_journaled_then_sent(
    simulator: RunningSimulator, journal: Journal
) -> None:
    engine = await shard_engine(simulator, journal, _bot(), 1)
    try:
        price = engine.last_price[SYMBOL] * Decimal("0.9")
        record = await engine.submit(
            OrderIntent(SYMBOL, Side.BUY, OrderType.LIMIT, Decimal("0.01"), price)
        )
        assert record is not None and record.state is OrderState.OPEN
        stored = await journal.get_order(record.client_order_id)
        assert stored is not None and stored.state is OrderState.OPEN
        assert stored.exchange_order_id == record.exchange_order_id is not None
        ledger = await _ledger(simulator)
        assert [o["clientOrderId"] for o in ledger["orders"]] == [record.client_order_id]
        assert await engine.cancel_all() == 0
        stored = await journal.get_order(record.client_order_id)
        assert stored is not None and stored.state is OrderState.CANCELED
    finally:
        await engine.client.close()


async def test_reply_after_accept_timeout_resolved_by_client_id(
    simulator: RunningSimulator, journal: Journal
) -> None:
    engine = await shard_engine(simulator, journal, _bot(), 1, timeout=1000)
    try:
        await simulator.admin.add_fault(
            kind="timeout", endpoint="POST /api/v3/order", delay_ms=2000, count=3
        )
        records = []
        for _ in range(3):
            record = await engine.submit(
                OrderIntent(SYMBOL, Side.BUY, OrderType.MARKET, Decimal("0.001"))
            )
            assert record is not None and record.state is OrderState.UNKNOWN
            records.append(record)
        assert await engine.resolve_unknown() == 0
        for record in records:
            stored = await journal.get_order(record.client_order_id)
            assert stored is not None and stored.state is OrderState.FILLED
        await engine.sync_fills()
        ledger = await _ledger(simulator)
        assert len(ledger["orders"]) == 3 and ledger["duplicates"] == []
        sim = ledger["positions"]["BTCUSDT"]
        assert Decimal(sim["net_qty"]) == Decimal("0.003")
        # fees paid in the base currency reduce the position held
        held = Decimal(sim["net_qty"]) - Decimal(sim["fees"].get("BTC", "0"))
        assert engine.book.position(SYMBOL).amount == held
        # replaying the fills changes nothing
        assert await engine.sync_fills() == 0
        assert engine.book.position(SYMBOL).amount == held
    finally:
        await engine.client.close()


async def test_stale_leader_cannot_send(simulator: RunningSimulator, journal: Journal) -> None:
    bot = _bot()
    old = await shard_engine(simulator, journal, bot, 1)
    new = await shard_engine(simulator, journal, bot, 2)
    try:
        intent = OrderIntent(SYMBOL, Side.BUY, OrderType.MARKET, Decimal("0.001"))
        with pytest.raises(StaleEpochError):
            await old.submit(intent)
        assert old.stopped
        assert (await _ledger(simulator))["orders"] == []
        record = await new.submit(intent)
        assert record is not None and record.state is OrderState.FILLED
        assert record.seq > 0 and new.client.ids.parse(record.client_order_id).epoch == 2
    finally:
        await old.client.close()
        await new.client.close()


async def test_dca_schedule_survives_failover(
    simulator: RunningSimulator, journal: Journal
) -> None:
    """bar -> strategy -> risk -> journal -> send; the schedule comes from the journal, so
    a new leader does not repeat the buy."""
    from tradebot_contracts.runtime_config import StrategyConfig
    from tradebot_runtime.strategies import create_strategy

    bot = _bot()
    config = StrategyConfig(
        name="dca", type="dca", timeframe="1m", parameters={"interval": "1h", "amount": "50"}
    )
    engines = []
    try:
        for epoch in (1, 2):
            engine = await shard_engine(simulator, journal, bot, epoch)
            engines.append(engine)
            engine.strategy = create_strategy(config, [SYMBOL])
            close = engine.last_price[SYMBOL]
            for minute in range(3):
                bar = Bar(SYMBOL, "1m", minute * 60_000, close, close, close, close, Decimal(1))
                await engine.on_bar(bar)
                await engine.poll_orders()
        ledger = await _ledger(simulator)
        assert len(ledger["orders"]) == 1 and ledger["duplicates"] == []
        assert engines[0].stats.placed == 1 and engines[1].stats.placed == 0
    finally:
        for engine in engines:
            await engine.client.close()
