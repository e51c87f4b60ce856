"""Risk engine: each rule, its name, live updates, and properties that must always hold."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradebot_contracts.runtime_config import RiskConfig
from tradebot_contracts.types import TradingState
from tradebot_runtime.domain import OpenOrder, OrderIntent, OrderType, Side
from tradebot_runtime.orders import OrderRecord
from tradebot_runtime.risk import (
    RiskDecision,
    RiskEngine,
    RiskInputs,
    RiskLimits,
    RiskRule,
    is_reducing,
    risk_inputs_for,
)

D = Decimal
NOW = 1_700_000_000_000


def market(side: Side, amount: str) -> OrderIntent:
    return OrderIntent("BTC/USDT", side, OrderType.MARKET, D(amount))


def limit(side: Side, amount: str, price: str) -> OrderIntent:
    return OrderIntent("BTC/USDT", side, OrderType.LIMIT, D(amount), price=D(price))


def inputs(position: str = "0", last: str | None = "100", **kw: str) -> RiskInputs:
    return RiskInputs(
        last_price=None if last is None else D(last),
        position=D(position),
        **{k: D(v) for k, v in kw.items()},
    )


def test_unset_limits_accept_everything_active() -> None:
    engine = RiskEngine(RiskLimits())
    decision = engine.check(market(Side.BUY, "1000"), inputs(last=None), NOW)
    assert decision.allowed and decision.rule is None


def test_halted_rejects_even_reducing_orders() -> None:
    engine = RiskEngine(RiskLimits(), "Halted")
    decision = engine.check(market(Side.SELL, "1"), inputs(position="5"), NOW)
    assert decision == RiskDecision(False, RiskRule.TRADING_HALTED, "trading is halted")


def test_reduce_only_allows_reducing_and_rejects_increasing_and_flipping() -> None:
    engine = RiskEngine(RiskLimits(), "ReduceOnly")
    assert engine.check(market(Side.SELL, "2"), inputs(position="5"), NOW).allowed
    assert engine.check(market(Side.SELL, "5"), inputs(position="5"), NOW).allowed
    flip = engine.check(market(Side.SELL, "6"), inputs(position="5"), NOW)
    assert flip.rule is RiskRule.REDUCE_ONLY
    grow = engine.check(market(Side.BUY, "1"), inputs(position="5"), NOW)
    assert grow.rule is RiskRule.REDUCE_ONLY
    assert engine.check(market(Side.BUY, "1"), inputs(position="-3"), NOW).allowed
    assert engine.check(market(Side.SELL, "1"), inputs(position="0"), NOW).rule is (
        RiskRule.REDUCE_ONLY
    )


def test_reduce_only_counts_working_orders_on_the_same_side() -> None:
    engine = RiskEngine(RiskLimits(), "ReduceOnly")
    decision = engine.check(market(Side.SELL, "3"), inputs(position="5", open_sell="3"), NOW)
    assert decision.rule is RiskRule.REDUCE_ONLY


def test_price_band() -> None:
    engine = RiskEngine(RiskLimits(price_band_pct=D(5)))
    assert engine.check(limit(Side.BUY, "1", "95"), inputs(), NOW).allowed
    assert engine.check(limit(Side.SELL, "1", "105"), inputs(), NOW).allowed
    far = engine.check(limit(Side.BUY, "1", "94.99"), inputs(), NOW)
    assert far.rule is RiskRule.PRICE_BAND and "band 5%" in far.message
    no_ref = engine.check(limit(Side.BUY, "1", "95"), inputs(last=None), NOW)
    assert no_ref.rule is RiskRule.NO_REFERENCE_PRICE


def test_max_order_notional_uses_limit_price_or_last_price() -> None:
    engine = RiskEngine(RiskLimits(max_order_notional=D(1000)))
    assert engine.check(limit(Side.BUY, "10", "100"), inputs(), NOW).allowed
    over = engine.check(limit(Side.BUY, "10", "100.01"), inputs(), NOW)
    assert over.rule is RiskRule.MAX_ORDER_NOTIONAL
    assert over.message == "order notional 1000.10 exceeds 1000"
    assert engine.check(market(Side.BUY, "10"), inputs(last="100"), NOW).allowed
    assert engine.check(market(Side.BUY, "10"), inputs(last="101"), NOW).rule is (
        RiskRule.MAX_ORDER_NOTIONAL
    )
    assert engine.check(market(Side.BUY, "1"), inputs(last=None), NOW).rule is (
        RiskRule.NO_REFERENCE_PRICE
    )


def test_a_sell_limit_far_below_the_market_is_valued_at_the_market() -> None:
    """Issue 15: the cap was checked at the limit price, so a marketable sell limit far
    below the last price passed it and filled at the market (its real notional)."""
    engine = RiskEngine(RiskLimits(max_order_notional=D(1000)))
    far_through = engine.check(limit(Side.SELL, "10", "50"), inputs(last="101"), NOW)
    assert far_through.rule is RiskRule.MAX_ORDER_NOTIONAL
    assert far_through.message == "order notional 1010 exceeds 1000"
    assert engine.check(limit(Side.SELL, "10", "99"), inputs(last="100"), NOW).allowed
    # a buy fills at its limit or better: the limit is its worst case
    assert engine.check(limit(Side.BUY, "10", "100"), inputs(last="90"), NOW).allowed


def test_max_position_notional_counts_working_orders_and_lets_reductions_pass() -> None:
    engine = RiskEngine(RiskLimits(max_position_notional=D(1000)))
    assert engine.check(market(Side.BUY, "5"), inputs(position="5"), NOW).allowed
    over = engine.check(market(Side.BUY, "3"), inputs(position="5", open_buy="3"), NOW)
    assert over.rule is RiskRule.MAX_POSITION_NOTIONAL
    # already over the cap (e.g. after a price jump): reducing is still allowed
    assert engine.check(market(Side.SELL, "5"), inputs(position="20"), NOW).allowed
    short = engine.check(market(Side.SELL, "11"), inputs(position="0"), NOW)
    assert short.rule is RiskRule.MAX_POSITION_NOTIONAL


def test_daily_loss_blocks_new_risk_but_allows_reducing() -> None:
    engine = RiskEngine(RiskLimits(max_daily_loss=D(100)))
    assert engine.check(market(Side.BUY, "1"), inputs(daily_pnl="-99.99"), NOW).allowed
    hit = engine.check(market(Side.BUY, "1"), inputs(daily_pnl="-100"), NOW)
    assert hit.rule is RiskRule.MAX_DAILY_LOSS
    assert engine.check(market(Side.SELL, "1"), inputs(position="2", daily_pnl="-500"), NOW).allowed


def test_drawdown_blocks_new_risk_but_allows_reducing() -> None:
    engine = RiskEngine(RiskLimits(max_drawdown_pct=D(10)))
    assert engine.check(market(Side.BUY, "1"), inputs(drawdown_pct="9.9"), NOW).allowed
    hit = engine.check(market(Side.BUY, "1"), inputs(drawdown_pct="10"), NOW)
    assert hit.rule is RiskRule.MAX_DRAWDOWN
    assert engine.check(
        market(Side.SELL, "1"), inputs(position="1", drawdown_pct="50"), NOW
    ).allowed


def test_orders_per_minute_sliding_window() -> None:
    engine = RiskEngine(RiskLimits(max_orders_per_minute=3))
    for i in range(3):
        assert engine.check(market(Side.BUY, "1"), inputs(), NOW + i * 1000).allowed
    blocked = engine.check(market(Side.BUY, "1"), inputs(), NOW + 30_000)
    assert blocked.rule is RiskRule.MAX_ORDERS_PER_MINUTE
    # the rejection did not consume a slot; the first order leaves the window at +60 s
    assert engine.check(market(Side.BUY, "1"), inputs(), NOW + 60_000).allowed
    assert engine.orders_in_window(NOW + 60_000) == 3


def test_rejections_by_other_rules_do_not_consume_rate_slots() -> None:
    engine = RiskEngine(RiskLimits(max_orders_per_minute=1, max_order_notional=D(10)))
    assert not engine.check(market(Side.BUY, "1"), inputs(), NOW).allowed
    assert engine.check(market(Side.BUY, "0.1"), inputs(), NOW).allowed


def test_reject_hook_receives_rule_and_intent() -> None:
    seen: list[tuple[str, str]] = []
    engine = RiskEngine(
        RiskLimits(max_order_notional=D(1)),
        on_reject=lambda decision, intent: seen.append((str(decision.rule), intent.symbol)),
    )
    engine.check(market(Side.BUY, "1"), inputs(), NOW)
    engine.check(market(Side.BUY, "0.001"), inputs(), NOW)
    assert seen == [("max_order_notional", "BTC/USDT")]


def test_live_updates_of_limits_and_state() -> None:
    engine = RiskEngine(RiskLimits())
    assert engine.check(market(Side.BUY, "1"), inputs(), NOW).allowed
    engine.set_trading_state("Halted")
    assert engine.check(market(Side.BUY, "1"), inputs(), NOW).rule is RiskRule.TRADING_HALTED
    engine.set_trading_state("Active")
    engine.update_limits(RiskLimits(max_order_notional=D(50)))
    assert engine.check(market(Side.BUY, "1"), inputs(), NOW).rule is RiskRule.MAX_ORDER_NOTIONAL
    assert engine.trading_state == "Active" and engine.limits.max_order_notional == 50


def test_limits_from_runtime_config() -> None:
    config = RiskConfig.model_validate(
        {
            "maxPositionNotional": "5000",
            "maxOrderNotional": "500",
            "maxDailyLoss": "250",
            "maxDrawdownPercent": "12.5",
            "maxOrdersPerMinute": 30,
            "priceBandPercent": "2",
        }
    )
    limits = RiskLimits.from_config(config)
    assert limits == RiskLimits(
        max_order_notional=D(500),
        max_position_notional=D(5000),
        price_band_pct=D(2),
        max_orders_per_minute=30,
        max_daily_loss=D(250),
        max_drawdown_pct=D("12.5"),
    )


def test_rule_camel_names() -> None:
    assert RiskRule.MAX_DAILY_LOSS.camel == "maxDailyLoss"
    assert RiskRule.PRICE_BAND.camel == "priceBand"


# --- properties ---------------------------------------------------------------------------

amounts = st.decimals(min_value=D("0.0001"), max_value=D(1000), places=4)
prices = st.decimals(min_value=D("0.01"), max_value=D(100000), places=2)
positions = st.decimals(min_value=D(-1000), max_value=D(1000), places=4)
optional_limits = st.one_of(st.none(), st.decimals(min_value=D(1), max_value=D(10**6), places=2))
states: st.SearchStrategy[TradingState] = st.sampled_from(["Active", "ReduceOnly", "Halted"])


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[RiskLimits, TradingState, OrderIntent, RiskInputs]:
    limits = RiskLimits(
        max_order_notional=draw(optional_limits),
        max_position_notional=draw(optional_limits),
        price_band_pct=draw(st.one_of(st.none(), st.decimals(min_value=0, max_value=50))),
        max_orders_per_minute=draw(st.one_of(st.none(), st.integers(0, 5))),
        max_daily_loss=draw(optional_limits),
        max_drawdown_pct=draw(st.one_of(st.none(), st.decimals(min_value=0, max_value=100))),
    )
    side = draw(st.sampled_from(Side))
    last = draw(st.one_of(st.none(), prices))
    if draw(st.booleans()):
        intent = OrderIntent("X/Y", side, OrderType.LIMIT, draw(amounts), price=draw(prices))
    else:
        intent = OrderIntent("X/Y", side, OrderType.MARKET, draw(amounts))
    risk_inputs = RiskInputs(
        last_price=last,
        position=draw(positions),
        open_buy=draw(st.decimals(min_value=0, max_value=100, places=2)),
        open_sell=draw(st.decimals(min_value=0, max_value=100, places=2)),
        daily_pnl=draw(st.decimals(min_value=-(10**6), max_value=10**6, places=2)),
        drawdown_pct=draw(st.decimals(min_value=0, max_value=100, places=2)),
    )
    return limits, draw(states), intent, risk_inputs


@given(scenarios())
def test_halted_never_allows(scenario: tuple[RiskLimits, str, OrderIntent, RiskInputs]) -> None:
    limits, _, intent, risk_inputs = scenario
    engine = RiskEngine(limits, "Halted")
    assert not engine.check(intent, risk_inputs, NOW).allowed


@given(scenarios())
def test_reduce_only_never_increases_exposure(
    scenario: tuple[RiskLimits, TradingState, OrderIntent, RiskInputs],
) -> None:
    limits, _, intent, risk_inputs = scenario
    engine = RiskEngine(limits, "ReduceOnly")
    if engine.check(intent, risk_inputs, NOW).allowed:
        # with the new order and every working order on its side filled
        working = risk_inputs.open_sell if intent.side is Side.SELL else risk_inputs.open_buy
        worst = risk_inputs.position + intent.side.sign * (intent.amount + working)
        assert abs(worst) < abs(risk_inputs.position)
        assert worst == 0 or (worst > 0) == (risk_inputs.position > 0)


@given(scenarios())
def test_accepted_orders_respect_notional_and_band(
    scenario: tuple[RiskLimits, TradingState, OrderIntent, RiskInputs],
) -> None:
    limits, state, intent, risk_inputs = scenario
    engine = RiskEngine(limits, state)
    decision = engine.check(intent, risk_inputs, NOW)
    if not decision.allowed:
        assert decision.rule is not None and decision.message
        return
    price = intent.price if intent.price is not None else risk_inputs.last_price
    if limits.max_order_notional is not None:
        assert price is not None
        assert intent.amount * price <= limits.max_order_notional
    if limits.price_band_pct is not None and intent.price is not None:
        last = risk_inputs.last_price
        assert last is not None
        assert abs(intent.price - last) * 100 / last <= limits.price_band_pct
    if not is_reducing(intent, risk_inputs):
        if limits.max_position_notional is not None:
            working = risk_inputs.open_buy if intent.side is Side.BUY else risk_inputs.open_sell
            worst = risk_inputs.position + intent.side.sign * (intent.amount + working)
            mark = risk_inputs.last_price or price
            assert mark is not None
            assert abs(worst) * mark <= limits.max_position_notional
        if limits.max_daily_loss is not None:
            assert risk_inputs.daily_pnl > -limits.max_daily_loss
        if limits.max_drawdown_pct is not None:
            assert risk_inputs.drawdown_pct < limits.max_drawdown_pct


@settings(max_examples=50)
@given(st.integers(1, 10), st.lists(st.integers(0, 200_000), min_size=1, max_size=60))
def test_never_more_than_max_orders_in_any_minute(
    limit_per_minute: int, offsets: list[int]
) -> None:
    engine = RiskEngine(RiskLimits(max_orders_per_minute=limit_per_minute))
    accepted: list[int] = []
    for ts in sorted(NOW + offset for offset in offsets):
        if engine.check(market(Side.BUY, "1"), inputs(), ts).allowed:
            accepted.append(ts)
    for ts in accepted:
        in_window = [other for other in accepted if ts - 60_000 < other <= ts]
        assert len(in_window) <= limit_per_minute


@pytest.mark.parametrize("state", ["Active", "ReduceOnly"])
def test_decision_is_accepted_singleton_shape(state: TradingState) -> None:
    engine = RiskEngine(RiskLimits(), state)
    decision = engine.check(market(Side.SELL, "1"), inputs(position="1"), NOW)
    assert decision == RiskDecision(True)


def test_risk_inputs_for_sums_working_remainders_per_side() -> None:
    working = [
        OpenOrder("a", "BTC/USDT", Side.BUY, OrderType.LIMIT, D(2), D("0.5"), D(100)),
        OpenOrder("b", "BTC/USDT", Side.SELL, OrderType.LIMIT, D(1), D(0), D(110)),
        OpenOrder("c", "BTC/USDT", Side.BUY, OrderType.MARKET, D(1), D(0)),
        OpenOrder("d", "ETH/USDT", Side.BUY, OrderType.MARKET, D(9), D(0)),
    ]
    result = risk_inputs_for("BTC/USDT", D(3), working, D(105), daily_pnl=D(-5))
    assert result == RiskInputs(
        last_price=D(105), position=D(3), open_buy=D("2.5"), open_sell=D(1), daily_pnl=D(-5)
    )


def test_risk_inputs_for_reads_the_engines_order_records_like_snapshots() -> None:
    """The engine passes its OrderRecords directly (no snapshot per order on the hot
    path): the sums must equal those over the records' OpenOrder snapshots."""
    records = []
    for seq, (symbol, side, amount, filled) in enumerate(
        [("BTC/USDT", Side.BUY, "2", "0.5"), ("BTC/USDT", Side.SELL, "1", "0.25"),
         ("ETH/USDT", Side.SELL, "7", "0"), ("BTC/USDT", Side.BUY, "0.3", "0")]
    ):  # fmt: skip
        intent = OrderIntent(symbol, side, OrderType.LIMIT, D(amount), D(100))
        record = OrderRecord(f"id{seq}", intent, shard=0, epoch=1, seq=seq, created_ms=0)
        record.filled = D(filled)
        records.append(record)
    direct = risk_inputs_for("BTC/USDT", D(0), records, D(100))
    snapshots = risk_inputs_for("BTC/USDT", D(0), [r.as_open_order() for r in records], D(100))
    assert direct == snapshots
    assert (direct.open_buy, direct.open_sell) == (D("1.8"), D("0.75"))
