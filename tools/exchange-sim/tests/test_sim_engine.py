"""Unit tests of the simulator's pure matching engine (no I/O, explicit clock)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from exchange_sim.config import AccountSpec, SimConfig, SymbolSpec
from exchange_sim.engine import Engine, OrderRequest
from exchange_sim.errors import BinanceError
from exchange_sim.models import BalanceUpdate, ExecutionReport, TradeEvent

T0 = 1_700_000_000_000
D = Decimal

SPEC = SymbolSpec(
    symbol="BTCUSDT",
    base="BTC",
    quote="USDT",
    tick_size=D("0.01"),
    step_size=D("0.001"),
    min_qty=D("0.001"),
    max_qty=D("1000"),
    min_price=D("0.01"),
    max_price=D("100000"),
    initial_price=D("100"),
    level_notional=D("1000"),  # about 10 BTC per level at 100 USDT
)
ALICE = AccountSpec("alice", "alicekey", "alicesecret", {"USDT": D("10000"), "BTC": D("10")})


def make_engine(seed: int = 7, **config: object) -> Engine:
    cfg = SimConfig(seed=seed, symbols=(SPEC,), accounts=(ALICE,), history_minutes=0)
    return Engine(replace(cfg, **config), start_ms=T0)  # type: ignore[arg-type]


def limit(side: str, qty: str, price: str, tif: str | None = "GTC", **kw: object) -> OrderRequest:
    return OrderRequest(
        "BTCUSDT",
        side,
        str(kw.pop("type", "LIMIT")),
        D(qty),
        D(price),
        time_in_force=tif,
        **kw,  # type: ignore[arg-type]
    )


def market(
    side: str, qty: str | None = None, quote: str | None = None, **kw: object
) -> OrderRequest:
    return OrderRequest(
        "BTCUSDT",
        side,
        "MARKET",
        D(qty) if qty else None,
        quote_order_qty=D(quote) if quote else None,
        **kw,  # type: ignore[arg-type]
    )


def bal(engine: Engine, asset: str) -> tuple[Decimal, Decimal]:
    b = engine.accounts["alice"].balance(asset)
    return b.free, b.locked


def test_book_is_built_around_the_initial_price() -> None:
    m = make_engine().markets["BTCUSDT"]
    # spread = max(tick, 1 bps of 100) = 0.01, bid rounded down to the tick
    assert (m.best_bid, m.best_ask) == (D("99.99"), D("100.00"))
    bids, asks = m.book()
    assert [lv.price for lv in asks[:3]] == [D("100.00"), D("100.01"), D("100.02")]
    assert all(lv.qty > 0 for lv in bids + asks)


def test_limit_buy_below_the_market_rests_and_locks_quote() -> None:
    engine = make_engine()
    order, events = engine.place_order("alice", limit("BUY", "1.5", "99.00"), T0)
    assert order.status == "NEW" and order.executed_qty == 0
    assert bal(engine, "USDT") == (D("9851.5"), D("148.5"))
    assert [type(e) for e in events] == [ExecutionReport, BalanceUpdate]
    assert engine.open_orders("alice", "BTCUSDT") == [order]


def test_market_buy_takes_the_best_ask_and_pays_the_taker_fee_in_base() -> None:
    engine = make_engine()
    order, events = engine.place_order("alice", market("BUY", "1"), T0)
    assert order.status == "FILLED"
    fills = [e.fill for e in events if isinstance(e, ExecutionReport) and e.fill]
    assert [(f.price, f.qty, f.is_maker) for f in fills] == [(D("100.00"), D("1"), False)]
    assert fills[0].commission == D("0.001") and fills[0].commission_asset == "BTC"
    assert bal(engine, "BTC") == (D("10.999"), D(0))
    assert bal(engine, "USDT") == (D("9900.00"), D(0))
    assert order.cum_quote == D("100.00")


def test_market_sell_pays_the_fee_in_quote() -> None:
    engine = make_engine()
    order, _ = engine.place_order("alice", market("SELL", "2"), T0)
    assert order.status == "FILLED"
    assert bal(engine, "BTC") == (D("8"), D(0))
    # 2 * 99.99 = 199.98, fee 0.1% = 0.19998
    assert bal(engine, "USDT") == (D("10000") + D("199.98") - D("0.19998"), D(0))


def test_a_large_market_order_walks_several_levels() -> None:
    engine = make_engine()
    top = engine.markets["BTCUSDT"].level_qty(0)
    order, events = engine.place_order("alice", market("BUY", str(top + 1)), T0)
    fills = [e.fill for e in events if isinstance(e, ExecutionReport) and e.fill]
    assert [(f.price, f.qty) for f in fills] == [(D("100.00"), top), (D("100.01"), D("1"))]
    assert order.cum_quote == top * D("100.00") + D("100.01")


def test_market_order_expires_when_the_book_runs_out() -> None:
    engine = make_engine(symbols=(replace(SPEC, levels=2),))
    m = engine.markets["BTCUSDT"]
    depth = m.level_qty(0) + m.level_qty(1)
    order, events = engine.place_order("alice", market("BUY", str(depth + 5)), T0)
    assert order.status == "EXPIRED" and order.executed_qty == depth
    assert [e.execution_type for e in events if isinstance(e, ExecutionReport)] == [
        "NEW",
        "TRADE",
        "TRADE",
        "EXPIRED",
    ]


def test_quote_order_qty_spends_at_most_the_quote_amount() -> None:
    engine = make_engine()
    order, _ = engine.place_order("alice", market("BUY", quote="250"), T0)
    assert order.status == "FILLED"
    assert order.cum_quote <= D("250") and order.orig_qty == order.executed_qty == D("2.5")
    assert order.orig_quote_qty == D("250")


def test_crossing_limit_fills_as_taker_and_refunds_the_price_improvement() -> None:
    engine = make_engine()
    order, _ = engine.place_order("alice", limit("BUY", "1", "100.50"), T0)
    assert order.status == "FILLED" and order.cum_quote == D("100.00")
    assert bal(engine, "USDT") == (D("9900.00"), D(0))


def test_resting_order_fills_as_maker_one_level_per_step_when_the_price_crosses_it() -> None:
    engine = make_engine(symbols=(replace(SPEC, level_notional=D("300")),))
    m = engine.markets["BTCUSDT"]
    order, _ = engine.place_order("alice", limit("SELL", "8", "101.00"), T0)
    assert bal(engine, "BTC") == (D("2"), D("8"))
    not_crossed = engine.set_price("BTCUSDT", D("100.50"), T0 + 1)
    assert [type(e) for e in not_crossed] == [TradeEvent]
    steps = 0
    while order.status != "FILLED":
        steps += 1
        remaining = order.remaining
        events = engine.set_price("BTCUSDT", D("102"), T0 + 1 + steps)
        fills = [e.fill for e in events if isinstance(e, ExecutionReport) and e.fill]
        assert len(fills) == 1
        assert fills[0].price == D("101.00") and fills[0].is_maker
        assert fills[0].qty == min(remaining, m.level_qty(0))
        assert order.status in ("PARTIALLY_FILLED", "FILLED")
        assert steps < 10
    assert steps >= 2, "a resting order larger than one level fills over several steps"
    assert bal(engine, "BTC") == (D("2"), D(0))
    # 8 * 101 = 808 USDT received, maker fee 0.1% in quote
    assert bal(engine, "USDT") == (D("10000") + D("808") - D("0.808"), D(0))
    assert engine.open_orders("alice", None) == []


def test_sell_limit_needs_the_base_asset() -> None:
    engine = make_engine()
    with pytest.raises(BinanceError) as err:
        engine.place_order("alice", limit("SELL", "11", "101.00"), T0)
    assert (err.value.code, err.value.msg) == (
        -2010,
        "Account has insufficient balance for requested action.",
    )
    assert bal(engine, "BTC") == (D("10"), D(0))
    assert engine.accounts["alice"].orders == {}


def test_ioc_remainder_expires_and_releases_the_lock() -> None:
    engine = make_engine()
    top = engine.markets["BTCUSDT"].level_qty(0)
    # limit at the touch: only level 0 is within the price
    order, _ = engine.place_order("alice", limit("BUY", str(top + 2), "100.00", "IOC"), T0)
    assert order.status == "EXPIRED" and order.executed_qty == top
    assert bal(engine, "USDT") == (D("10000") - top * D("100.00"), D(0))


def test_fok_that_cannot_fill_completely_expires_without_trades() -> None:
    engine = make_engine()
    top = engine.markets["BTCUSDT"].level_qty(0)
    order, events = engine.place_order("alice", limit("BUY", str(top + 2), "100.00", "FOK"), T0)
    assert order.status == "EXPIRED" and order.executed_qty == 0
    assert not any(isinstance(e, ExecutionReport) and e.fill for e in events)
    assert bal(engine, "USDT") == (D("10000"), D(0))


def test_limit_maker_that_would_take_is_rejected() -> None:
    engine = make_engine()
    req = limit("BUY", "1", "100.00", None, type="LIMIT_MAKER")
    with pytest.raises(BinanceError) as err:
        engine.place_order("alice", req, T0)
    assert (err.value.code, err.value.msg) == (-2010, "Order would immediately match and take.")
    ok, _ = engine.place_order("alice", limit("BUY", "1", "99.99", None, type="LIMIT_MAKER"), T0)
    assert ok.status == "NEW"


@pytest.mark.parametrize(
    ("request_", "code", "msg"),
    [
        (limit("BUY", "1", "99.001"), -1013, "Filter failure: PRICE_FILTER"),
        (limit("BUY", "0.0005", "99"), -1013, "Filter failure: LOT_SIZE"),
        (limit("BUY", "1.0005", "99"), -1013, "Filter failure: LOT_SIZE"),
        (limit("BUY", "0.01", "99"), -1013, "Filter failure: NOTIONAL"),
        (limit("SELL", "1", "600"), -1013, "Filter failure: PERCENT_PRICE_BY_SIDE"),
        (market("BUY", "0.01"), -1013, "Filter failure: NOTIONAL"),
        (market("BUY"), -1102, None),
        (limit("BUY", "1", "99", None), -1102, None),
        (limit("BUY", "1", "99", "GTX"), -1115, None),
        (limit("HOLD", "1", "99"), -1117, None),
        (limit("BUY", "1", "99", type="STOP_LOSS_LIMIT"), -1014, None),
        (limit("BUY", "1", "99", type="OCO"), -1116, None),
        (limit("BUY", "1", "99", client_order_id="has space"), -1100, None),
        (limit("BUY", "1", "99", client_order_id="x" * 37), -1100, None),
        (replace(limit("BUY", "1", "99"), symbol="NOPEUSDT"), -1121, "Invalid symbol."),
    ],
)
def test_invalid_orders_are_rejected_with_binance_codes(
    request_: OrderRequest, code: int, msg: str | None
) -> None:
    engine = make_engine()
    with pytest.raises(BinanceError) as err:
        engine.place_order("alice", request_, T0)
    assert err.value.code == code
    if msg is not None:
        assert err.value.msg == msg
    assert engine.accounts["alice"].orders == {}
    assert bal(engine, "USDT") == (D("10000"), D(0))


def test_a_client_order_id_is_never_accepted_twice_by_default() -> None:
    engine = make_engine()
    first, _ = engine.place_order("alice", limit("BUY", "1", "99", client_order_id="b-1-7"), T0)
    engine.cancel_order("alice", "BTCUSDT", first.order_id, None, T0 + 1)
    with pytest.raises(BinanceError) as err:
        engine.place_order("alice", limit("BUY", "1", "98", client_order_id="b-1-7"), T0 + 2)
    assert (err.value.code, err.value.msg) == (-2010, "Duplicate order sent.")


def test_binance_rule_only_rejects_the_id_of_an_open_order() -> None:
    engine = make_engine(client_id_reuse="open")
    first, _ = engine.place_order("alice", limit("BUY", "1", "99", client_order_id="b-1-7"), T0)
    with pytest.raises(BinanceError, match="Duplicate order sent"):
        engine.place_order("alice", limit("BUY", "1", "98", client_order_id="b-1-7"), T0 + 1)
    engine.cancel_order("alice", "BTCUSDT", None, "b-1-7", T0 + 2)
    second, _ = engine.place_order(
        "alice", limit("BUY", "1", "98", client_order_id="b-1-7"), T0 + 3
    )
    # a lookup by client id finds the newest order carrying it
    assert engine.get_order("alice", "BTCUSDT", None, "b-1-7") is second
    assert second.order_id != first.order_id


def test_cancel_releases_funds_and_unknown_orders_are_reported() -> None:
    engine = make_engine()
    order, _ = engine.place_order("alice", limit("BUY", "2", "95"), T0)
    canceled, events = engine.cancel_order("alice", "BTCUSDT", order.order_id, None, T0 + 5)
    assert canceled.status == "CANCELED" and canceled.update_time == T0 + 5
    assert bal(engine, "USDT") == (D("10000"), D(0))
    assert [e.execution_type for e in events if isinstance(e, ExecutionReport)] == ["CANCELED"]
    with pytest.raises(BinanceError) as again:
        engine.cancel_order("alice", "BTCUSDT", order.order_id, None, T0 + 6)
    assert again.value.code == -2011
    with pytest.raises(BinanceError) as missing:
        engine.get_order("alice", "BTCUSDT", 999, None)
    assert missing.value.code == -2013
    with pytest.raises(BinanceError) as wrong_pair:
        engine.get_order("alice", "BTCUSDT", order.order_id, "someone-else")
    assert wrong_pair.value.code == -2013


def test_all_orders_and_my_trades_filter_by_symbol_and_window() -> None:
    engine = make_engine()
    a, _ = engine.place_order("alice", market("BUY", "1"), T0)
    b, _ = engine.place_order("alice", limit("BUY", "1", "90"), T0 + 10)
    assert [o.order_id for o in engine.all_orders("alice", "BTCUSDT", None, None, None, 10)] == [
        a.order_id,
        b.order_id,
    ]
    assert engine.all_orders("alice", "BTCUSDT", None, T0 + 5, None, 10) == [b]
    trades = engine.my_trades("alice", "BTCUSDT", None, None, None, None, 10)
    assert [t.order_id for t in trades] == [a.order_id]
    assert engine.my_trades("alice", "BTCUSDT", b.order_id, None, None, None, 10) == []


def _scenario(engine: Engine) -> list[str]:
    out: list[str] = []
    engine.place_order("alice", limit("BUY", "3", "99.5"), T0)
    engine.place_order("alice", limit("SELL", "2", "100.6"), T0)
    for i in range(200):
        events = engine.tick(T0 + 1000 * (i + 1), D(3600))
        out.extend(repr(e) for e in events)
        if i % 50 == 0:
            _, placed = engine.place_order("alice", market("BUY", "0.5"), T0 + 1000 * (i + 1))
            out.extend(repr(e) for e in placed)
    return out


def test_the_engine_is_deterministic_for_a_seed() -> None:
    first, second = _scenario(make_engine(seed=11)), _scenario(make_engine(seed=11))
    assert first == second
    assert _scenario(make_engine(seed=12)) != first


def test_fills_account_for_every_unit_of_base_quote_and_fee() -> None:
    engine = make_engine()
    _scenario(engine)
    account = engine.accounts["alice"]
    assert account.fills, "the scenario must trade"
    base = D("10")
    quote = D("10000")
    for f in account.fills:
        sign = 1 if f.side == "BUY" else -1
        base += sign * f.qty - (f.commission if f.commission_asset == "BTC" else 0)
        quote -= sign * f.quote_qty + (f.commission if f.commission_asset == "USDT" else 0)
    btc, usdt = account.balance("BTC"), account.balance("USDT")
    assert btc.free + btc.locked == base
    assert usdt.free + usdt.locked == quote
    open_lock = sum((o.locked for o in account.open_orders() if o.side == "BUY"), D(0))
    assert usdt.locked == open_lock


def test_ticks_move_the_price_and_publish_one_trade_per_market() -> None:
    engine = make_engine(symbols=(SPEC, replace(SPEC, symbol="ETHUSDT", base="ETH")))
    before = {s: m.last_price for s, m in engine.markets.items()}
    prices = set()
    for i in range(20):
        events = engine.tick(T0 + i * 1000, D(3600))
        trades = [e.trade for e in events if isinstance(e, TradeEvent)]
        assert sorted(t.symbol for t in trades) == ["BTCUSDT", "ETHUSDT"]
        prices.add(engine.markets["BTCUSDT"].last_price)
    assert len(prices) > 5
    assert {s: m.last_price for s, m in engine.markets.items()} != before


def test_a_replayed_csv_becomes_the_candles(tmp_path: Path) -> None:
    csv_file = tmp_path / "btc.csv"
    csv_file.write_text("open_time,open,high,low,close\n0,100,103.5,99,102\n0,101,102.5,97.25,98\n")
    engine = make_engine(symbols=(replace(SPEC, replay_csv=str(csv_file)),), history_minutes=2)
    candles = list(engine.markets["BTCUSDT"].candles)
    assert [(c.open, c.high, c.low, c.close) for c in candles] == [
        (D(100), D("103.5"), D(99), D(102)),
        (D(101), D("102.5"), D("97.25"), D(98)),  # a gap stays a gap
    ]
    assert candles[1].open_time - candles[0].open_time == 60_000
