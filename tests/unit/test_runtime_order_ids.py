"""Deterministic client order ids: exchange-valid, injective, parseable."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradebot_contracts.order_ids import (
    DEFAULT_RULE,
    EXCHANGE_RULES,
    ClientOrderIdError,
    ClientOrderIdParts,
    ClientOrderIds,
    build_client_order_id,
    client_id_param,
    decode_client_order_id,
    encode_client_order_id,
    owner_hash,
    parse_client_order_id,
)

# exchanges whose limit fits every id the runtime can produce (kraken's 18 chars does not)
FULL_RANGE_EXCHANGES = ["binance", "okx", "bybit", "kucoin", "coinbase", "unknown-x"]
shards = st.integers(0, 1295)  # two base36 digits
epochs = st.integers(0, 2**31 - 1)  # Lease leaseTransitions is an int32
seqs = st.integers(0, 2**63 - 1)
names = st.text(min_size=1, max_size=40)

BINANCE_RE = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")


def test_known_example_is_stable() -> None:
    # pinned: changing the encoding would orphan every order journaled before
    assert build_client_order_id("binance", "ns/b1", "acct", 0, 3, 1000) == "t0jsm6110132rs"
    assert build_client_order_id("gate", "ns/b1", "acct", 0, 3, 1000) == "t-t0jsm6110132rs"


@pytest.mark.parametrize(
    ("exchange", "param"),
    [
        ("binance", "newClientOrderId"),
        ("okx", "clOrdId"),
        ("bybit", "orderLinkId"),
        ("kucoin", "clientOid"),
        ("coinbase", "client_order_id"),
        ("kraken", "cl_ord_id"),
        ("gate", "text"),
        ("somethingelse", "clientOrderId"),
    ],
)
def test_param_names(exchange: str, param: str) -> None:
    assert client_id_param(exchange) == param


@given(st.sampled_from(FULL_RANGE_EXCHANGES), names, names, shards, epochs, seqs)
def test_ids_are_valid_for_the_exchange_and_parse_back(
    exchange: str, bot: str, account: str, shard: int, epoch: int, seq: int
) -> None:
    cid = build_client_order_id(exchange, bot, account, shard, epoch, seq)
    rule = EXCHANGE_RULES.get(exchange, DEFAULT_RULE)
    assert len(cid) <= rule.max_length
    assert rule.pattern.fullmatch(cid)
    if exchange == "binance":
        assert BINANCE_RE.match(cid)
    if exchange == "okx":
        assert cid.isalnum() and len(cid) <= 32
    parts = parse_client_order_id(exchange, cid)
    assert parts == ClientOrderIdParts(owner_hash(bot, account), shard, epoch, seq)


@given(
    st.tuples(shards, epochs, seqs),
    st.tuples(shards, epochs, seqs),
)
def test_injective_for_one_bot_and_account(
    a: tuple[int, int, int], b: tuple[int, int, int]
) -> None:
    ids = ClientOrderIds("binance", "ns/bot", "acct")
    assert (ids.build(*a) == ids.build(*b)) == (a == b)


def test_bots_sharing_an_account_get_different_ids() -> None:
    a = ClientOrderIds("binance", "ns/alpha", "shared")
    b = ClientOrderIds("binance", "ns/beta", "shared")
    same_ns_name = ClientOrderIds("binance", "other/alpha", "shared")
    assert a.owner != b.owner != same_ns_name.owner
    assert a.build(0, 1, 1) != b.build(0, 1, 1)
    assert a.owns(a.build(0, 1, 1)) and not b.owns(a.build(0, 1, 1))


@given(
    st.lists(st.tuples(shards, epochs, st.integers(0, 10**6)), min_size=1, max_size=50, unique=True)
)
def test_many_ids_are_distinct(tuples: list[tuple[int, int, int]]) -> None:
    ids = ClientOrderIds("okx", "ns/bot", "acct")
    built = [ids.build(*t) for t in tuples]
    assert len(set(built)) == len(built)
    assert [(p.shard, p.epoch, p.seq) for p in map(ids.parse, built)] == tuples


@given(names, names, shards, epochs, st.integers(0, 36**10 - 1))
def test_gate_fits_every_shard_and_epoch_and_ten_digit_seqs(
    bot: str, account: str, shard: int, epoch: int, seq: int
) -> None:
    """gate's 28 characters after "t-" hold every shard and Lease epoch and sequence
    numbers below 36**10 (~3.6e15: over 100,000 years at 1,000 orders/s)."""
    cid = build_client_order_id("gate", bot, account, shard, epoch, seq)
    assert len(cid) <= 30 and EXCHANGE_RULES["gate"].pattern.fullmatch(cid)
    parts = parse_client_order_id("gate", cid)
    assert parts == ClientOrderIdParts(owner_hash(bot, account), shard, epoch, seq)


def test_gate_limit_is_enforced() -> None:
    with pytest.raises(ClientOrderIdError, match="30"):
        build_client_order_id("gate", "b", "a", 1295, 2**31 - 1, 2**63 - 1)


def test_kraken_limit_is_enforced() -> None:
    assert len(build_client_order_id("kraken", "b", "a", 1, 5, 36**4)) <= 18
    with pytest.raises(ClientOrderIdError, match="18"):
        build_client_order_id("kraken", "b", "a", 1, 2**31, 2**63)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "x0jsm6110132rs",  # wrong marker
        "t0jsm61",  # no fields
        "t0jsm611013",  # seq missing
        "t0jsm6110132rsz",  # trailing character
        "t0jsm6110132r",  # truncated seq
        "t0jsm6120013",  # non-canonical leading zero
        "t0jsm6100132rs",  # zero-length field
        "t0JSM6110132rs",  # uppercase owner
        "x-R4BD3S82abcdef",  # ccxt's own broker-prefixed id
    ],
)
def test_parse_rejects_foreign_or_malformed(text: str) -> None:
    with pytest.raises(ClientOrderIdError):
        decode_client_order_id(text)
    assert not ClientOrderIds("binance", "ns/b1", "acct").owns(text)


def test_prefix_is_required_when_the_exchange_has_one() -> None:
    with pytest.raises(ClientOrderIdError):
        parse_client_order_id("gate", "t0jsm6110132rs")


def test_negative_values_and_bad_owner_rejected() -> None:
    with pytest.raises(ClientOrderIdError):
        build_client_order_id("binance", "b", "a", 0, -1, 0)
    with pytest.raises(ClientOrderIdError):
        encode_client_order_id("ABCDEF", 0, 0, 0)


def test_order_params_carry_the_id_under_the_exchange_param() -> None:
    ids = ClientOrderIds("bybit", "ns/b", "a")
    cid = ids.build(2, 7, 99)
    assert ids.order_params(cid) == {"orderLinkId": cid}
    assert not ids.owns(None)
