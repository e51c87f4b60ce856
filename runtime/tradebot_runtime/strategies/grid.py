"""``grid``: resting limit orders on evenly spaced levels between ``lower`` and ``upper``.

Level ``i`` is at ``lower + i x (upper - lower) / (levels - 1)``. The level nearest to the
current price is the gap and gets no order; every level below gets a buy, every level
above a sell, each worth ``orderSize`` quote. That is the classic grid: when a buy at
level k fills, the price sits at k, so k becomes the gap and the sell at k+1 is the
order that takes the profit; when that fills, the buy at k is re-armed.

The grid is recomputed from the context (open orders tagged ``grid:<level>:<side>``), so
it survives restarts without memory of its own:

* an existing order on a level is kept (one order per level, never both sides);
* missing buys are placed nearest-first while the free quote balance covers them (when
  the balance is known);
* missing sells are placed nearest-first while the long position not already committed
  to grid sells covers them (spot grids only sell what they bought);
* grid orders that do not match a level (unknown level, a price more than half a step
  away after a parameter change, duplicates) are cancelled; prices are compared with
  that tolerance because the journaled price was rounded to the exchange's tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from tradebot_contracts.strategies import GridParams
from tradebot_runtime.domain import (
    ZERO,
    Action,
    Bar,
    CancelIntent,
    Fill,
    OpenOrder,
    OrderIntent,
    OrderType,
    Side,
    split_symbol,
)
from tradebot_runtime.strategies.base import BaseStrategy, StrategyContext

TAG_PREFIX = "grid:"


def level_tag(index: int, side: Side) -> str:
    return f"{TAG_PREFIX}{index}:{side.value}"


def parse_level_tag(tag: str) -> tuple[int, Side] | None:
    """(level, side) of a grid tag, None if the tag is not a well-formed grid tag."""
    if not tag.startswith(TAG_PREFIX):
        return None
    index_text, _, side_text = tag[len(TAG_PREFIX) :].partition(":")
    if not index_text.isdigit() or side_text not in (Side.BUY.value, Side.SELL.value):
        return None
    return int(index_text), Side(side_text)


class Grid(BaseStrategy):
    parameters: GridParams
    uses_balances = True  # buys only what the quote balance pays for

    def __init__(self, parameters: GridParams, symbols: Sequence[str]) -> None:
        super().__init__(parameters, symbols)
        p = parameters
        step = (p.upper - p.lower) / (p.levels - 1)
        self.level_prices: tuple[Decimal, ...] = tuple(
            p.upper if i == p.levels - 1 else p.lower + step * i for i in range(p.levels)
        )
        self._tolerance = step / 2

    def gap_index(self, price: Decimal) -> int:
        """The level nearest to ``price`` (the lower one on a tie)."""
        return min(
            range(len(self.level_prices)),
            key=lambda i: (abs(self.level_prices[i] - price), i),
        )

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> list[Action]:
        return self.rebalance(bar.close, ctx)

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> list[Action]:
        # re-arm at once instead of waiting for the next candle
        return self.rebalance(ctx.last_price or fill.price, ctx)

    def rebalance(self, price: Decimal, ctx: StrategyContext) -> list[Action]:
        """Actions that bring the symbol's grid orders to the desired set at ``price``."""
        actions: list[Action] = []
        by_level: dict[int, OpenOrder] = {}
        for order in ctx.orders_tagged(TAG_PREFIX):
            parsed = parse_level_tag(order.tag)
            valid = (
                parsed is not None
                and parsed[0] < len(self.level_prices)
                and parsed[1] is order.side
                and order.price is not None
                # tolerant: the journaled price was rounded to the exchange's tick
                and abs(order.price - self.level_prices[parsed[0]]) < self._tolerance
                and parsed[0] not in by_level
            )
            if parsed is None or not valid:
                actions.append(CancelIntent(order.client_order_id, ctx.symbol, "grid: stale level"))
                continue
            by_level[parsed[0]] = order

        gap = self.gap_index(price)
        order_size = self.parameters.order_size
        _, quote = split_symbol(ctx.symbol)
        cash = ctx.balances.get(quote)
        for index in range(gap - 1, -1, -1):
            if index in by_level:
                continue
            if cash is not None:
                if cash < order_size:
                    break
                cash -= order_size
            level = self.level_prices[index]
            actions.append(
                OrderIntent(
                    ctx.symbol,
                    Side.BUY,
                    OrderType.LIMIT,
                    order_size / level,
                    price=level,
                    tag=level_tag(index, Side.BUY),
                )
            )

        committed = sum(
            (order.remaining for order in by_level.values() if order.side is Side.SELL), ZERO
        )
        inventory = ctx.position.amount - committed
        for index in range(gap + 1, len(self.level_prices)):
            if index in by_level:
                continue
            level = self.level_prices[index]
            amount = order_size / level
            if inventory < amount:
                break
            inventory -= amount
            actions.append(
                OrderIntent(
                    ctx.symbol,
                    Side.SELL,
                    OrderType.LIMIT,
                    amount,
                    price=level,
                    tag=level_tag(index, Side.SELL),
                )
            )
        return actions
