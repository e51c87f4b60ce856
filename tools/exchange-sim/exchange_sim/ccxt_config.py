"""Point a stock ccxt ``binance`` class (REST and pro/WebSocket) at the simulator.

The mapping from a base URL (``ExchangeAccount.spec.endpoint``, e.g.
``http://127.0.0.1:PORT``) to ccxt's ``urls``/``options`` lives in the runtime, which uses
it in production; the simulator's helpers and tests re-use that single source so the two
can never drift apart. See ``tradebot_contracts.endpoint`` for the URL layout.
"""

from __future__ import annotations

from tradebot_contracts.endpoint import binance_overrides, non_local_urls

__all__ = ["binance_overrides", "non_local_urls"]
