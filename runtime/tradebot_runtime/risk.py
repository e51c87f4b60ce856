"""The risk engine: every order intent passes here before it is journaled or sent.

Pure and synchronous (no I/O, no clock of its own): the caller passes the market and
account figures and the current time. The only state is the sliding window of accepted
orders for ``max_orders_per_minute``.

Every rejection names its rule (``RiskRule``, a bounded set: safe as a Prometheus label)
and carries a human message. Rules are checked in a fixed order, cheapest and most
fundamental first:

1. ``trading_halted``          tradingState Halted: nothing is placed.
2. ``reduce_only``             tradingState ReduceOnly: only orders that shrink |position|.
3. ``no_reference_price``      a limit needs a last price to check against, or a market
                               order needs one to value it.
4. ``price_band``              a limit price too far from the last price (fat finger).
5. ``max_order_notional``      amount x price above the per-order cap (a limit valued at
                                 the higher of its price and the last price).
6. ``max_position_notional``   the position, with every working order on the same side
                               filled, would exceed the cap (reducing orders always pass).
7. ``max_daily_loss``          today's PnL lost the limit: only reducing orders pass.
8. ``max_drawdown``            drawdown from the equity peak reached the limit: only
                               reducing orders pass.
9. ``max_orders_per_minute``   too many accepted orders in the last 60 s.

"Reducing" is judged against the worst case: the new order plus every working order on
the same side must not exceed the position, so a series of reduce orders cannot flip it.
Cancels are never risk-checked: they only ever lower exposure.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Protocol

from tradebot_contracts.runtime_config import RiskConfig
from tradebot_contracts.types import TradingState
from tradebot_runtime.domain import ZERO, OrderIntent, OrderType, Side

_HUNDRED: Final = Decimal(100)
_WINDOW_MS: Final = 60_000


class RiskRule(enum.StrEnum):
    """Name of the rule that rejected an order (metric label and log field)."""

    TRADING_HALTED = "trading_halted"
    REDUCE_ONLY = "reduce_only"
    NO_REFERENCE_PRICE = "no_reference_price"
    PRICE_BAND = "price_band"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    MAX_POSITION_NOTIONAL = "max_position_notional"
    MAX_DAILY_LOSS = "max_daily_loss"
    MAX_DRAWDOWN = "max_drawdown"
    MAX_ORDERS_PER_MINUTE = "max_orders_per_minute"

    @property
    def camel(self) -> str:
        """camelCase spelling, as the heartbeat's ``breaker`` field and the CRD use."""
        head, *rest = self.value.split("_")
        return head + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits in force; None means the limit is not set. Notionals are in quote currency."""

    max_order_notional: Decimal | None = None
    max_position_notional: Decimal | None = None
    price_band_pct: Decimal | None = None
    max_orders_per_minute: int | None = None
    max_daily_loss: Decimal | None = None
    """A positive amount: trading stops increasing risk once daily PnL <= -max_daily_loss."""
    max_drawdown_pct: Decimal | None = None

    @classmethod
    def from_config(cls, risk: RiskConfig) -> RiskLimits:
        """Limits from the runtime ConfigMap's ``risk`` block."""
        return cls(
            max_order_notional=risk.max_order_notional,
            max_position_notional=risk.max_position_notional,
            price_band_pct=risk.price_band_percent,
            max_orders_per_minute=risk.max_orders_per_minute,
            max_daily_loss=risk.max_daily_loss,
            max_drawdown_pct=risk.max_drawdown_percent,
        )


@dataclass(frozen=True, slots=True)
class RiskInputs:
    """What the engine needs to know about one symbol and the account, at check time.

    ``position`` is the signed base amount; ``open_buy``/``open_sell`` are the remaining
    (unfilled) base amounts of our working orders in the symbol. ``daily_pnl`` is
    realized + unrealized PnL since the start of the UTC day (negative is a loss);
    ``drawdown_pct`` is the drawdown from the equity peak, 0-100 (see positions.PnlTracker).
    """

    last_price: Decimal | None
    position: Decimal = ZERO
    open_buy: Decimal = ZERO
    open_sell: Decimal = ZERO
    daily_pnl: Decimal = ZERO
    drawdown_pct: Decimal = ZERO


