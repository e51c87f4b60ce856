"""ccxt constructor overrides that point a stock exchange class at
``ExchangeAccount.spec.endpoint`` (a single base URL such as ``http://127.0.0.1:PORT``,
e.g. the exchange simulator, or a regional/self-hosted gateway).

Every API host of the exchange is mapped onto the base URL, keeping the exchange's own
paths; WebSocket URLs use the same host with ``ws://`` (``wss://`` for https). Nothing is
left pointing at the real exchange (``non_local_urls`` proves it). This is the single
source of the mapping: the exchange simulator (tools/exchange-sim) imports it from here.

Binance spot (REST and ccxt.pro):

    REST  public/private  {base}/api/v3        v1   {base}/api/v1
          sapi, sapiV2..4 {base}/sapi/v1..v4   fapi*, dapi*, eapi*, papi* likewise
    WS    market streams  {ws}/ws              user data (WebSocket API) {ws}/ws-api/v3
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

_BINANCE_REST: Final[dict[str, str]] = {
    "public": "/api/v3",
    "private": "/api/v3",
    "v1": "/api/v1",
    "sapi": "/sapi/v1",
    "sapiV2": "/sapi/v2",
    "sapiV3": "/sapi/v3",
    "sapiV4": "/sapi/v4",
    "fapiPublic": "/fapi/v1",
    "fapiPublicV2": "/fapi/v2",
    "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1",
    "fapiPrivateV2": "/fapi/v2",
    "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data",
    "dapiPublic": "/dapi/v1",
    "dapiPrivate": "/dapi/v1",
    "dapiPrivateV2": "/dapi/v2",
    "dapiData": "/futures/data",
    "eapiPublic": "/eapi/v1",
    "eapiPrivate": "/eapi/v1",
    "papi": "/papi/v1",
    "papiV2": "/papi/v2",
}
_BINANCE_WS: Final[dict[str, str]] = {
    "spot": "/ws",
    "margin": "/ws",
    "linear": "/ws",
    "inverse": "/ws",
    "stock": "/equity/ws",
    "option": "/public/ws",
    "optionMarket": "/market/ws",
    "optionPrivate": "/private/ws",
    "papi": "/pm/ws",
}
_BINANCE_WS_API: Final[dict[str, str]] = {
    "spot": "/ws-api/v3",
    "linear": "/ws-fapi/v1",
    "inverse": "/ws-dapi/v1",
}

SUPPORTED: Final = frozenset({"binance"})


class EndpointError(ValueError):
    """The endpoint is not a usable base URL, or the exchange has no mapping."""


def _roots(base_url: str) -> tuple[str, str]:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EndpointError(f"endpoint must be an http(s) base URL, got {base_url!r}")
    root = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    ws_root = ("wss" if parts.scheme == "https" else "ws") + root[len(parts.scheme) :]
    return root, ws_root


def binance_overrides(base_url: str) -> dict[str, Any]:
    root, ws_root = _roots(base_url)
    api: dict[str, Any] = {name: root + path for name, path in _BINANCE_REST.items()}
    ws: dict[str, Any] = {name: ws_root + path for name, path in _BINANCE_WS.items()}
    ws["ws-api"] = {name: ws_root + path for name, path in _BINANCE_WS_API.items()}
    api["ws"] = ws
    return {
        "urls": {"api": api, "test": api, "demo": api},
        "options": {
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
        },
    }


def endpoint_overrides(exchange_id: str, base_url: str) -> dict[str, Any]:
    """ccxt constructor config (``urls`` and ``options``) for ``exchange_id`` at
    ``base_url``; EndpointError for exchanges without a mapping (refusing is safer than
    silently trading on the real exchange)."""
    if exchange_id == "binance":
        return binance_overrides(base_url)
    raise EndpointError(f"no endpoint override mapping for exchange {exchange_id!r}")


def non_local_urls(urls: Any, base_url: str) -> list[str]:
    """Every URL in a ccxt ``urls['api']`` tree not on ``base_url``'s host."""
    host = urlsplit(base_url).netloc
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, str) and urlsplit(node).netloc != host:
            found.append(node)

    walk(urls)
    return found
