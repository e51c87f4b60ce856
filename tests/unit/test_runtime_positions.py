"""Average-cost positions, fees, idempotent fills, daily PnL and drawdown."""

from __future__ import annotations

from decimal import Decimal
from itertools import count

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradebot_runtime.domain import Fill, Side
from tradebot_runtime.positions import PnlTracker, PnlTrackerState, PositionBook

D = Decimal
SYMBOL = "BTC/USDT"
DAY = 86_400_000
_ids = count()


def fill(
    side: Side,
    amount: str,
    price: str,
    fee: str = "0",
    fee_currency: str = "USDT",
    trade_id: str | None = None,
    symbol: str = SYMBOL,
) -> Fill:
    return Fill(
        trade_id=trade_id or f"tr{next(_ids)}",
        client_order_id="c",
        symbol=symbol,
        side=side,
        price=D(price),
        amount=D(amount),
        fee=D(fee),
        fee_currency=fee_currency,
        ts=0,
    )


def test_average_entry_and_realized_pnl() -> None:
    book = PositionBook()
    book.apply(fill(Side.BUY, "1", "100"))
    book.apply(fill(Side.BUY, "3", "200"))
    position = book.position(SYMBOL)
    assert position.amount == D(4) and position.avg_entry_price == D(175)
    book.apply(fill(Side.SELL, "2", "225"))
    position = book.position(SYMBOL)
    assert position.amount == D(2)
    assert position.avg_entry_price == D(175)  # average cost: unchanged by a reduction
    assert position.realized_pnl == D(100)  # 2 x (225 - 175)
    assert book.unrealized_pnl({SYMBOL: D(150)}) == D(-50)


def test_flip_from_long_to_short_opens_remainder_at_fill_price() -> None:
    book = PositionBook()
    book.apply(fill(Side.BUY, "1", "100"))
    book.apply(fill(Side.SELL, "3", "110"))
    position = book.position(SYMBOL)
    assert position.amount == D(-2)
    assert position.avg_entry_price == D(110)
    assert position.realized_pnl == D(10)
    book.apply(fill(Side.BUY, "2", "100"))  # cover the short at a profit
    position = book.position(SYMBOL)
    assert position.is_flat and position.avg_entry_price == 0
    assert position.realized_pnl == D(30)


def test_duplicate_fill_is_a_no_op() -> None:
    book = PositionBook()
    first = fill(Side.BUY, "1", "100", fee="0.1", trade_id="T1")
    assert book.apply(first)
    assert not book.apply(first)
    assert book.position(SYMBOL).amount == D(1) and book.fees() == D("0.1")
    # the same trade id in another symbol is a different trade (ids are per symbol)
    assert book.apply(fill(Side.BUY, "1", "10", trade_id="T1", symbol="ETH/USDT"))
    assert book.has_fill("ETH/USDT", "T1", "buy") and not book.has_fill("SOL/USDT", "T1", "buy")


def test_both_sides_of_a_trade_between_two_of_our_orders_are_booked() -> None:
    """Issue 15: a self-trade has one trade id for both sides; the second side was taken
    for a duplicate and dropped, leaving a position the exchange does not have."""
    book = PositionBook()
    assert book.apply(fill(Side.BUY, "1", "100", fee="0.1", trade_id="T7"))
    assert book.apply(fill(Side.SELL, "1", "100", fee="0.1", trade_id="T7"))
    assert book.position(SYMBOL).is_flat and book.fees() == D("0.2")
    assert book.has_fill(SYMBOL, "T7", "buy") and book.has_fill(SYMBOL, "T7", "sell")
    assert not book.apply(fill(Side.SELL, "1", "100", trade_id="T7"))  # still deduplicated


def test_fee_in_quote() -> None:
    book = PositionBook()
    book.apply(fill(Side.BUY, "1", "100", fee="0.1", fee_currency="USDT"))
    book.apply(fill(Side.SELL, "1", "100", fee="0.1", fee_currency="USDT"))
    assert book.realized_pnl() == 0
    assert book.fees() == D("0.2")
    assert book.total_pnl({}) == D("-0.2")


def test_fee_in_base_reduces_the_position_and_is_valued_in_quote() -> None:
    book = PositionBook()
    book.apply(fill(Side.BUY, "1", "100", fee="0.001", fee_currency="BTC"))
    position = book.position(SYMBOL)
    assert position.amount == D("0.999")  # what the balance really shows
    assert position.fees_quote == D("0.1")
    # equity: paid 100 USDT, hold 0.999 BTC worth 99.9 at the same price
    assert book.total_pnl({SYMBOL: D(100)}) == D("-0.1")


def test_fee_in_third_asset_uses_rate_or_is_reported() -> None:
    book = PositionBook()
    book.apply(fill(Side.BUY, "1", "100", fee="0.0005", fee_currency="BNB"), fee_rate=D(600))
    assert book.fees() == D("0.3")
    book.apply(fill(Side.SELL, "1", "100", fee="0.0005", fee_currency="BNB"))
    assert book.fees() == D("0.3")
    assert book.unconverted_fees == {"BNB": D("0.0005")}


def test_unrealized_needs_marks_for_open_positions() -> None:
    book = PositionBook()
    book.apply(fill(Side.BUY, "1", "100"))
    with pytest.raises(ValueError, match="BTC/USDT"):
        book.unrealized_pnl({})
    assert book.position_notional({SYMBOL: D(120)}) == D(120)