class WorkingOrder(Protocol):
    """What the risk inputs read of a working order: an OpenOrder snapshot, or the
    engine's own OrderRecord (read directly on the hot path, no snapshot per order)."""

    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> Side: ...
    @property
    def remaining(self) -> Decimal: ...


def risk_inputs_for(
    symbol: str,
    position: Decimal,
    working_orders: Iterable[WorkingOrder],
    last_price: Decimal | None,
    *,
    daily_pnl: Decimal = ZERO,
    drawdown_pct: Decimal = ZERO,
) -> RiskInputs:
    """RiskInputs for ``symbol``: sums the unfilled remainder of our working orders (pass
    every working order, including INTENT/SENDING/UNKNOWN ones) per side."""
    open_buy = ZERO
    open_sell = ZERO
    for order in working_orders:
        if order.symbol != symbol:
            continue
        if order.side is Side.BUY:
            open_buy += order.remaining
        else:
            open_sell += order.remaining
    return RiskInputs(
        last_price=last_price,
        position=position,
        open_buy=open_buy,
        open_sell=open_sell,
        daily_pnl=daily_pnl,
        drawdown_pct=drawdown_pct,
    )


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """Outcome of one check: allowed, or the rule that rejected and why."""

    allowed: bool
    rule: RiskRule | None = None
    message: str = ""


ACCEPTED: Final = RiskDecision(allowed=True)

RejectHook = Callable[[RiskDecision, OrderIntent], None]
"""Called on every rejection, e.g. to count ``trading_risk_rejections_total{rule=...}``."""


def is_reducing(intent: OrderIntent, inputs: RiskInputs) -> bool:
    """True when the order, even together with every working order on its side, can only
    shrink |position| (never flip it)."""
    position = inputs.position
    if intent.side is Side.SELL:
        return position > 0 and intent.amount + inputs.open_sell <= position
    return position < 0 and intent.amount + inputs.open_buy <= -position


