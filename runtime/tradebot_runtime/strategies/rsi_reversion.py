"""``rsi-reversion``: buy an oversold market, sell into an overbought one.

RSI (Wilder, ``period`` candles) below ``oversold`` and no long position -> market buy of
``orderSize`` quote. RSI above ``overbought`` and a long position -> market sell of the
whole position, reduce-only. Level-based but position-gated, so it does not pyramid;
nothing is emitted while an order with the same tag is still working.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from tradebot_contracts.strategies import RsiReversionParams
from tradebot_runtime.domain import Action, Bar
from tradebot_runtime.strategies.base import (
    BaseStrategy,
    StrategyContext,
    market_entry,
    market_exit,
)
from tradebot_runtime.strategies.indicators import RelativeStrengthIndex

TAG_ENTRY = "rsi:entry"
TAG_EXIT = "rsi:exit"


class RsiReversion(BaseStrategy):
    parameters: RsiReversionParams

    def __init__(self, parameters: RsiReversionParams, symbols: Sequence[str]) -> None:
        super().__init__(parameters, symbols)
        self._rsi: dict[str, RelativeStrengthIndex] = {}

    def _update(self, bar: Bar) -> None:
        rsi = self._rsi.get(bar.symbol)
        if rsi is None:
            rsi = self._rsi[bar.symbol] = RelativeStrengthIndex(self.parameters.period)
        rsi.update(bar.close)

    def rsi(self, symbol: str) -> Decimal | None:
        """Current RSI of ``symbol`` (None before enough candles), for logs and tests."""
        indicator = self._rsi.get(symbol)
        return None if indicator is None else indicator.value

    def warmup(self, bars: Sequence[Bar]) -> None:
        for bar in bars:
            self._update(bar)

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> list[Action]:
        self._update(bar)
        value = self._rsi[bar.symbol].value
        if value is None:
            return []
        position = ctx.position.amount
        params = self.parameters
        if value < params.oversold and position <= 0 and not ctx.orders_tagged(TAG_ENTRY):
            return market_entry(bar, params.order_size, TAG_ENTRY)
        if value > params.overbought and position > 0 and not ctx.orders_tagged(TAG_EXIT):
            return market_exit(bar, position, TAG_EXIT)
        return []
