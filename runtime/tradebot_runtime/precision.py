"""Fit an order intent to the market's steps and minimums before risk and the journal.

The amount journaled must be exactly the amount sent, so rounding happens here, once,
between the strategy and the risk engine. Amounts round down (never more than the
strategy asked for); limit prices round away from the market (a buy down, a sell up), so
rounding never makes an order more aggressive than intended.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from tradebot_runtime.domain import OrderIntent, OrderType, Side, to_decimal


@dataclass(frozen=True, slots=True)
class MarketRules:
    """Steps and minimums of one market (None: no constraint)."""

    amount_step: Decimal | None = None
    price_tick: Decimal | None = None
    min_amount: Decimal | None = None
    min_notional: Decimal | None = None

    @classmethod
    def from_ccxt_market(cls, market: Mapping[str, Any], *, tick_size_mode: bool) -> MarketRules:
        """From a ccxt market dict. ``tick_size_mode`` is ``exchange.precisionMode ==
        ccxt.TICK_SIZE`` (precision is a step such as 0.001); otherwise precision counts
        decimal places (3 -> 0.001)."""
        precision = market.get("precision") or {}
        limits = market.get("limits") or {}

        def step(value: Any) -> Decimal | None:
            if value is None:
                return None
            number = to_decimal(value)
            return number if tick_size_mode else Decimal(1).scaleb(-int(number))

        def limit(section: str) -> Decimal | None:
            value = (limits.get(section) or {}).get("min")
            return None if value is None else to_decimal(value)

        return cls(
            amount_step=step(precision.get("amount")),
            price_tick=step(precision.get("price")),
            min_amount=limit("amount"),
            min_notional=limit("cost"),
        )


class ConformProblem(enum.StrEnum):
    AMOUNT_BELOW_MINIMUM = "amount_below_minimum"
    NOTIONAL_BELOW_MINIMUM = "notional_below_minimum"
    NO_REFERENCE_PRICE = "no_reference_price"
    PRICE_BELOW_TICK = "price_below_tick"


@dataclass(frozen=True, slots=True)
class ConformResult:
    intent: OrderIntent | None
    problem: ConformProblem | None = None


def round_to_step(value: Decimal, step: Decimal, *, up: bool) -> Decimal:
    """``value`` rounded to a multiple of ``step`` (down unless ``up``)."""
    units = (value / step).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return units * step


def conform_intent(
    intent: OrderIntent, rules: MarketRules, last_price: Decimal | None
) -> ConformResult:
    """The intent rounded to the market, or the reason it cannot be placed."""
    amount = intent.amount
    if rules.amount_step is not None:
        amount = round_to_step(amount, rules.amount_step, up=False)
    price = intent.price
    if price is not None and rules.price_tick is not None:
        price = round_to_step(price, rules.price_tick, up=intent.side is Side.SELL)
    if amount <= 0 or (rules.min_amount is not None and amount < rules.min_amount):
        return ConformResult(None, ConformProblem.AMOUNT_BELOW_MINIMUM)
    if rules.min_notional is not None:
        reference = price if intent.type is OrderType.LIMIT else last_price
        if reference is None:
            return ConformResult(None, ConformProblem.NO_REFERENCE_PRICE)
        if amount * reference < rules.min_notional:
            return ConformResult(None, ConformProblem.NOTIONAL_BELOW_MINIMUM)
    if price is not None and price <= 0:
        return ConformResult(None, ConformProblem.PRICE_BELOW_TICK)
    return ConformResult(replace(intent, amount=amount, price=price))