class RiskEngine:
    """Checks order intents against the limits and the trading state.

    ``update_limits`` and ``set_trading_state`` apply ConfigMap changes live. Accepted
    orders are counted in the per-minute window at check time (the caller is about to
    send them; counting an order that then fails is the conservative error).
    """

    def __init__(
        self,
        limits: RiskLimits,
        trading_state: TradingState = "Active",
        *,
        on_reject: RejectHook | None = None,
    ) -> None:
        self._limits = limits
        self._state: TradingState = trading_state
        self._on_reject = on_reject
        self._accepted_ts: deque[int] = deque()

    @property
    def limits(self) -> RiskLimits:
        return self._limits

    @property
    def trading_state(self) -> TradingState:
        return self._state

    def update_limits(self, limits: RiskLimits) -> None:
        self._limits = limits

    def set_trading_state(self, state: TradingState) -> None:
        self._state = state

    def orders_in_window(self, now_ms: int) -> int:
        """Accepted orders in the 60 s before ``now_ms``."""
        self._prune(now_ms)
        return len(self._accepted_ts)

    def check(self, intent: OrderIntent, inputs: RiskInputs, now_ms: int) -> RiskDecision:
        """Accept or reject ``intent``; an accepted order is counted in the rate window."""
        decision = self._evaluate(intent, inputs, now_ms)
        if decision.allowed:
            self._accepted_ts.append(now_ms)
            self._prune(now_ms)  # keeps the window bounded even with no rate limit set
        elif self._on_reject is not None:
            self._on_reject(decision, intent)
        return decision

    def _evaluate(self, intent: OrderIntent, inputs: RiskInputs, now_ms: int) -> RiskDecision:
        limits = self._limits
        state = self._state
        if state == "Halted":
            return RiskDecision(False, RiskRule.TRADING_HALTED, "trading is halted")
        reducing = is_reducing(intent, inputs)
        if state == "ReduceOnly" and not reducing:
            return RiskDecision(
                False,
                RiskRule.REDUCE_ONLY,
                f"reduce-only: {intent.side} {intent.amount} would not shrink position "
                f"{inputs.position} (working buy {inputs.open_buy}, sell {inputs.open_sell})",
            )

        last = inputs.last_price
        if intent.type is OrderType.LIMIT:
            price = intent.price
            assert price is not None  # OrderIntent guarantees a limit price
            band = limits.price_band_pct
            if band is not None:
                if last is None or last <= 0:
                    return RiskDecision(
                        False, RiskRule.NO_REFERENCE_PRICE, "no last price to check the band"
                    )
                deviation = abs(price - last) * _HUNDRED / last
                if deviation > band:
                    return RiskDecision(
                        False,
                        RiskRule.PRICE_BAND,
                        f"limit price {price} is {deviation:.4f}% from last price {last}; "
                        f"band {band}%",
                    )
        else:
            if last is None or last <= 0:
                if limits.max_order_notional is None and limits.max_position_notional is None:
                    price = ZERO  # nothing to value: no notional limit is set
                else:
                    return RiskDecision(
                        False, RiskRule.NO_REFERENCE_PRICE, "no last price to value the order"
                    )
            else:
                price = last

        max_order = limits.max_order_notional
        if max_order is not None:
            # A marketable limit fills at the market, not at its price: a sell far below
            # the last price is worth the last price (a buy never more than its limit).
            value = max(price, last) if last is not None and last > 0 else price
            notional = intent.amount * value
            if notional > max_order:
                return RiskDecision(
                    False,
                    RiskRule.MAX_ORDER_NOTIONAL,
                    f"order notional {notional} exceeds {max_order}",
                )

        max_position = limits.max_position_notional
        if max_position is not None and not reducing:
            if intent.side is Side.BUY:
                worst = inputs.position + inputs.open_buy + intent.amount
            else:
                worst = inputs.position - inputs.open_sell - intent.amount
            mark = last if last is not None and last > 0 else price
            worst_notional = abs(worst) * mark
            if worst_notional > max_position:
                return RiskDecision(
                    False,
                    RiskRule.MAX_POSITION_NOTIONAL,
                    f"position notional would reach {worst_notional} (limit {max_position})",
                )

        if not reducing:
            max_loss = limits.max_daily_loss
            if max_loss is not None and inputs.daily_pnl <= -max_loss:
                return RiskDecision(
                    False,
                    RiskRule.MAX_DAILY_LOSS,
                    f"daily PnL {inputs.daily_pnl} reached the loss limit {max_loss}; "
                    "only reducing orders",
                )
            max_dd = limits.max_drawdown_pct
            if max_dd is not None and inputs.drawdown_pct >= max_dd:
                return RiskDecision(
                    False,
                    RiskRule.MAX_DRAWDOWN,
                    f"drawdown {inputs.drawdown_pct}% reached the limit {max_dd}%; "
                    "only reducing orders",
                )

        max_rate = limits.max_orders_per_minute
        if max_rate is not None:
            self._prune(now_ms)
            if len(self._accepted_ts) >= max_rate:
                return RiskDecision(
                    False,
                    RiskRule.MAX_ORDERS_PER_MINUTE,
                    f"{len(self._accepted_ts)} orders in the last minute (limit {max_rate})",
                )
        return ACCEPTED

    def _prune(self, now_ms: int) -> None:
        window = self._accepted_ts
        horizon = now_ms - _WINDOW_MS
        while window and window[0] <= horizon:
            window.popleft()
