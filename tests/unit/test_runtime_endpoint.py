"""The runtime's endpoint mapping equals the simulator's and leaves nothing pointing away."""

from __future__ import annotations

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

from tradebot_contracts.endpoint import EndpointError, endpoint_overrides, non_local_urls


@pytest.mark.parametrize("base", ["http://127.0.0.1:1234", "https://gw.example:8443/x/"])
async def test_binance_all_urls_redirected(base: str) -> None:
    for cls in (ccxt_async.binance, ccxt_pro.binance):
        exchange = cls(endpoint_overrides("binance", base))
        try:
            assert non_local_urls(exchange.urls["api"], base) == []
        finally:
            await exchange.close()


def test_ws_scheme_follows_http_scheme() -> None:
    urls = endpoint_overrides("binance", "https://h:1")["urls"]["api"]
    assert urls["ws"]["spot"] == "wss://h:1/ws"
    assert urls["public"] == "https://h:1/api/v3"


@pytest.mark.parametrize("bad", ["127.0.0.1:1", "ftp://h/", "http://"])
def test_bad_endpoint_refused(bad: str) -> None:
    with pytest.raises(EndpointError):
        endpoint_overrides("binance", bad)


def test_unmapped_exchange_refused() -> None:
    with pytest.raises(EndpointError):
        endpoint_overrides("okx", "http://127.0.0.1:1")
