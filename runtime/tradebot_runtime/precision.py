"""Fit an order intent to the market's steps and minimums before risk and the journal,
and the precision money figures are published with.

The amount journaled must be exactly the amount sent, so rounding happens here, once,
between the strategy and the risk engine. Amounts round down (never more than the
strategy asked for); limit prices round away from the market (a buy down, a sell up), so
rounding never makes an order more aggressive than intended.

What people read (the heartbeat's PnL and notional) is quantized to the quote currency's
precision (``MoneyPrecision``, from the loaded ccxt markets) and labelled with the
currency; the figures the engine and the risk checks compute with stay unrounded.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal
from typing import Any, Final

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


# -- money figures ------------------------------------------------------------------------

DEFAULT_MONEY_PLACES: Final = 8
"""Decimal places of a money figure when the exchange tells nothing about the currency."""
_MONEY_CONTEXT: Final = Context(prec=100)
"""Quantizing a large figure to many places must not trap at Decimal's default 28 digits."""


def precision_places(precision: Any, *, tick_size_mode: bool) -> int | None:
    """Decimal places of a ccxt precision value: a step in TICK_SIZE mode (``0.01`` -> 2,
    ``1`` or ``1000`` -> 0), else a count of places (``2`` -> 2); None when absent or not
    usable."""
    if precision is None or isinstance(precision, bool):
        return None
    try:
        number = to_decimal(precision)
    except (TypeError, ValueError, ArithmeticError):
        return None
    if tick_size_mode:
        if number <= 0:
            return None
        exponent = number.normalize().as_tuple().exponent
        return max(0, -exponent) if isinstance(exponent, int) else None
    if number != number.to_integral_value():
        return None
    return max(0, int(number))


@dataclass(frozen=True, slots=True)
class MoneyPrecision:
    """How the money figures of one currency are published: quantized to ``places``
    decimals (half-even), written with exactly that many (``12.50``), never ``-0``."""

    currency: str | None
    places: int = DEFAULT_MONEY_PLACES
    source: str = field(default="fallback", compare=False)
    """Where ``places`` came from: currency, market or fallback (for the start-up log)."""

    def quantize(self, value: Decimal) -> Decimal:
        """``value`` at ``places`` decimals; one beyond 100 digits (absurd, wrong upstream)
        is returned as is, and the heartbeat encoder clamps it (never an exception here)."""
        try:
            result = value.quantize(
                Decimal(1).scaleb(-self.places), ROUND_HALF_EVEN, _MONEY_CONTEXT
            )
        except ArithmeticError:
            return value
        return result.copy_abs() if result == 0 else result


def money_precision(
    currency: str,
    *,
    currencies: Mapping[str, Any] | None,
    markets: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None,
    tick_size_mode: bool,
) -> MoneyPrecision:
    """The precision of ``currency`` from ccxt's loaded data: the currency's own
    ``precision``; else the finest ``precision.quote`` (then ``precision.price``) of the
    markets quoted in it; else DEFAULT_MONEY_PLACES."""
    entry = (currencies or {}).get(currency) or {}
    places = precision_places(entry.get("precision"), tick_size_mode=tick_size_mode)
    if places is not None:
        return MoneyPrecision(currency, places, "currency")
    values = list(markets.values() if isinstance(markets, Mapping) else (markets or ()))
    found: list[int] = []
    for key in ("quote", "price"):
        for market in values:
            if market.get("quote") != currency:
                continue
            number = precision_places(
                (market.get("precision") or {}).get(key), tick_size_mode=tick_size_mode
            )
            if number is not None:
                found.append(number)
        if found:
            return MoneyPrecision(currency, max(found), "market")
    return MoneyPrecision(currency, DEFAULT_MONEY_PLACES, "fallback")
