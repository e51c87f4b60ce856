"""Money figures in the Lease heartbeat: quantized to the quote currency's precision (from
the loaded ccxt markets, 8 places when unknown) and labelled with the currency; the
encoder itself fits any Decimal into the contract's 32 characters (never dropped, never
an exception that stops the heartbeat).

Seen live: an unrounded PnL (``-0.00598129409999999999999998123``) in the heartbeat, and
the bot's status stayed at readyShards 0 / state Unknown while the bot traded.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async
import pytest

from tradebot_contracts.heartbeat import Heartbeat, decode_heartbeat, encode_heartbeat
from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_contracts.types import DECIMAL_MAX_LENGTH
from tradebot_runtime.exchange.client import ExchangeClient
from tradebot_runtime.precision import DEFAULT_MONEY_PLACES, MoneyPrecision, money_precision
from tradebot_runtime.status import ShardView, build_heartbeat

DEMO = "-0.00598129409999999999999998123"
"""The exact value of the demo."""
MONEY_FIELDS = ("positionNotional", "realizedPnl", "unrealizedPnl")
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def view(**figures: str) -> ShardView:
    values = {"position_notional": "0", "realized_pnl": "0", "unrealized_pnl": "0", **figures}
    return ShardView(
        shard=0, epoch=3, reconciled=True, stopped=False, open_orders=0, mismatches=0,
        **{k: Decimal(v) for k, v in values.items()},  # type: ignore[arg-type]
    )  # fmt: skip


def wire(v: ShardView, money: MoneyPrecision | None) -> dict[str, Any]:
    """The heartbeat as the operator reads it (after checking it decodes)."""
    hb = build_heartbeat(
        pod="p-1", shard=0, epoch=3, now=NOW, view=v, trading_state="Active",
        config_version="abc", money=money,
    )  # fmt: skip
    text = encode_heartbeat(hb)
    decode_heartbeat(text)
    payload: dict[str, Any] = json.loads(text)
    return payload


def contract_beat(**figures: str) -> Heartbeat:
    return Heartbeat.model_validate(
        {"pod": "p-1", "epoch": 3, "shard": 0, "ts": NOW, "state": "Trading", "ready": True,
         **{k: Decimal(v) for k, v in figures.items()}}
    )  # fmt: skip


# -- the runtime quantizes at the source ----------------------------------------------------


def test_demo_value_is_published_at_the_quote_precision_with_the_currency() -> None:
    payload = wire(view(realized_pnl=DEMO), MoneyPrecision("USDT", 8))
    assert payload["realizedPnl"] == "-0.00598129"
    assert payload["quoteCurrency"] == "USDT"
    assert decode_heartbeat(json.dumps(payload)).realized_pnl == Decimal("-0.00598129")


def test_every_money_figure_is_quantized() -> None:
    payload = wire(
        view(position_notional="1234.567891234", realized_pnl=DEMO,
             unrealized_pnl="0.0000000049999"),
        MoneyPrecision("USDT", 8),
    )  # fmt: skip
    assert [payload[k] for k in MONEY_FIELDS] == ["1234.56789123", "-0.00598129", "0.00000000"]


def test_a_large_value_keeps_its_integer_digits() -> None:
    payload = wire(view(realized_pnl="98765432109876.123456789"), MoneyPrecision("USDT", 8))
    assert payload["realizedPnl"] == "98765432109876.12345679"


def test_an_absurd_value_still_gives_a_heartbeat() -> None:
    """Beyond what quantizing can hold: clamped by the encoder, the heartbeat still goes."""
    payload = wire(view(realized_pnl="-1E+120"), MoneyPrecision("USDT", 8))
    assert payload["realizedPnl"] == "-" + "9" * 31


def test_two_decimal_quote_like_usd() -> None:
    payload = wire(
        view(position_notional="1234.5", realized_pnl="12.3456", unrealized_pnl="-0.004"),
        MoneyPrecision("USD", 2),
    )  # fmt: skip
    assert [payload[k] for k in MONEY_FIELDS] == ["1234.50", "12.35", "0.00"]  # never "-0.00"
    assert payload["quoteCurrency"] == "USD"


def test_zero_decimal_quote() -> None:
    payload = wire(view(realized_pnl="-1234.6", unrealized_pnl="0.4"), MoneyPrecision("JPY", 0))
    assert (payload["realizedPnl"], payload["unrealizedPnl"]) == ("-1235", "0")


def test_without_a_known_precision_the_fallback_is_8_places() -> None:
    assert DEFAULT_MONEY_PLACES == 8
    assert wire(view(realized_pnl=DEMO), None)["realizedPnl"] == "-0.00598129"


# -- where the precision comes from -------------------------------------------------------


def market(symbol: str, **precision: str) -> dict[str, Any]:
    base, quote = symbol.split("/")
    return {
        "id": base + quote, "symbol": symbol, "base": base, "quote": quote, "baseId": base,
        "quoteId": quote, "type": "spot", "spot": True, "active": True,
        "precision": {"amount": "0.00001", **precision},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("markets", "currency", "places"),
    [
        # Binance spot: quotePrecision 8 -> precision.quote 1e-8
        ([market("BTC/USDT", price="0.01", quote="0.00000001")], "USDT", 8),
        ([market("BTC/USD", price="0.01")], "USD", 2),  # only a price tick: 2 places
        ([market("BTC/JPY", price="1")], "JPY", 0),
        ([market("BTC/KRW", price="1000")], "KRW", 0),  # a tick above 1 is still 0 places
    ],
)
async def test_precision_from_the_loaded_ccxt_market(
    markets: list[dict[str, Any]], currency: str, places: int
) -> None:
    exchange = ccxt_async.binance()  # TICK_SIZE precision mode, markets set in memory
    try:
        exchange.set_markets(markets)
        client = ExchangeClient(exchange, ClientOrderIds("binance", "ns/bot", "acct"))
        assert client.money_precision(currency) == MoneyPrecision(currency, places)
    finally:
        await exchange.close()


def test_precision_sources_in_order_and_the_fallback() -> None:
    usdt = [market("BTC/USDT", price="0.01", quote="0.000001")]
    currencies = {"USDT": {"code": "USDT", "precision": "0.0001"}}
    found = money_precision("USDT", currencies=currencies, markets=usdt, tick_size_mode=True)
    assert found.places == 4  # the currency's own precision first
    found = money_precision("USDT", currencies={}, markets=usdt, tick_size_mode=True)
    assert found.places == 6  # then the market's quote precision
    found = money_precision("USDT", currencies=None, markets=None, tick_size_mode=True)
    assert found == MoneyPrecision("USDT", DEFAULT_MONEY_PLACES)
    # decimal-places precision mode: the number is a count of places
    found = money_precision("USD", currencies={"USD": {"precision": 2}}, markets=None,
                            tick_size_mode=False)  # fmt: skip
    assert found.places == 2
    found = money_precision("JPY", currencies={"JPY": {"precision": 0}}, markets=None,
                            tick_size_mode=False)  # fmt: skip
    assert found.places == 0


# -- the encoder fits whatever it is given -------------------------------------------------


def test_exact_demo_value_round_trips_as_a_valid_heartbeat() -> None:
    hb = contract_beat(realized_pnl=DEMO)
    decoded = decode_heartbeat(encode_heartbeat(hb))
    assert decoded.realized_pnl == Decimal(DEMO)


@pytest.mark.parametrize(
    ("value", "fitted"),
    [
        # the demo's shape with one more significant digit (28, the Decimal default)
        ("-0.005981294099999999999999998123", "-0.00598129409999999999999999812"),
        ("0.0059812940999999999999999981234", "0.005981294099999999999999998123"),
        ("123456789012345678901234567890.123", "123456789012345678901234567890.1"),
        ("-99999999999999999999999999999.99", "-100000000000000000000000000000"),
    ],
)
def test_a_decimal_that_does_not_fit_is_quantized_not_dropped(value: str, fitted: str) -> None:
    text = encode_heartbeat(contract_beat(realized_pnl=value, unrealized_pnl=value))
    payload = json.loads(text)
    assert (payload["realizedPnl"], payload["unrealizedPnl"]) == (fitted, fitted)
    assert len(fitted) <= DECIMAL_MAX_LENGTH
    assert decode_heartbeat(text).realized_pnl == Decimal(fitted)


def test_a_value_beyond_32_integer_digits_is_clamped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    text = encode_heartbeat(contract_beat(position_notional="1E+40", realized_pnl="-1E+40"))
    payload = json.loads(text)
    assert payload["positionNotional"] == "9" * 32
    assert payload["realizedPnl"] == "-" + "9" * 31
    assert "positionNotional" in caplog.text and "realizedPnl" in caplog.text
    decode_heartbeat(text)


def test_a_long_non_ascii_message_is_shortened_not_refused() -> None:
    hb = contract_beat().model_copy(update={"pod": "p" * 253, "message": "€" * 200})
    text = encode_heartbeat(hb)
    decoded = decode_heartbeat(text)
    assert decoded.message is not None and decoded.message.startswith("€€€")
