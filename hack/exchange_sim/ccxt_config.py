"""Point a stock ccxt ``binance`` class (REST and pro/WebSocket) at a Binance-compatible
base URL, e.g. the simulator.

Endpoint convention (ExchangeAccount.spec.endpoint): a single base URL such as
``http://127.0.0.1:PORT``. Every Binance host is mapped onto it, keeping Binance's own
paths, and the WebSocket URLs use the same host with ``ws://`` (``wss://`` for https):

    REST  public/private  {base}/api/v3        v1   {base}/api/v1
          sapi, sapiV2..4 {base}/sapi/v1..v4   fapi*, dapi*, eapi*, papi* likewise
    WS    market streams  {ws}/ws              user data (WebSocket API) {ws}/ws-api/v3

Nothing is left pointing at binance.com: endpoints the simulator does not implement
answer 404 and are counted by its ledger (``unsupported_requests``), so a stray call fails
loudly instead of reaching a real exchange. The options disable the private ``sapi``
calls ccxt makes while loading markets and restrict markets to spot.

This module is deliberately dependency-free (it is copied by value into the runtime's own
config code path: the runtime must not import from hack/).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

_REST_PATHS: dict[str, str] = {
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

_WS_PATHS: dict[str, str] = {
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

_WS_API_PATHS: dict[str, str] = {
    "spot": "/ws-api/v3",
    "linear": "/ws-fapi/v1",
    "inverse": "/ws-dapi/v1",
}


def binance_overrides(base_url: str) -> dict[str, Any]:
    """ccxt constructor config that sends every binance/binance-pro request to ``base_url``.

    Merge it into the config passed to ``ccxt.async_support.binance(...)`` or
    ``ccxt.pro.binance(...)`` (ccxt deep-merges ``urls`` and ``options``), together with
    ``apiKey``/``secret``.
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"endpoint must be an http(s) base URL, got {base_url!r}")
    root = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    ws_root = ("wss" if parts.scheme == "https" else "ws") + root[len(parts.scheme) :]
    api: dict[str, Any] = {name: root + path for name, path in _REST_PATHS.items()}
    ws: dict[str, Any] = {name: ws_root + path for name, path in _WS_PATHS.items()}
    ws["ws-api"] = {name: ws_root + path for name, path in _WS_API_PATHS.items()}
    api["ws"] = ws
    urls = {"api": api, "test": api, "demo": api}
    return {
        "urls": urls,
        "options": {
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,  # sapi capital/config/getall is not simulated
            "fetchMargins": False,  # nor are the sapi margin pair lists
        },
    }


def non_local_urls(urls: Any, base_url: str) -> list[str]:
    """Every API URL inside a ccxt ``urls['api']`` tree that does not start at ``base_url``'s
    host (used by tests to prove nothing can reach a real exchange)."""
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
