"""A ShardEngine of one bot on the simulator's first account, with a strategy that never
acts (the tests submit intents themselves); shared by the runtime integration tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async

from exchange_sim.testing import RunningSimulator
from tradebot_contracts.endpoint import endpoint_overrides
from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_runtime.domain import Action, Bar
from tradebot_runtime.engine import ShardEngine
from tradebot_runtime.exchange.client import ExchangeClient
from tradebot_runtime.journal import Fence, Journal
from tradebot_runtime.positions import PnlTracker
from tradebot_runtime.risk import RiskEngine, RiskLimits
from tradebot_runtime.strategies.base import BaseStrategy, Strategy, StrategyContext

SYMBOL = "BTC/USDT"


class Idle(BaseStrategy):
    """A strategy that never acts (the tests submit intents themselves)."""

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> list[Action]:
        return []


async def shard_engine(
    sim: RunningSimulator,
    journal: Journal,
    bot: str,
    epoch: int,
    strategy: Strategy | None = None,
    **ccxt_extra: Any,
) -> ShardEngine:
    account = sim.account()
    config = endpoint_overrides("binance", sim.url)
    options = {**config.get("options", {}), **ccxt_extra.pop("options", {})}
    config.update(apiKey=account.api_key, secret=account.secret, options=options, **ccxt_extra)
    exchange = ccxt_async.binance(config)
    client = ExchangeClient(exchange, ClientOrderIds("binance", bot, "acct"))
    await client.load_markets()
    engine = ShardEngine(
        journal=journal,
        client=client,
        strategy=strategy or Idle(None, [SYMBOL]),
        risk=RiskEngine(RiskLimits(max_order_notional=Decimal(100000))),
        fence=Fence(bot, "acct", 0, epoch),
        symbols=[SYMBOL],
        is_leader=lambda: True,
        pnl=PnlTracker(Decimal(10000)),
    )
    try:
        await engine.start(f"pod-{epoch}")
        last = await client.fetch_last_price(SYMBOL)
    except BaseException:
        await client.close()
        raise
    assert last is not None
    engine.last_price[SYMBOL] = last
    return engine
