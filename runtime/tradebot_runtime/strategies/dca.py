"""``dca``: buy ``amount`` quote at market every ``interval``, at most ``maxOrders`` times.

The schedule and the count come from the journal (``ctx.tag_stats['dca']``: orders of
this symbol tagged ``dca`` that reached the market), not from memory: a restarted or
failed-over pod neither repeats a buy nor exceeds ``maxOrders``. A buy is due on the first
candle, then on the first candle closing at least ``interval`` after the previous buy.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradebot_contracts.strategies import DcaParams
from tradebot_runtime.domain import Action, Bar, OrderIntent, OrderType, Side
from tradebot_runtime.strategies.base import BaseStrategy, StrategyContext

TAG = "dca"


class Dca(BaseStrategy):
    parameters: DcaParams

    def __init__(self, parameters: DcaParams, symbols: Sequence[str]) -> None:
        super().__init__(parameters, symbols)
        self.interval_ms = parameters.interval_seconds * 1000

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> list[Action]:
        params = self.parameters
        stats = ctx.tag_stats.get(TAG)
        if stats is not None:
            if params.max_orders is not None and stats.count >= params.max_orders:
                return []
            if ctx.now_ms - stats.last_ts < self.interval_ms:
                return []
        if ctx.orders_tagged(TAG):
            return []  # the previous buy is still working
        amount = params.amount / bar.close
        return [OrderIntent(bar.symbol, Side.BUY, OrderType.MARKET, amount, tag=TAG)]
