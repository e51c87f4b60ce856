"""Rounding intents to the market's steps and minimums."""

from __future__ import annotations

from decimal import Decimal

import ccxt
from hypothesis import given
from hypothesis import strategies as st

from tradebot_runtime.domain import OrderIntent, OrderType, Side
from tradebot_runtime.precision import (
    ConformProblem,
    MarketRules,
    conform_intent,
    round_to_step,
)

D = Decimal
RULES = MarketRules(
    amount_step=D("0.001"), price_tick=D("0.01"), min_amount=D("0.001"), min_notional=D(5)
)


def limit(side: Side, amount: str, price: str) -> OrderIntent:
    return OrderIntent("BTC/USDT", side, OrderType.LIMIT, D(amount), price=D(price))


def test_amount_rounds_down_and_price_away_from_the_market() -> None:
    buy = conform_intent(limit(Side.BUY, "0.12345", "100.129"), RULES, None).intent
    assert buy is not None and buy.amount == D("0.123") and buy.price == D("100.12")
    sell = conform_intent(limit(Side.SELL, "0.12345", "100.121"), RULES, None).intent
    assert sell is not None and sell.price == D("100.13")


def test_minimums() -> None:
    tiny = conform_intent(limit(Side.BUY, "0.0009", "100"), RULES, None)
    assert tiny.intent is None and tiny.problem is ConformProblem.AMOUNT_BELOW_MINIMUM
    small = conform_intent(limit(Side.BUY, "0.04", "100"), RULES, None)
    assert small.problem is ConformProblem.NOTIONAL_BELOW_MINIMUM
    market = OrderIntent("BTC/USDT", Side.BUY, OrderType.MARKET, D("0.1"))
    assert conform_intent(market, RULES, None).problem is ConformProblem.NO_REFERENCE_PRICE
    assert conform_intent(market, RULES, D(100)).intent == market
    dust_price = conform_intent(
        limit(Side.BUY, "1000", "0.001"), MarketRules(price_tick=D("0.01")), None
    )
    assert dust_price.problem is ConformProblem.PRICE_BELOW_TICK


def test_rules_from_ccxt_market() -> None:
    market = {
        "precision": {"amount": 1e-05, "price": 0.01},
        "limits": {"amount": {"min": 1e-05}, "cost": {"min": 5.0}},
    }
    rules = MarketRules.from_ccxt_market(market, tick_size_mode=True)
    assert rules == MarketRules(D("0.00001"), D("0.01"), D("0.00001"), D(5))
    places = MarketRules.from_ccxt_market({"precision": {"amount": 3}}, tick_size_mode=False)
    assert places.amount_step == D("0.001") and places.min_notional is None
    assert ccxt.binance().precisionMode == ccxt.TICK_SIZE


@given(
    st.decimals(min_value=D("0.001"), max_value=D(1000), places=6),
    st.sampled_from([D("0.001"), D("0.01"), D("0.5"), D(1)]),
)
def test_round_to_step_properties(value: Decimal, step: Decimal) -> None:
    down = round_to_step(value, step, up=False)
    up = round_to_step(value, step, up=True)
    assert down <= value <= up
    assert up - down in (0, step)
    assert (down / step) == (down / step).to_integral_value()
