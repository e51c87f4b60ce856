"""The account's rate budget in ccxt units from its rateLimit (``budget_units_per_minute``):
``weightPerMinute`` (exchange weight) is applied, not only ``requestsPerMinute``."""

from __future__ import annotations

from decimal import Decimal

from tradebot_runtime.ratelimit_cost import budget_units_per_minute, request_cost


def test_binance_weight_converts_with_ccxts_own_cost_scale() -> None:
    # ccxt charges Binance's myTrades (weight 20) 4 units: 5 weight per unit
    assert request_cost("binance", "fetch_my_trades", {"symbol": "BTC/USDT"}) == Decimal(4)
    assert budget_units_per_minute("binance", None, 3000) == 600
    assert budget_units_per_minute("binance", None, 6000) == 1200  # ccxt's default budget


def test_the_tighter_of_both_limits_wins() -> None:
    assert budget_units_per_minute("binance", 300, 3000) == 300
    assert budget_units_per_minute("binance", 900, 3000) == 600
    assert budget_units_per_minute("binance", 300, None) == 300


def test_unset_or_unknown_weight_scale_keeps_ccxts_budget() -> None:
    assert budget_units_per_minute("binance", None, None) is None
    assert budget_units_per_minute("kraken", None, 3000) is None  # no known weight scale
    assert budget_units_per_minute("kraken", 120, 3000) == 120
    assert budget_units_per_minute("binance", None, 3) == 1  # never a zero budget