def test_replay_counts_new_fills() -> None:
    fills = [fill(Side.BUY, "1", "100", trade_id="a"), fill(Side.BUY, "1", "100", trade_id="b")]
    book = PositionBook()
    assert book.apply_all(fills) == 2
    assert book.apply_all(fills) == 0


# --- properties ---------------------------------------------------------------------------

amounts = st.decimals(min_value=D("0.001"), max_value=D(100), places=3)
prices = st.decimals(min_value=D("0.01"), max_value=D(100000), places=2)
fills_strategy = st.lists(
    st.tuples(st.sampled_from(Side), amounts, prices, st.decimals(0, 1, places=3)),
    min_size=1,
    max_size=30,
)


@given(fills_strategy)
def test_applying_any_fill_again_changes_nothing(rows: list[tuple[Side, D, D, D]]) -> None:
    book = PositionBook()
    fills = [
        Fill(f"t{i}", "c", SYMBOL, side, price, amount, fee, "USDT", i)
        for i, (side, amount, price, fee) in enumerate(rows)
    ]
    book.apply_all(fills)
    before = (book.position(SYMBOL), book.fees(), book.realized_pnl())
    for f in fills:
        assert not book.apply(f)
    assert (book.position(SYMBOL), book.fees(), book.realized_pnl()) == before


@given(amounts, prices)
def test_round_trip_at_same_price_without_fees_is_zero_pnl(amount: D, price: D) -> None:
    for first, second in ((Side.BUY, Side.SELL), (Side.SELL, Side.BUY)):
        book = PositionBook()
        book.apply(Fill("a", "c", SYMBOL, first, price, amount, D(0), "USDT", 0))
        book.apply(Fill("b", "c", SYMBOL, second, price, amount, D(0), "USDT", 1))
        position = book.position(SYMBOL)
        assert position.is_flat
        assert position.realized_pnl == 0
        assert book.total_pnl({}) == 0


@given(st.lists(st.tuples(st.sampled_from(Side), amounts), min_size=1, max_size=20), prices)
def test_position_amount_is_the_signed_sum_of_fills(rows: list[tuple[Side, D]], price: D) -> None:
    book = PositionBook()
    for i, (side, amount) in enumerate(rows):
        book.apply(Fill(f"t{i}", "c", SYMBOL, side, price, amount, D(0), "USDT", i))
    assert book.position(SYMBOL).amount == sum(a if s is Side.BUY else -a for s, a in rows)
    # trading at one constant price can neither make nor lose money
    assert book.total_pnl({SYMBOL: price}) == 0


@given(
    st.lists(
        st.tuples(st.sampled_from(Side), st.integers(1, 50), st.integers(1, 500)), max_size=25
    ),
    st.integers(1, 500),
)
def test_total_pnl_equals_cash_flow_plus_holdings(
    rows: list[tuple[Side, int, int]], mark: int
) -> None:
    # with integer amounts and prices the average-cost figures are exact, so the book must
    # agree with plain cash accounting: PnL = cash spent/received + position x mark
    book = PositionBook()
    cash = D(0)
    for i, (side, amount, price) in enumerate(rows):
        book.apply(Fill(f"t{i}", "c", SYMBOL, side, D(price), D(amount), D(0), "USDT", i))
        cash += D(amount * price) * (-1 if side is Side.BUY else 1)
    holding = book.position(SYMBOL).amount * mark
    assert book.total_pnl({SYMBOL: D(mark)}) == pytest.approx(cash + holding, abs=D("1e-18"))


# --- daily PnL and drawdown ---------------------------------------------------------------


def test_daily_pnl_resets_at_utc_midnight() -> None:
    tracker = PnlTracker(D(1000))
    day1 = 5 * DAY
    assert tracker.update(day1 + 1, D(0)).daily_pnl == 0
    assert tracker.update(day1 + 2, D(-30)).daily_pnl == D(-30)
    snapshot = tracker.update(day1 + DAY + 5, D(-25))  # next day opens at -30
    assert snapshot.daily_pnl == D(5)
    assert snapshot.total_pnl == D(-25)


def test_drawdown_from_peak() -> None:
    tracker = PnlTracker(D(1000))
    tracker.update(0, D(0))
    tracker.update(1, D(250))  # equity peak 1250
    snapshot = tracker.update(2, D(0))
    assert snapshot.peak_equity == D(1250)
    assert snapshot.drawdown_pct == D(20)
    assert tracker.update(3, D(-2000)).drawdown_pct == D(100)  # capped


def test_tracker_state_survives_restart() -> None:
    state = PnlTrackerState(day=7, day_open_pnl=D(-10), peak_equity=D(1100), last_total_pnl=D(-20))
    tracker = PnlTracker(D(1000), state)
    snapshot = tracker.update(7 * DAY + 100, D(-40))
    assert snapshot.daily_pnl == D(-30)
    assert snapshot.drawdown_pct == (D(1100) - D(960)) * 100 / D(1100)


def test_tracker_rejects_non_positive_equity() -> None:
    with pytest.raises(ValueError):
        PnlTracker(D(0))


@given(st.lists(st.integers(-900, 900), min_size=1, max_size=40))
def test_drawdown_is_between_0_and_100_and_zero_at_new_peaks(pnls: list[int]) -> None:
    tracker = PnlTracker(D(1000))
    peak = None
    for i, pnl in enumerate(pnls):
        snapshot = tracker.update(i, D(pnl))
        assert 0 <= snapshot.drawdown_pct <= 100
        if peak is None or pnl >= peak:
            peak = pnl
            assert snapshot.drawdown_pct == 0
