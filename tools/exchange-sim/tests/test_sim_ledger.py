"""The simulator ledger's duplicate detection and position reports."""

from __future__ import annotations

import itertools
from decimal import Decimal

from exchange_sim.config import DEFAULT_DUPLICATE_PATTERN, AccountSpec, SimConfig, SymbolSpec
from exchange_sim.engine import Engine, OrderRequest
from exchange_sim.ledger import DuplicateDetector, Ledger, positions
from exchange_sim.models import Order
from tradebot_contracts.order_ids import ClientOrderIds

D = Decimal
T0 = 1_700_000_000_000


_ids = itertools.count(1)


def order(client_id: str, account: str = "a", time: int = T0, qty: str = "1") -> Order:
    return Order(
        account,
        "BTCUSDT",
        next(_ids),
        client_id,
        "BUY",
        "LIMIT",
        "GTC",
        D("100"),
        D(qty),
        D(0),
        time,
        "NONE",
    )


def detector(window_ms: int = 1000) -> DuplicateDetector:
    return DuplicateDetector(DEFAULT_DUPLICATE_PATTERN, ["epoch"], window_ms)


def test_the_same_sequence_under_two_epochs_is_one_duplicate() -> None:
    d = detector()
    assert d.intent_key("bot1-acc-0-3-17") == "intent=bot1-acc-0|seq=17"
    dups = d.duplicates(
        [order("bot1-acc-0-3-17"), order("bot1-acc-0-4-17"), order("bot1-acc-0-4-18")]
    )
    assert len(dups) == 1
    assert dups[0]["client_order_ids"] == ["bot1-acc-0-3-17", "bot1-acc-0-4-17"]


def test_different_sequences_shards_or_accounts_are_not_duplicates() -> None:
    d = detector()
    orders = [
        order("bot1-acc-0-3-17"),
        order("bot1-acc-0-3-18"),
        order("bot1-acc-1-3-17"),  # another shard
        order("bot1-acc-0-3-17", account="b"),  # another account
    ]
    assert d.duplicates(orders) == []


def test_ids_outside_the_convention_compare_whole() -> None:
    d = detector()
    assert d.intent_key("x-TKT5PX2Fabc") == "x-TKT5PX2Fabc"
    assert len(d.duplicates([order("manual"), order("manual")])) == 1


def test_the_splitter_is_configurable() -> None:
    d = DuplicateDetector(r"^(?P<bot>[a-z]+)_e(?P<epoch>\d+)_s(?P<seq>\d+)$", ["epoch"], 0)
    assert d.intent_key("grid_e2_s40") == "bot=grid|seq=40"
    assert len(d.duplicates([order("grid_e2_s40"), order("grid_e9_s40")])) == 1
    d.configure(DEFAULT_DUPLICATE_PATTERN, [], 0)  # keep the epoch: no longer duplicates
    assert d.duplicates([order("b-1-7"), order("b-2-7")]) == []


def test_similar_orders_within_the_window_are_reported() -> None:
    d = detector(window_ms=500)
    found = d.similar(
        [order("b-1-1", time=T0), order("b-1-2", time=T0 + 400), order("b-1-3", time=T0 + 1500)]
    )
    assert [f["client_order_ids"] for f in found] == [["b-1-1", "b-1-2"]]
    assert d.similar([order("b-1-1"), order("b-1-2", qty="2")]) == []


def test_positions_and_summary_follow_the_fills() -> None:
    spec = SymbolSpec(
        "BTCUSDT",
        "BTC",
        "USDT",
        D("0.01"),
        D("0.001"),
        D("0.001"),
        D("100"),
        D("0.01"),
        D("100000"),
        initial_price=D("100"),
    )
    acct = AccountSpec("a", "k", "s", {"USDT": D("1000")})
    engine = Engine(SimConfig(symbols=(spec,), accounts=(acct,), history_minutes=0), T0)
    ledger = Ledger(detector())
    for cid, side in (("b-1-1", "BUY"), ("b-2-1", "BUY"), ("b-2-2", "SELL")):
        placed, _ = engine.place_order(
            "a", OrderRequest("BTCUSDT", side, "MARKET", D("2"), client_order_id=cid), T0
        )
        ledger.record_order(placed)
    pos = positions(engine, "a")["BTCUSDT"]
    assert pos["net_qty"] == "2" and pos["bought_qty"] == "4" and pos["sold_qty"] == "2"
    assert pos["fees"] == {"BTC": "0.004", "USDT": "0.19998"}
    summary = ledger.summary(engine)["accounts"]["a"]
    assert summary["orders"] == 3 and summary["trades"] == 3
    assert summary["duplicate_intents"] == 1  # b-1-1 and b-2-1 carry the same intent
    report = ledger.report(engine, "a")
    assert [o["intent"] for o in report["orders"]][:2] == ["intent=b|seq=1"] * 2
    assert report["balances"]["BTC"]["free"] == "1.996"


def test_the_runtimes_own_client_order_ids_are_decoded() -> None:
    ids = ClientOrderIds("binance", "ns/bot", "acct")
    d = detector()
    assert d.fields(ids.build(0, 3, 17)) == {
        "owner": ids.owner,
        "shard": "0",
        "epoch": "3",
        "seq": "17",
    }
    resent = [order(ids.build(0, 3, 17)), order(ids.build(0, 4, 17))]
    distinct = [order(ids.build(0, 3, 17)), order(ids.build(0, 3, 18)), order(ids.build(1, 4, 17))]
    assert [g["client_order_ids"] for g in d.duplicates(resent)] == [
        [ids.build(0, 3, 17), ids.build(0, 4, 17)]
    ]
    assert d.duplicates(distinct) == []
    other_bot = ClientOrderIds("binance", "ns/other", "acct")
    assert d.duplicates([order(ids.build(0, 3, 17)), order(other_bot.build(0, 4, 17))]) == []
    # without the decoder those ids are opaque and only exact repeats would count
    d.configure(DEFAULT_DUPLICATE_PATTERN, ["epoch"], 1000, decoders=[])
    assert d.duplicates(resent) == []
