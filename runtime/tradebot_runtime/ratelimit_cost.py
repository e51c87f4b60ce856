"""Cost of one exchange request in ccxt's rate-limit units, from ccxt's own tables.

ccxt describes every REST endpoint in ``describe()['api']`` as nested dicts
(api -> HTTP method -> path -> config) where config holds ``cost`` (a float, e.g. 0.2 for
Binance's POST order) and sometimes ``noSymbol``/``byLimit`` variants. The generated
implicit methods (``privatePostOrder`` / ``private_post_order``) carry the same config.
One cost unit lasts ``exchange.rateLimit`` milliseconds, so ccxt's own budget is
``1000 / rateLimit`` units per second (Binance: rateLimit 50 ms -> 20 units/s).

The cost is computed by the exchange's ``calculate_rate_limiter_cost`` (the function ccxt
itself calls before throttling), so the variants are honoured exactly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_CEILING, Decimal
from functools import cache
from typing import Any, Final

import ccxt
from ccxt.base.types import Entry

from tradebot_runtime.domain import to_decimal

_MILLI: Final = Decimal(1000)

# Unified methods the runtime calls -> the implicit endpoint ccxt uses for them (spot).
UNIFIED_ENDPOINTS: Final[dict[str, dict[str, str]]] = {
    "binance": {
        "create_order": "privatePostOrder",
        "cancel_order": "privateDeleteOrder",
        "cancel_all_orders": "privateDeleteOpenOrders",
        "fetch_order": "privateGetOrder",
        "fetch_open_orders": "privateGetOpenOrders",
        "fetch_my_trades": "privateGetMyTrades",
        "fetch_balance": "privateGetAccount",
        "fetch_ohlcv": "publicGetKlines",
        "fetch_ticker": "publicGetTicker24hr",
        "fetch_trades": "publicGetAggTrades",
        "fetch_order_book": "publicGetDepth",
        "fetch_time": "publicGetTime",
        "load_markets": "publicGetExchangeInfo",
        "fetch_markets": "publicGetExchangeInfo",
    },
}


class UnknownEndpoint(KeyError):
    """The exchange has no such implicit endpoint, or the unified method is not mapped."""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@cache
def _exchange(exchange_id: str) -> Any:
    """A ccxt instance used only for its tables (constructing one does no I/O)."""
    exchange_class = getattr(ccxt, exchange_id, None)
    if exchange_class is None:
        raise UnknownEndpoint(f"ccxt has no exchange {exchange_id!r}")
    return exchange_class()


def _entry(exchange: Any, name: str) -> Entry[Any] | None:
    for klass in type(exchange).__mro__:
        value = klass.__dict__.get(name)
        if isinstance(value, Entry):
            return value
    return None


def _resolve(exchange: Any, endpoint: str) -> tuple[list[str], str, str, Mapping[str, Any]]:
    """(api, HTTP method, path, config) for an implicit method name, a unified method name
    or ``"<api> <METHOD> <path>"``."""
    parts = endpoint.split()
    if len(parts) == 3:
        api, method, path = parts
        try:
            config = exchange.api[api][method.lower()][path]
        except (KeyError, TypeError):
            raise UnknownEndpoint(f"{exchange.id} has no endpoint {endpoint!r}") from None
        return [api], method.upper(), path, config if isinstance(config, Mapping) else {}
    unified = UNIFIED_ENDPOINTS.get(exchange.id, {})
    name = unified.get(_snake(endpoint), endpoint)
    entry = _entry(exchange, name)
    if entry is None:
        raise UnknownEndpoint(f"{exchange.id} has no implicit method or mapped call {endpoint!r}")
    return list(entry.api), str(entry.method), str(entry.path), entry.config


def request_cost(
    exchange: str | Any, endpoint: str, params: Mapping[str, Any] | None = None
) -> Decimal:
    """Cost of one request in ccxt rate-limit units.

    ``exchange`` is a ccxt id or instance (sync or async); ``endpoint`` an implicit method
    (``privatePostOrder``, ``private_post_order``), a mapped unified method
    (``create_order``/``createOrder``) or ``"private POST order"``. ``params`` are the
    request params (``symbol``, ``limit``) that select cost variants.
    """
    instance = _exchange(exchange) if isinstance(exchange, str) else exchange
    api, method, path, config = _resolve(instance, endpoint)
    cost = instance.calculate_rate_limiter_cost(api, method, path, dict(params or {}), config)
    return to_decimal(cost)


def units_per_second(exchange: str | Any) -> Decimal:
    """ccxt's own budget for the exchange: ``1000 / rateLimit`` cost units per second."""
    instance = _exchange(exchange) if isinstance(exchange, str) else exchange
    return _MILLI / to_decimal(instance.rateLimit)


WEIGHT_PER_UNIT: Final[dict[str, int]] = {"binance": 5}
"""Exchange request weight per ccxt cost unit, where ccxt's costs are the exchange's weights
scaled (Binance: 6,000 weight per minute = ccxt's 1,200 units; myTrades weight 20 = 4)."""


def budget_units_per_minute(
    exchange_id: str, requests_per_minute: int | None, weight_per_minute: int | None
) -> int | None:
    """The account's budget in ccxt units per minute from its ``rateLimit``: the tighter
    of ``requestsPerMinute`` (ccxt units) and ``weightPerMinute`` (exchange weight,
    converted where the exchange's weight-to-unit factor is known); None = ccxt's own."""
    budgets = [requests_per_minute] if requests_per_minute else []
    factor = WEIGHT_PER_UNIT.get(exchange_id)
    if weight_per_minute and factor:
        budgets.append(max(1, weight_per_minute // factor))
    return min(budgets) if budgets else None


def to_milli_units(cost: Decimal) -> int:
    """Cost in integer milli-units for the token bucket, rounded up (never under-charge)."""
    return int((cost * _MILLI).to_integral_value(rounding=ROUND_CEILING))
