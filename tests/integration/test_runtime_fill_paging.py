"""Issue 15, scenario 8: fills beyond the exchange's newest page of trades were lost.

The new leader synced fills with ``fetch_my_trades`` without ``since``: Binance returns
the newest 500 trades of the account, so one of our fills followed by more than 500 other
trades on the account (other bots sharing it, or simply a busy hour while the shard was
between leaders) was never booked: the position was wrong for good. Now fills are paged
forward from the newest trade synced (for a shard with no fill yet: from its first order)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import ccxt.async_support as ccxt_async
import pytest

from exchange_sim.config import Limits
from exchange_sim.testing import make_ccxt, running_simulator
from support.engine import SYMBOL, shard_engine
from tradebot_runtime.domain import OrderIntent, OrderType, Side
from tradebot_runtime.exchange.client import FILL_PAGE
from tradebot_runtime.journal import Journal
from tradebot_runtime.orders import OrderState

pytestmark = pytest.mark.integration

GENEROUS = Limits(orders_per_10s=1_000_000, weight_per_minute=100_000_000)
"""The other bot's burst is not what is tested: the simulator lets it through."""


async def test_a_fill_behind_more_than_a_page_of_other_trades_is_booked(journal: Journal) -> None:
    bot = f"ns/b-{uuid.uuid4().hex[:6]}"
    async with running_simulator(limits=GENEROUS) as sim:
        first = await shard_engine(sim, journal, bot, 1)
        try:
            record = await first.submit(
                OrderIntent(SYMBOL, Side.BUY, OrderType.MARKET, Decimal("0.001"), tag="t")
            )
        finally:
            await first.client.close()  # the leader dies before its poll books the fill
        assert record is not None and record.state is OrderState.FILLED

        other = make_ccxt(ccxt_async.binance, sim.url, sim.account())
        try:
            for i in range(FILL_PAGE + 20):  # another bot on the same account
                side = "buy" if i % 2 == 0 else "sell"
                await other.create_order(
                    SYMBOL, "market", side, 0.001, params={"newClientOrderId": f"other{i}"}
                )
        finally:
            await other.close()

        second = await shard_engine(sim, journal, bot, 2)  # start: reconcile, sync fills
        try:
            fills = await journal.load_fills(bot, "acct", 0)
            assert [f.client_order_id for f in fills] == [record.client_order_id]
            (fill,) = fills
            base_fee = fill.fee if fill.fee_currency == "BTC" else Decimal(0)  # paid in kind
            assert second.book.position(SYMBOL).amount == fill.amount - base_fee
            # the next sync starts past the other bot's trades, not from our old fill
            assert second.fill_cursor[SYMBOL] > fill.ts
        finally:
            await second.client.close()
