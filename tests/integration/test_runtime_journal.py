"""The journal against a real PostgreSQL: migrations, intent-first, fencing, fill dedup."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import asyncpg
import pytest

from support.servers import Postgres
from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_runtime.domain import Fill, OrderIntent, OrderType, Side
from tradebot_runtime.journal import (
    LATEST_VERSION,
    Fence,
    Journal,
    StaleEpochError,
    UnknownOrderError,
    migrate,
    schema_version,
)
from tradebot_runtime.orders import OrderRecord, OrderState

pytestmark = pytest.mark.integration


def _bot() -> str:
    return f"ns/bot-{uuid.uuid4().hex[:8]}"


def _record(ids: ClientOrderIds, fence: Fence, seq: int) -> OrderRecord:
    intent = OrderIntent("BTC/USDT", Side.BUY, OrderType.LIMIT, Decimal("0.01"), Decimal("100"))
    return OrderRecord(
        client_order_id=ids.build(fence.shard, fence.epoch, seq),
        intent=intent,
        shard=fence.shard,
        epoch=fence.epoch,
        seq=seq,
        created_ms=1,
    )


async def test_migrations_idempotent_and_concurrent(postgres: Postgres) -> None:
    name = f"mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres.dsn)
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    dsn = postgres.dsn.rsplit("/", 1)[0] + f"/{name}"
    conns = [await asyncpg.connect(dsn) for _ in range(4)]
    try:
        assert await schema_version(conns[0]) == 0
        results = await asyncio.gather(*(migrate(c) for c in conns))
        # exactly one caller applied each migration, the others found nothing to do
        applied = sorted(v for r in results for v in r)
        assert applied == list(range(1, LATEST_VERSION + 1))
        assert await migrate(conns[0]) == []
        assert await schema_version(conns[1]) == LATEST_VERSION
        tables = {
            r["tablename"]
            for r in await conns[0].fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname='public'"
            )
        }
        assert {"orders", "fills", "shard_epochs", "audit_events"} <= tables
    finally:
        for c in conns:
            await c.close()


async def test_intent_is_journaled_before_send_and_updates_follow(journal: Journal) -> None:
    bot = _bot()
    ids = ClientOrderIds("binance", bot, "acct")
    fence = Fence(bot, "acct", 0, 3)
    assert await journal.take_shard(fence, "pod-a") == 1
    seqs = await journal.allocate_seqs(fence, 10)
    assert seqs == range(1, 11)
    record = _record(ids, fence, seqs[0])
    await journal.insert_intent(fence, record)
    stored = await journal.get_order(record.client_order_id)
    assert stored is not None and stored.state is OrderState.INTENT
    assert stored.intent == record.intent

    record.mark_sending(5)
    await journal.update_order(fence, record)
    record.apply_exchange_update("open", Decimal("0.004"), 6, exchange_order_id="42")
    await journal.update_order(fence, record)
    working = await journal.load_orders(bot, "acct", 0)
    assert [(o.client_order_id, o.state, o.filled, o.exchange_order_id) for o in working] == [
        (record.client_order_id, OrderState.PARTIALLY_FILLED, Decimal("0.004"), "42")
    ]
    # the same client id can never be journaled twice
    with pytest.raises(asyncpg.UniqueViolationError):
        await journal.insert_intent(fence, _record(ids, fence, seqs[0]))


async def test_stale_epoch_is_refused_and_epoch_never_lowers(journal: Journal) -> None:
    bot = _bot()
    ids = ClientOrderIds("binance", bot, "acct")
    old = Fence(bot, "acct", 1, 1)
    new = Fence(bot, "acct", 1, 2)
    await journal.take_shard(old, "pod-a")
    old_seqs = await journal.allocate_seqs(old, 5)
    pending = _record(ids, old, old_seqs[0])
    await journal.insert_intent(old, pending)

    await journal.take_shard(new, "pod-b")
    with pytest.raises(StaleEpochError) as info:
        await journal.insert_intent(old, _record(ids, old, old_seqs[1]))
    assert info.value.current == 2
    pending.mark_sending(2)
    with pytest.raises(StaleEpochError):
        await journal.update_order(old, pending)
    with pytest.raises(StaleEpochError):
        await journal.allocate_seqs(old, 1)
    with pytest.raises(StaleEpochError):
        await journal.take_shard(old, "pod-a")  # never lowers
    assert await journal.current_epoch(new) == 2
    assert await journal.get_order(_record(ids, old, old_seqs[1]).client_order_id) is None

    # the new leader may resolve the old epoch's order; sequences keep growing
    pending.mark_unknown(3)
    await journal.update_order(new, pending)
    new_seqs = await journal.allocate_seqs(new, 5)
    assert new_seqs[0] > old_seqs[-1]
    with pytest.raises(UnknownOrderError):
        await journal.update_order(new, _record(ids, new, new_seqs[0]))


async def test_takeover_waits_for_inflight_fenced_write(journal: Journal) -> None:
    """A fenced write that holds the shard row blocks take_shard until it commits; once the
    new epoch is recorded, no write of the old epoch can land."""
    bot = _bot()
    ids = ClientOrderIds("binance", bot, "acct")
    old, new = Fence(bot, "acct", 0, 1), Fence(bot, "acct", 0, 2)
    await journal.take_shard(old, "a")
    seqs = await journal.allocate_seqs(old, 3)
    async with journal.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT 1 FROM shard_epochs WHERE bot=$1 AND account=$2 AND shard=$3 FOR SHARE",
            bot,
            "acct",
            0,
        )
        take = asyncio.create_task(journal.take_shard(new, "b"))
        await asyncio.sleep(0.2)
        assert not take.done()  # blocked by the in-flight fenced transaction
    await take
    with pytest.raises(StaleEpochError):
        await journal.insert_intent(old, _record(ids, old, seqs[0]))


async def test_fill_dedup(journal: Journal) -> None:
    bot = _bot()
    fence = Fence(bot, "acct-f", 0, 1)
    await journal.take_shard(fence, "pod")
    fill = Fill(
        trade_id=f"t-{uuid.uuid4().hex[:6]}",
        client_order_id="x",
        symbol="BTC/USDT",
        side=Side.BUY,
        price=Decimal("100.5"),
        amount=Decimal("0.01"),
        fee=Decimal("0.00001"),
        fee_currency="BTC",
        ts=10,
    )
    assert await journal.record_fill(fence, fill) is True
    assert await journal.record_fill(fence, fill) is False
    other_symbol = Fill(**{**_fill_dict(fill), "symbol": "ETH/USDT"})
    assert await journal.record_fill(fence, other_symbol) is True
    assert await journal.load_fills(bot, "acct-f", 0) == [fill, other_symbol]
    await journal.take_shard(Fence(bot, "acct-f", 0, 2), "pod-2")
    with pytest.raises(StaleEpochError):
        await journal.record_fill(fence, Fill(**{**_fill_dict(fill), "trade_id": "new"}))


async def test_both_sides_of_a_trade_between_our_orders_are_kept(journal: Journal) -> None:
    """Two bots whose accounts share a name (namespaces) or one account (two bots) can
    trade with each other: one exchange trade id, one fill per side. Neither is a
    duplicate of the other."""
    trade = f"t-{uuid.uuid4().hex[:6]}"
    sides = []
    for side, cid in ((Side.BUY, "buyer-order"), (Side.SELL, "seller-order")):
        bot = _bot()
        fence = Fence(bot, "binance", 0, 1)  # the same account name in two namespaces
        await journal.take_shard(fence, "pod")
        fill = Fill(
            trade_id=trade, client_order_id=f"{cid}-{trade}", symbol="BTC/USDT", side=side,
            price=Decimal("100"), amount=Decimal("0.01"), fee=Decimal(0), fee_currency="USDT",
            ts=10,
        )  # fmt: skip
        assert await journal.record_fill(fence, fill) is True
        assert await journal.record_fill(fence, fill) is False  # still deduplicated
        sides.append(await journal.load_fills(bot, "binance", 0))
    assert [s[0].side for s in sides] == [Side.BUY, Side.SELL]


async def test_audit_is_append_only(journal: Journal) -> None:
    bot = _bot()
    await journal.audit(bot, "acct", "order.sent", shard=0, epoch=1, data={"x": Decimal("1")})
    with pytest.raises(asyncpg.RaiseError):
        await journal.pool.execute("DELETE FROM audit_events WHERE bot = $1", bot)
    assert await journal.pool.fetchval("SELECT count(*) FROM audit_events WHERE bot=$1", bot) == 1


def _fill_dict(fill: Fill) -> dict[str, object]:
    return {name: getattr(fill, name) for name in Fill.__slots__}
