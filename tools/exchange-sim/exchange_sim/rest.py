"""Binance spot REST endpoints (/api/v3/...).

Every request goes through ``RestFront.handle``: faults that fire before execution, the
weight limiter, authentication for signed endpoints, the endpoint itself, then faults that
fire after execution (which is how "the order was placed but the reply never came" is
simulated). Handlers are synchronous: the engine is pure, so a request is atomic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from . import errors, serialize
from .auth import check_timestamp, verify_rest
from .decimals import ZERO, fmt8, parse_number
from .engine import AccountState, OrderRequest
from .errors import BinanceError
from .faults import Fault
from .marketdata import check_interval, klines, rolling_24h
from .models import Event, ExecutionReport, Order
from .ratelimit import RateLimited, request_weight

if TYPE_CHECKING:
    from .server import Simulator

JSON = Any
_dumps = json.JSONEncoder(separators=(",", ":")).encode


@dataclass
class Ctx:
    sim: Simulator
    method: str
    path: str
    params: dict[str, str]
    account: AccountState | None
    now: int
    events: list[Event] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def acct(self) -> AccountState:
        assert self.account is not None
        return self.account

    def req(self, name: str) -> str:
        value = self.params.get(name)
        if value is None or value == "":
            raise errors.missing(name)
        return value

    def int_param(self, name: str, default: int | None = None) -> int | None:
        raw = self.params.get(name)
        if raw is None or raw == "":
            return default
        if not raw.lstrip("-").isdigit():
            raise errors.illegal_chars(name, "^[0-9]{1,20}$")
        return int(raw)

    def limit(self, default: int, maximum: int) -> int:
        value = self.int_param("limit", default)
        assert value is not None
        return max(1, min(value, maximum))

    def num(self, name: str) -> Decimal | None:
        raw = self.params.get(name)
        return None if raw is None else parse_number(name, raw)


Handler = Callable[[Ctx], JSON]


@dataclass(frozen=True)
class Endpoint:
    handler: Handler
    security: str = "NONE"  # NONE | USER_STREAM (key only) | SIGNED


def _symbol(ctx: Ctx) -> str:
    symbol = ctx.req("symbol")
    ctx.sim.engine.market(symbol)
    return symbol


def _symbols_param(ctx: Ctx) -> list[str] | None:
    """``symbol=X`` or ``symbols=["X","Y"]``; None for all markets."""
    if "symbol" in ctx.params:
        return [_symbol(ctx)]
    raw = ctx.params.get("symbols")
    if raw is None:
        return None
    try:
        names = json.loads(raw)
    except ValueError as exc:
        raise errors.illegal_chars("symbols", '^\\["[A-Z0-9]+"(,"[A-Z0-9]+")*\\]$') from exc
    for name in names:
        ctx.sim.engine.market(name)
    return list(names)


# --- public market data ---


def ping(ctx: Ctx) -> JSON:
    return {}


def server_time(ctx: Ctx) -> JSON:
    return {"serverTime": ctx.now}


def exchange_info(ctx: Ctx) -> JSON:
    wanted = _symbols_param(ctx)
    engine = ctx.sim.engine
    limits = ctx.sim.config.limits
    specs = [m.spec for s, m in engine.markets.items() if wanted is None or s in wanted]
    return {
        "timezone": "UTC",
        "serverTime": ctx.now,
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": limits.weight_per_minute,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": limits.orders_per_10s,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "DAY",
                "intervalNum": 1,
                "limit": limits.orders_per_day,
            },
            {
                "rateLimitType": "RAW_REQUESTS",
                "interval": "MINUTE",
                "intervalNum": 5,
                "limit": 61000,
            },
        ],
        "exchangeFilters": [],
        "symbols": [serialize.symbol_info(spec) for spec in specs],
    }


def depth(ctx: Ctx) -> JSON:
    market = ctx.sim.engine.market(_symbol(ctx))
    return serialize.depth(market, ctx.limit(100, 5000))


def recent_trades(ctx: Ctx) -> JSON:
    market = ctx.sim.engine.market(_symbol(ctx))
    trades = list(market.trades)[-ctx.limit(500, 1000) :]
    return [serialize.public_trade(t) for t in trades]


def agg_trades(ctx: Ctx) -> JSON:
    market = ctx.sim.engine.market(_symbol(ctx))
    limit = ctx.limit(500, 1000)
    from_id = ctx.int_param("fromId")
    start, end = ctx.int_param("startTime"), ctx.int_param("endTime")
    trades = list(market.trades)
    if from_id is not None:
        trades = [t for t in trades if t.trade_id >= from_id][:limit]
    elif start is not None or end is not None:
        trades = [
            t
            for t in trades
            if (start is None or t.time >= start) and (end is None or t.time <= end)
        ][:limit]
    else:
        trades = trades[-limit:]
    return [serialize.agg_trade(t) for t in trades]


def get_klines(ctx: Ctx) -> JSON:
    market = ctx.sim.engine.market(_symbol(ctx))
    interval = ctx.req("interval")
    check_interval(interval)
    rows = klines(
        market.candles,
        interval,
        ctx.int_param("startTime"),
        ctx.int_param("endTime"),
        ctx.limit(500, 1000),
    )
    return [serialize.kline_row(c, interval) for c in rows]


def avg_price(ctx: Ctx) -> JSON:
    market = ctx.sim.engine.market(_symbol(ctx))
    rows = klines(market.candles, "1m", None, None, 5)
    volume = sum((c.volume for c in rows), ZERO)
    quote = sum((c.quote_volume for c in rows), ZERO)
    price = quote / volume if volume else market.last_price
    return {"mins": 5, "price": fmt8(price), "closeTime": ctx.now}


def _per_symbol(ctx: Ctx, render: Callable[[str], JSON]) -> JSON:
    wanted = _symbols_param(ctx)
    if "symbol" in ctx.params:
        return render(ctx.params["symbol"])
    names = wanted if wanted is not None else list(ctx.sim.engine.markets)
    return [render(name) for name in names]


def ticker_24h(ctx: Ctx) -> JSON:
    engine = ctx.sim.engine

    def render(symbol: str) -> JSON:
        m = engine.markets[symbol]
        stats = rolling_24h(m.candles, ctx.now, m.last_price)
        return serialize.ticker_24h(m, stats, ctx.now)

    return _per_symbol(ctx, render)


def ticker_price(ctx: Ctx) -> JSON:
    markets = ctx.sim.engine.markets
    return _per_symbol(ctx, lambda s: {"symbol": s, "price": fmt8(markets[s].last_price)})


def book_ticker(ctx: Ctx) -> JSON:
    markets = ctx.sim.engine.markets
    return _per_symbol(ctx, lambda s: serialize.book_ticker(markets[s]))


# --- account and orders (signed) ---


def get_account(ctx: Ctx) -> JSON:
    omit = ctx.params.get("omitZeroBalances", "false").lower() == "true"
    return serialize.account(ctx.acct, ctx.now, omit)


def _order_request(ctx: Ctx) -> OrderRequest:
    symbol = _symbol(ctx)
    order_type = ctx.req("type")
    side = ctx.req("side")
    return OrderRequest(
        symbol=symbol,
        side=side,
        type=order_type,
        quantity=ctx.num("quantity"),
        price=ctx.num("price"),
        quote_order_qty=ctx.num("quoteOrderQty"),
        time_in_force=ctx.params.get("timeInForce"),
        client_order_id=ctx.params.get("newClientOrderId") or None,
        stp_mode=ctx.params.get("selfTradePreventionMode"),
    )


def new_order(ctx: Ctx) -> JSON:
    request = _order_request(ctx)
    resp_type = ctx.params.get("newOrderRespType", "FULL")
    if resp_type not in ("ACK", "RESULT", "FULL"):
        raise errors.illegal_chars("newOrderRespType", "^(ACK|RESULT|FULL)$")
    c10, cday = ctx.sim.limiter.count_order(ctx.acct.name, ctx.now)
    ctx.headers["X-MBX-ORDER-COUNT-10S"] = str(c10)
    ctx.headers["X-MBX-ORDER-COUNT-1D"] = str(cday)
    order, events = ctx.sim.engine.place_order(ctx.acct.name, request, ctx.now)
    ctx.events.extend(events)
    ctx.sim.ledger.record_order(order)
    if resp_type == "ACK":
        return serialize.order_ack(order, ctx.now)
    if resp_type == "RESULT":
        return serialize.order_result(order, ctx.now)
    fills = [e.fill for e in events if isinstance(e, ExecutionReport) and e.fill is not None]
    return serialize.order_full(order, ctx.now, fills)


def test_order(ctx: Ctx) -> JSON:
    """Validates like a new order without placing it (Binance's /order/test)."""
    request = _order_request(ctx)
    engine = ctx.sim.engine
    engine.validate(ctx.acct, engine.market(request.symbol), request)
    return {}


def _order_ref(ctx: Ctx) -> tuple[int | None, str | None]:
    return ctx.int_param("orderId"), ctx.params.get("origClientOrderId") or None


def query_order(ctx: Ctx) -> JSON:
    order_id, client_id = _order_ref(ctx)
    order = ctx.sim.engine.get_order(ctx.acct.name, _symbol(ctx), order_id, client_id)
    return serialize.order_query(order)


def cancel_order(ctx: Ctx) -> JSON:
    order_id, client_id = _order_ref(ctx)
    order, events = ctx.sim.engine.cancel_order(
        ctx.acct.name, _symbol(ctx), order_id, client_id, ctx.now
    )
    ctx.events.extend(events)
    cancel_id = ctx.params.get("newClientOrderId") or ctx.sim.engine.new_client_id()
    return serialize.order_canceled(order, cancel_id, ctx.now)


def open_orders(ctx: Ctx) -> JSON:
    symbol = _symbol(ctx) if "symbol" in ctx.params else None
    return [serialize.order_query(o) for o in ctx.sim.engine.open_orders(ctx.acct.name, symbol)]


def cancel_open_orders(ctx: Ctx) -> JSON:
    orders, events = ctx.sim.engine.cancel_all(ctx.acct.name, _symbol(ctx), ctx.now)
    ctx.events.extend(events)
    if not orders:
        raise BinanceError(-2011)
    engine = ctx.sim.engine
    return [serialize.order_canceled(o, engine.new_client_id(), ctx.now) for o in orders]


def all_orders(ctx: Ctx) -> JSON:
    orders: list[Order] = ctx.sim.engine.all_orders(
        ctx.acct.name,
        _symbol(ctx),
        ctx.int_param("orderId"),
        ctx.int_param("startTime"),
        ctx.int_param("endTime"),
        ctx.limit(500, 1000),
    )
    return [serialize.order_query(o) for o in orders]


def my_trades(ctx: Ctx) -> JSON:
    fills = ctx.sim.engine.my_trades(
        ctx.acct.name,
        _symbol(ctx),
        ctx.int_param("orderId"),
        ctx.int_param("fromId"),
        ctx.int_param("startTime"),
        ctx.int_param("endTime"),
        ctx.limit(500, 1000),
    )
    return [serialize.my_trade(f) for f in fills]


def listen_key_create(ctx: Ctx) -> JSON:
    return {"listenKey": ctx.sim.hub.create_listen_key(ctx.acct.name)}


def listen_key_keepalive(ctx: Ctx) -> JSON:
    ctx.sim.hub.check_listen_key(ctx.req("listenKey"), ctx.acct.name)
    return {}


def listen_key_delete(ctx: Ctx) -> JSON:
    ctx.sim.hub.delete_listen_key(ctx.req("listenKey"), ctx.acct.name)
    return {}


ROUTES: dict[tuple[str, str], Endpoint] = {
    ("GET", "/api/v3/ping"): Endpoint(ping),
    ("GET", "/api/v3/time"): Endpoint(server_time),
    ("GET", "/api/v3/exchangeInfo"): Endpoint(exchange_info),
    ("GET", "/api/v3/depth"): Endpoint(depth),
    ("GET", "/api/v3/trades"): Endpoint(recent_trades),
    ("GET", "/api/v3/aggTrades"): Endpoint(agg_trades),
    ("GET", "/api/v3/klines"): Endpoint(get_klines),
    ("GET", "/api/v3/uiKlines"): Endpoint(get_klines),
    ("GET", "/api/v3/avgPrice"): Endpoint(avg_price),
    ("GET", "/api/v3/ticker/24hr"): Endpoint(ticker_24h),
    ("GET", "/api/v3/ticker/price"): Endpoint(ticker_price),
    ("GET", "/api/v3/ticker/bookTicker"): Endpoint(book_ticker),
    ("GET", "/api/v3/account"): Endpoint(get_account, "SIGNED"),
    ("POST", "/api/v3/order"): Endpoint(new_order, "SIGNED"),
    ("POST", "/api/v3/order/test"): Endpoint(test_order, "SIGNED"),
    ("GET", "/api/v3/order"): Endpoint(query_order, "SIGNED"),
    ("DELETE", "/api/v3/order"): Endpoint(cancel_order, "SIGNED"),
    ("GET", "/api/v3/openOrders"): Endpoint(open_orders, "SIGNED"),
    ("DELETE", "/api/v3/openOrders"): Endpoint(cancel_open_orders, "SIGNED"),
    ("GET", "/api/v3/allOrders"): Endpoint(all_orders, "SIGNED"),
    ("GET", "/api/v3/myTrades"): Endpoint(my_trades, "SIGNED"),
    ("POST", "/api/v3/userDataStream"): Endpoint(listen_key_create, "USER_STREAM"),
    ("PUT", "/api/v3/userDataStream"): Endpoint(listen_key_keepalive, "USER_STREAM"),
    ("DELETE", "/api/v3/userDataStream"): Endpoint(listen_key_delete, "USER_STREAM"),
}


class _Dropped(Exception):
    """The connection was aborted on purpose: send nothing."""


class RestFront:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.requests = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        sim = self.sim
        self.requests += 1
        method, path = request.method, request.path
        endpoint = ROUTES.get((method, path))
        if endpoint is None:
            sim.ledger.record_unsupported(method, path)
            body = {"code": -1, "msg": f"exchange_sim: unsupported endpoint {method} {path}"}
            return web.Response(text=_dumps(body), status=404, content_type="application/json")
        raw_query = request.rel_url.raw_query_string
        raw_body = await request.text() if request.can_read_body else ""
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        params.update(parse_qsl(raw_body, keep_blank_values=True))
        api_key = request.headers.get("X-MBX-APIKEY")
        account = sim.engine.account_by_key(api_key) if api_key else None
        account_name = account.name if account else None
        bucket = f"key:{api_key}" if account else f"ip:{request.remote}"
        ctx = Ctx(sim, method, path, params, account, sim.now(account_name))
        status = 200
        retry_after: int | None = None
        try:
            wall = sim.wall_now()  # rules expire by wall time, not by the skewed clock
            held = False
            for fault in sim.faults.for_request(method, path, account_name, "before", wall):
                await self._apply(request, fault, before=True)
                held = True
            if held:  # processed now, not on arrival: recvWindow counts from the signature
                ctx.now = sim.now(account_name)
            lowered = None if sim.faults.empty else sim.faults.weight_limit(account_name, wall)
            weight = request_weight(method, path, params)
            used = sim.limiter.charge(bucket, weight, ctx.now, lowered)
            ctx.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
            self._authenticate(ctx, endpoint, api_key, raw_query, raw_body)
            body = endpoint.handler(ctx)
        except _Dropped:
            return web.Response(status=504)  # never delivered: the transport is gone
        except _Replaced as replaced:
            return replaced.response
        except RateLimited as exc:
            sim.ledger.record_rate_limited(account_name or bucket, exc.kind)
            body, status, retry_after = exc.body(), exc.status, exc.retry_after
        except BinanceError as exc:
            body, status = exc.body(), exc.status
            retry_after = exc.retry_after
            if account_name is not None and (method, path) == ("POST", "/api/v3/order"):
                sim.ledger.record_rejection(
                    account_name, f"{method} {path}", exc.code, exc.msg, params, ctx.now
                )
        if "X-MBX-USED-WEIGHT-1M" not in ctx.headers:
            ctx.headers["X-MBX-USED-WEIGHT-1M"] = str(sim.limiter.used_weight(bucket, ctx.now))
        if retry_after is not None:
            ctx.headers["Retry-After"] = str(retry_after)
        if (method, path) == ("POST", "/api/v3/order") and account_name is not None:
            c10, cday = sim.limiter.order_counts(account_name, ctx.now)
            ctx.headers.setdefault("X-MBX-ORDER-COUNT-10S", str(c10))
            ctx.headers.setdefault("X-MBX-ORDER-COUNT-1D", str(cday))
        if ctx.events:
            await sim.publish(ctx.events)
        try:
            wall = sim.wall_now()
            for fault in sim.faults.for_request(method, path, account_name, "after", wall):
                await self._apply(request, fault, before=False)
        except _Replaced as replaced:
            return replaced.response
        except _Dropped:
            return web.Response(status=504)  # never delivered: the transport is gone
        return web.Response(
            text=_dumps(body), status=status, headers=ctx.headers, content_type="application/json"
        )

    def _authenticate(
        self, ctx: Ctx, endpoint: Endpoint, api_key: str | None, raw_query: str, raw_body: str
    ) -> None:
        if endpoint.security == "NONE":
            return
        if not api_key or not api_key.isalnum():
            raise BinanceError(-2014)
        if ctx.account is None:
            raise BinanceError(-2015)
        if endpoint.security == "SIGNED":
            check_timestamp(
                ctx.params.get("timestamp"),
                ctx.params.get("recvWindow"),
                ctx.now,
                self.sim.config.limits.max_recv_window_ms,
            )
            verify_rest(raw_query, raw_body, ctx.account.spec.secret)

    async def _apply(self, request: web.Request, fault: Fault, before: bool) -> None:
        """Carry out one fired fault; raise to replace or drop the reply."""
        kind = fault.kind
        delay = self.sim.faults.jitter(fault)
        if kind == "latency":
            await self.sim.hold(delay)
            return
        if kind in ("timeout", "drop"):
            # The reply never arrives: hold the connection, then cut it without a response.
            await self.sim.hold(delay)
            if request.transport is not None:
                request.transport.abort()
            raise _Dropped()
        if delay:
            await self.sim.hold(delay)
        if kind == "error":
            assert fault.code is not None
            exc = BinanceError(fault.code, fault.msg, fault.status)
            if before:
                raise exc
            raise _Replaced(_json_response(exc.body(), exc.status))
        if kind == "maintenance":
            body = {"code": 1, "msg": fault.msg or errors.MAINTENANCE}
            raise _Replaced(_json_response(body, fault.status or 503))
        if kind == "http_status":
            status = fault.status or 500
            text = fault.msg if fault.msg is not None else f"<html><body>{status}</body></html>"
            raise _Replaced(web.Response(text=text, status=status, content_type="text/html"))
        if kind == "ban":
            now = self.sim.wall_now()  # expires_at is wall time
            until = fault.expires_at or now
            exc = RateLimited(
                -1003,
                f"Way too much request weight used; IP banned until {until}. "
                "Please use WebSocket Streams for live updates to avoid bans.",
                418,
                "banned_418",
                max(1, (until - now + 999) // 1000),
            )
            raise exc


class _Replaced(Exception):
    def __init__(self, response: web.Response) -> None:
        super().__init__("reply replaced by a fault")
        self.response = response


def _json_response(body: JSON, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=_dumps(body), status=status, headers=headers, content_type="application/json"
    )
