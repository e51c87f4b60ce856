"""Signature and timestamp checks of the simulator, against what ccxt actually sends."""

from __future__ import annotations

from typing import Any

import ccxt
import ccxt.pro
import pytest

from exchange_sim.auth import check_timestamp, verify_rest, verify_ws
from exchange_sim.ccxt_config import binance_overrides
from exchange_sim.errors import BinanceError

KEY, SECRET = "k" * 64, "s" * 64
URL = "http://127.0.0.1:1"


def signed(method: str, params: dict[str, object]) -> dict[str, Any]:
    exchange = ccxt.binance({**binance_overrides(URL), "apiKey": KEY, "secret": SECRET})
    return exchange.sign("order", ["private"], method, params)  # type: ignore[no-any-return]


def test_a_ccxt_signed_post_body_verifies() -> None:
    req = signed(
        "POST",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "quantity": "0.5",
            "price": "100",
            "newClientOrderId": "a:b/c-1",
        },
    )
    assert req["headers"]["X-MBX-APIKEY"] == KEY
    verify_rest("", req["body"], SECRET)
    with pytest.raises(BinanceError) as err:
        verify_rest("", req["body"].replace("quantity=0.5", "quantity=5"), SECRET)
    assert err.value.code == -1022
    with pytest.raises(BinanceError) as wrong_key:
        verify_rest("", req["body"], "other")
    assert wrong_key.value.code == -1022


def test_a_ccxt_signed_query_string_verifies() -> None:
    req = signed("GET", {"symbol": "BTCUSDT", "origClientOrderId": "x-1-2"})
    query = req["url"].split("?", 1)[1]
    verify_rest(query, "", SECRET)
    unsigned = "&".join(p for p in query.split("&") if not p.startswith("signature="))
    with pytest.raises(BinanceError) as err:
        verify_rest(unsigned, "", SECRET)
    assert err.value.code == -1102


def test_ws_api_params_signed_by_ccxt_pro_verify() -> None:
    exchange = ccxt.pro.binance({**binance_overrides(URL), "apiKey": KEY, "secret": SECRET})
    params = exchange.sign_params({})
    assert params["apiKey"] == KEY and "timestamp" in params
    verify_ws(params, SECRET)
    with pytest.raises(BinanceError) as err:
        verify_ws({**params, "recvWindow": 1}, SECRET)
    assert err.value.code == -1022


@pytest.mark.parametrize(
    ("ts", "window", "server", "code"),
    [
        ("1000", None, 1000, None),
        ("1000", None, 6000, None),  # exactly recvWindow (5000) old is still fine
        ("1000", None, 6001, -1021),
        ("1000", "10000", 6001, None),
        ("2000", None, 1000, -1021),  # 1000 ms ahead of the server
        ("1999", None, 1000, None),
        ("1000", "60001", 1000, -1131),
        (None, None, 1000, -1102),
    ],
)
def test_timestamp_and_recv_window(
    ts: str | None, window: str | None, server: int, code: int | None
) -> None:
    if code is None:
        check_timestamp(ts, window, server, 60_000)
        return
    with pytest.raises(BinanceError) as err:
        check_timestamp(ts, window, server, 60_000)
    assert err.value.code == code
