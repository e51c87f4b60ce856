"""``sma-crossover``: long when the fast SMA crosses above the slow one, flat on the way
back down.

Golden cross (fast moves from below to above slow) and no long position -> market buy of
``orderSize`` quote. Death cross (fast moves from above to below) and a long position ->
market sell of the whole position, reduce-only. Equal averages keep the previous side, so
touching does not count as crossing. Nothing is emitted while an order with the same tag
is still working (it may be in flight).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from tradebot_contracts.strategies import SmaCrossoverParams
from tradebot_runtime.domain import Action, Bar, Side
from tradebot_runtime.strategies.base import (
    BaseStrategy,
    StrategyContext,
    market_entry,
    market_exit,
)
from tradebot_runtime.strategies.indicators import SimpleMovingAverage

TAG_ENTRY = "sma:entry"
TAG_EXIT = "sma:exit"
DUST_FRACTION = Decimal("0.1")
"""A long position worth less than this fraction of orderSize counts as flat."""


@dataclass(slots=True)
class _SymbolState:
    fast: SimpleMovingAverage
    slow: SimpleMovingAverage
    above: bool | None = None
    """Whether fast was above slow at the last decisive bar; None before the first."""


class SmaCrossover(BaseStrategy):
    parameters: SmaCrossoverParams

    def __init__(self, parameters: SmaCrossoverParams, symbols: Sequence[str]) -> None:
        super().__init__(parameters, symbols)
        self._state: dict[str, _SymbolState] = {}

    def _symbol_state(self, symbol: str) -> _SymbolState:
        state = self._state.get(symbol)
        if state is None:
            state = _SymbolState(
                fast=SimpleMovingAverage(self.parameters.fast_period),
                slow=SimpleMovingAverage(self.parameters.slow_period),
            )
            self._state[symbol] = state
        return state

    def _cross(self, bar: Bar) -> Side | None:
        """Update the averages with ``bar``; the side of a cross that just happened."""
        state = self._symbol_state(bar.symbol)
        fast = state.fast.update(bar.close)
        slow = state.slow.update(bar.close)
        if fast is None or slow is None or fast == slow:
            return None
        above = fast > slow
        previous, state.above = state.above, above
        if previous is None or previous == above:
            return None
        return Side.BUY if above else Side.SELL

    def warmup(self, bars: Sequence[Bar]) -> None:
        for bar in bars:
            self._cross(bar)

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> list[Action]:
        cross = self._cross(bar)
        position = ctx.position.amount
        # dust (e.g. a base-currency fee residue below the lot step) is not a position:
        # it can neither be sold nor may it block the next entry
        long = position * bar.close >= self.parameters.order_size * DUST_FRACTION
        if cross is Side.BUY and not long and not ctx.orders_tagged(TAG_ENTRY):
            return market_entry(bar, self.parameters.order_size, TAG_ENTRY)
        if cross is Side.SELL and long and not ctx.orders_tagged(TAG_EXIT):
            return market_exit(bar, position, TAG_EXIT)
        return []
