"""Issue 15 ("also wrong"): a bot deleted and created again under the same name never
started. Its new Leases count epochs from the beginning, below the epoch the old bot left
in ``shard_epochs``, so every take was refused as stale. The fence is now (generation,
epoch), the generation being the bot's creation time; sequence numbers carry on, so no
client order id is issued twice, and the old incarnation stays fenced out."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from tradebot_runtime.domain import OrderIntent, OrderType, Side
from tradebot_runtime.journal import Fence, Journal, StaleEpochError
from tradebot_runtime.orders import OrderRecord

pytestmark = pytest.mark.integration


def _order(fence: Fence, seq: int) -> OrderRecord:
    intent = OrderIntent("BTC/USDT", Side.BUY, OrderType.LIMIT, Decimal("0.001"), Decimal(1))
    return OrderRecord(
        client_order_id=f"c{uuid.uuid4().hex[:12]}", intent=intent, shard=fence.shard,
        epoch=fence.epoch, seq=seq, created_ms=1,
    )  # fmt: skip


async def test_a_bot_created_again_under_the_same_name_takes_its_shards(journal: Journal) -> None:
    bot = f"ns/again-{uuid.uuid4().hex[:6]}"
    old = Fence(bot, "acct", 0, 7, generation=1_700_000_000_000)
    await journal.take_shard(old, "old-pod")
    old_seqs = await journal.allocate_seqs(old, 10)

    new = Fence(bot, "acct", 0, 1, generation=1_800_000_000_000)  # Leases start again
    await journal.take_shard(new, "new-pod")
    new_seqs = await journal.allocate_seqs(new, 10)
    assert new_seqs.start >= old_seqs.stop  # no (epoch, seq) pair, no client id, twice
    await journal.insert_intent(new, _order(new, new_seqs.start))

    # the old incarnation is fenced out, whatever its epoch
    with pytest.raises(StaleEpochError):
        await journal.allocate_seqs(old, 1)
    with pytest.raises(StaleEpochError):
        await journal.insert_intent(old, _order(old, old_seqs.start))
    with pytest.raises(StaleEpochError):
        await journal.take_shard(Fence(bot, "acct", 0, 99, generation=old.generation), "zombie")
    # and within a generation epochs still never go back
    with pytest.raises(StaleEpochError):
        await journal.take_shard(Fence(bot, "acct", 0, 0, generation=new.generation), "late")
