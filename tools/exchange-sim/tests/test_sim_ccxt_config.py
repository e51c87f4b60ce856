"""The ccxt override convention: every URL of the stock classes points at the endpoint."""

from __future__ import annotations

import ccxt
import ccxt.async_support
import ccxt.pro
import pytest

from exchange_sim.ccxt_config import binance_overrides, non_local_urls

BASE = "http://127.0.0.1:4567"


@pytest.mark.parametrize("cls", [ccxt.binance, ccxt.async_support.binance, ccxt.pro.binance])
def test_no_url_is_left_pointing_at_binance(cls: type) -> None:
    exchange = cls(binance_overrides(BASE))
    for section in ("api", "test", "demo"):
        assert non_local_urls(exchange.urls[section], BASE) == [], section
    assert exchange.urls["api"]["public"] == BASE + "/api/v3"
    assert exchange.urls["api"]["sapi"] == BASE + "/sapi/v1"


def test_websocket_urls_use_the_same_host() -> None:
    exchange = ccxt.pro.binance(binance_overrides(BASE + "/"))
    ws = exchange.urls["api"]["ws"]
    assert ws["spot"] == "ws://127.0.0.1:4567/ws"
    assert ws["ws-api"]["spot"] == "ws://127.0.0.1:4567/ws-api/v3"
    secure = binance_overrides("https://sim.example:8443")["urls"]["api"]["ws"]
    assert secure["ws-api"]["spot"] == "wss://sim.example:8443/ws-api/v3"


def test_options_keep_ccxt_on_spot_and_off_sapi() -> None:
    options = ccxt.binance(binance_overrides(BASE)).options
    assert options["fetchMarkets"]["types"] == ["spot"]
    assert options["fetchCurrencies"] is False and options["fetchMargins"] is False


def test_non_local_urls_finds_strays() -> None:
    assert non_local_urls({"a": {"b": "https://api.binance.com/api/v3"}}, BASE) == [
        "https://api.binance.com/api/v3"
    ]
    with pytest.raises(ValueError, match="http"):
        binance_overrides("127.0.0.1:4567")


def test_the_runtime_computes_the_same_overrides() -> None:
    # The runtime may not import hack/, so it carries its own copy of the convention:
    # this keeps the two from drifting apart.
    from tradebot_contracts.endpoint import endpoint_overrides

    assert endpoint_overrides("binance", BASE) == binance_overrides(BASE)
