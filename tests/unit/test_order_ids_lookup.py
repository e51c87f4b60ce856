"""Issue 15: the order lookup and cancel by client id sent Binance's ``origClientOrderId``
on every exchange; okx, bybit and the others read their own parameter (ccxt's own code
says which), so a lookup there could never find the order and an UNKNOWN one was
abandoned while it rested on the book."""

from __future__ import annotations

import inspect

import ccxt
import pytest

from tradebot_contracts.order_ids import EXCHANGE_RULES, ClientOrderIds


@pytest.mark.parametrize(
    ("exchange", "param"),
    [("binance", "origClientOrderId"), ("binanceusdm", "origClientOrderId"),
     ("okx", "clOrdId"), ("bybit", "orderLinkId"), ("kucoin", "clientOid")],
)  # fmt: skip
def test_lookup_uses_the_exchanges_own_parameter(exchange: str, param: str) -> None:
    ids = ClientOrderIds(exchange, "ns/bot", "acct")
    cid = ids.build(0, 1, 1)
    assert ids.lookup_params(cid) == {param: cid}


@pytest.mark.parametrize("exchange", sorted(EXCHANGE_RULES))
def test_the_lookup_parameter_is_one_stock_ccxt_reads(exchange: str) -> None:
    ids = ClientOrderIds(exchange, "ns/bot", "acct")
    (param,) = ids.lookup_params("x")
    own = [c for c in getattr(ccxt, exchange).__mro__ if c.__module__.startswith("ccxt.") and
           not c.__module__.startswith("ccxt.base")]  # fmt: skip
    source = "".join(inspect.getsource(c) for c in own)
    assert f"'{param}'" in source, f"ccxt.{exchange} never reads {param!r}"
