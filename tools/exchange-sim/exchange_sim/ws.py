"""WebSocket side: market streams (/ws, /stream), the WebSocket API user-data subscription
(/ws-api/v3, what ccxt.pro uses for spot watch_orders/watch_balance) and legacy listenKey
streams (/ws/<listenKey>).

Faults: ``ws_drop`` aborts matching connections (and new ones while it is active);
``ws_freeze`` silences them (no data, no pongs, no replies) until cleared.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from . import serialize
from .auth import check_timestamp, verify_ws
from .errors import BinanceError
from .market import Market
from .marketdata import klines, rolling_24h
from .models import BalanceUpdate, Event, ExecutionReport, TradeEvent
from .streams import StreamSpec, parse_stream

if TYPE_CHECKING:
    from .server import Simulator

JSON = dict[str, Any]
_dumps = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(eq=False)
class Conn:
    ws: web.WebSocketResponse
    request: web.Request
    kind: str  # "market" or "user"
    combined: bool = False
    account: str | None = None
    streams: set[str] = field(default_factory=set)
    subscription_ids: set[int] = field(default_factory=set)
    listen_key: str | None = None

    def abort(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()


class StreamHub:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.conns: set[Conn] = set()
        self.subs: dict[str, set[Conn]] = {}
        self.specs: dict[str, StreamSpec] = {}
        self._last_sent: dict[str, int] = {}
        self._depth_state: dict[str, tuple[int, dict[str, str], dict[str, str]]] = {}
        self._listen_keys: dict[str, str] = {}  # listenKey -> account
        self._next_subscription = 0
        self.messages_sent = 0

    # --- sending ---

    def _frozen(self, conn: Conn) -> bool:
        if self.sim.faults.empty:  # the hot path: no rules at all
            return False
        fault = self.sim.faults.for_websocket(
            "ws_freeze", conn.kind, conn.account, self.sim.wall_now()
        )
        return fault is not None

    async def _send(self, conn: Conn, text: str) -> None:
        if conn.ws.closed or self._frozen(conn):
            return
        try:
            await conn.ws.send_str(text)
            self.messages_sent += 1
        except (ConnectionError, RuntimeError):
            self._forget(conn)

    async def _fanout(self, spec: StreamSpec, payload: Any) -> None:
        conns = self.subs.get(spec.name)
        if not conns:
            return
        raw = combined = None
        for conn in list(conns):
            if conn.combined:
                combined = combined or _dumps({"stream": spec.name, "data": payload})
                await self._send(conn, combined)
            else:
                raw = raw or _dumps(payload)
                await self._send(conn, raw)

    # --- publishing ---

    async def publish(self, events: Iterable[Event]) -> None:
        now = self.sim.now()
        touched: set[str] = set()
        for event in events:
            if isinstance(event, TradeEvent):
                trade = event.trade
                touched.add(trade.symbol)
                lower = trade.symbol.lower()
                if f"{lower}@trade" in self.subs:
                    await self._fanout(
                        self.specs[f"{lower}@trade"], serialize.trade_event(trade, now)
                    )
                if f"{lower}@aggTrade" in self.subs:
                    await self._fanout(
                        self.specs[f"{lower}@aggTrade"], serialize.agg_trade_event(trade, now)
                    )
            elif isinstance(event, ExecutionReport):
                await self._user(event.account, serialize.execution_report(event))
            elif isinstance(event, BalanceUpdate):
                await self._user(
                    event.account, serialize.account_position(event.event_time, event.balances)
                )
        for symbol in touched:
            name = f"{symbol.lower()}@bookTicker"
            if name in self.subs:
                await self._fanout(
                    self.specs[name], serialize.book_ticker_event(self.sim.engine.markets[symbol])
                )

    async def _user(self, account: str, payload: JSON) -> None:
        for conn in list(self.conns):
            if conn.kind != "user" or conn.account != account:
                continue
            if conn.listen_key is not None:
                text = (
                    payload if not conn.combined else {"stream": conn.listen_key, "data": payload}
                )
                await self._send(conn, _dumps(text))
            for sub_id in sorted(conn.subscription_ids):
                await self._send(conn, _dumps({"subscriptionId": sub_id, "event": payload}))

    async def flush(self, now: int) -> None:
        """Send the throttled streams (ticker, kline, depth) that are due."""
        interval = self.sim.config.stream_interval_ms
        for name in list(self.subs):
            spec = self.specs[name]
            if spec.realtime or not self.subs.get(name):
                continue
            due = min(interval, 100) if spec.fast else interval
            if now - self._last_sent.get(name, 0) < due:
                continue
            payload = self._throttled_payload(spec, now)
            if payload is not None:
                self._last_sent[name] = now
                await self._fanout(spec, payload)

    def _throttled_payload(self, spec: StreamSpec, now: int) -> Any:
        markets = self.sim.engine.markets
        if spec.kind == "miniArr":
            return [
                serialize.mini_ticker_event(m, self._stats(m, now), now) for m in markets.values()
            ]
        if spec.kind == "tickerArr":
            return [serialize.ticker_event(m, self._stats(m, now), now) for m in markets.values()]
        assert spec.symbol is not None
        m = markets[spec.symbol]
        if spec.kind == "ticker":
            return serialize.ticker_event(m, self._stats(m, now), now)
        if spec.kind == "miniTicker":
            return serialize.mini_ticker_event(m, self._stats(m, now), now)
        if spec.kind == "kline":
            rows = klines(m.candles, spec.param, None, None, 1)
            return serialize.kline_event(spec.symbol, rows[-1], spec.param, now) if rows else None
        if spec.kind == "depthN":
            return serialize.depth(m, int(spec.param))
        return self._depth_diff(spec, m, now)

    @staticmethod
    def _stats(m: Market, now: int) -> Any:
        return rolling_24h(m.candles, now, m.last_price)

    @staticmethod
    def _levels(m: Market) -> tuple[dict[str, str], dict[str, str]]:
        book = serialize.depth(m, 5000)
        return dict(book["bids"]), dict(book["asks"])

    def _depth_diff(self, spec: StreamSpec, m: Market, now: int) -> JSON | None:
        prev_id, prev_bids, prev_asks = self._depth_state[spec.name]
        if m.update_id == prev_id:
            return None
        bids, asks = self._levels(m)
        self._depth_state[spec.name] = (m.update_id, bids, asks)
        return serialize.depth_update_event(
            m.spec.symbol,
            prev_id + 1,
            m.update_id,
            _diff(prev_bids, bids),
            _diff(prev_asks, asks),
            now,
        )

    # --- subscriptions ---

    def subscribe(self, conn: Conn, names: list[str]) -> str | None:
        symbols = set(self.sim.engine.markets)
        specs = []
        for name in names:
            spec = parse_stream(name, symbols) if isinstance(name, str) else None
            if spec is None:
                return f"Invalid request: unknown stream name {name!r}"
            specs.append(spec)
        for spec in specs:
            self.specs[spec.name] = spec
            self.subs.setdefault(spec.name, set()).add(conn)
            conn.streams.add(spec.name)
            if spec.kind == "depth" and spec.name not in self._depth_state:
                m = self.sim.engine.markets[spec.symbol or ""]
                self._depth_state[spec.name] = (m.update_id, *self._levels(m))
        return None

    def unsubscribe(self, conn: Conn, names: list[str]) -> None:
        for name in names:
            conn.streams.discard(name)
            subscribers = self.subs.get(name)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    del self.subs[name]
                    self._depth_state.pop(name, None)

    def _forget(self, conn: Conn) -> None:
        self.unsubscribe(conn, list(conn.streams))
        self.conns.discard(conn)

    # --- faults ---

    def drop_matching(self, stream: str, account: str | None) -> int:
        """Abort connections covered by a new ws_drop rule (``stream``: ws, ws:market, ws:user)."""
        dropped = 0
        for conn in list(self.conns):
            if stream not in ("ws", f"ws:{conn.kind}"):
                continue
            if account is not None and conn.account != account:
                continue
            conn.abort()
            self._forget(conn)
            dropped += 1
        return dropped

    async def _drop_if_faulted(self, conn: Conn) -> bool:
        fault = self.sim.faults.for_websocket(
            "ws_drop", conn.kind, conn.account, self.sim.wall_now()
        )
        if fault is None:
            return False
        self.sim.faults.consume(fault)
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        conn.abort()
        self._forget(conn)
        return True

    # --- listen keys (legacy user data stream) ---

    def create_listen_key(self, account: str) -> str:
        for key, owner in self._listen_keys.items():
            if owner == account:
                return key  # Binance returns the same key while it is valid
        key = secrets.token_urlsafe(45)[:60]
        self._listen_keys[key] = account
        return key

    def check_listen_key(self, key: str, account: str) -> None:
        if self._listen_keys.get(key) != account:
            raise BinanceError(-1125)

    def delete_listen_key(self, key: str, account: str) -> None:
        self.check_listen_key(key, account)
        del self._listen_keys[key]
        for conn in list(self.conns):
            if conn.listen_key == key:
                conn.abort()
                self._forget(conn)

    # --- endpoints ---

    async def market_endpoint(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        combined = request.path.startswith("/stream")
        conn = Conn(ws, request, "market", combined=combined)
        tail = request.match_info.get("tail", "")
        names = [n for n in tail.split("/") if n]
        if combined:
            names += [n for n in request.query.get("streams", "").split("/") if n]
        for name in names:
            account = self._listen_keys.get(name)
            if account is not None:
                conn.kind, conn.account, conn.listen_key = "user", account, name
        self.conns.add(conn)
        if await self._drop_if_faulted(conn):
            return ws
        # Streams named in the URL are subscribed at once; unknown names are ignored
        # (ccxt connects to /ws/<n> and subscribes by message).
        symbols = set(self.sim.engine.markets)
        self.subscribe(conn, [n for n in names if parse_stream(n, symbols) is not None])
        try:
            await self._serve(conn, self._market_message)
        finally:
            self._forget(conn)
        return ws

    async def api_endpoint(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Conn(ws, request, "user")
        self.conns.add(conn)
        if await self._drop_if_faulted(conn):
            return ws
        try:
            await self._serve(conn, self._api_message)
        finally:
            self._forget(conn)
        return ws

    async def _serve(self, conn: Conn, on_text: Any) -> None:
        async for msg in conn.ws:
            if msg.type == WSMsgType.PING:
                if not self._frozen(conn):
                    await conn.ws.pong(msg.data)
            elif msg.type == WSMsgType.TEXT:
                if self._frozen(conn):
                    continue
                await on_text(conn, msg.data)
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break

    async def _market_message(self, conn: Conn, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            await self._send(
                conn, _dumps({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None})
            )
            return
        if not isinstance(message, dict):
            await self._send(
                conn, _dumps({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None})
            )
            return
        req_id = message.get("id")
        method = message.get("method")
        params = message.get("params") or []
        reply: JSON
        if method == "SUBSCRIBE" and isinstance(params, list):
            error = self.subscribe(conn, params)
            reply = (
                {"result": None, "id": req_id}
                if error is None
                else {"error": {"code": 2, "msg": error}, "id": req_id}
            )
        elif method == "UNSUBSCRIBE" and isinstance(params, list):
            self.unsubscribe(conn, params)
            reply = {"result": None, "id": req_id}
        elif method == "LIST_SUBSCRIPTIONS":
            reply = {"result": sorted(conn.streams), "id": req_id}
        elif method in ("SET_PROPERTY", "GET_PROPERTY"):
            reply = {"result": None if method == "SET_PROPERTY" else conn.combined, "id": req_id}
        else:
            reply = {
                "error": {"code": 2, "msg": f"Invalid request: method {method!r}"},
                "id": req_id,
            }
        await self._send(conn, _dumps(reply))

    async def _api_message(self, conn: Conn, text: str) -> None:
        try:
            message = json.loads(text)
            req_id = message.get("id")
            method = str(message.get("method"))
            params = message.get("params") or {}
        except (ValueError, AttributeError):
            await self._send(
                conn,
                _dumps(
                    {"id": None, "status": 400, "error": {"code": -1100, "msg": "Invalid JSON"}}
                ),
            )
            return
        try:
            result = self._api_call(conn, method, params)
            reply: JSON = {"id": req_id, "status": 200, "result": result}
        except BinanceError as exc:
            reply = {"id": req_id, "status": exc.status, "error": exc.body()}
        await self._send(conn, _dumps(reply))
        if method.startswith("userDataStream.subscribe") and conn.account is not None:
            await self._drop_if_faulted(conn)

    def _api_call(self, conn: Conn, method: str, params: JSON) -> JSON:
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": self.sim.now()}
        if method == "userDataStream.subscribe.signature":
            api_key = params.get("apiKey")
            if not isinstance(api_key, str) or not api_key:
                raise BinanceError(-2014)
            account = self.sim.engine.account_by_key(api_key)
            if account is None:
                raise BinanceError(-2015)
            ts, window = params.get("timestamp"), params.get("recvWindow")
            check_timestamp(
                None if ts is None else str(ts),
                None if window is None else str(window),
                self.sim.now(account.name),
                self.sim.config.limits.max_recv_window_ms,
            )
            verify_ws(params, account.spec.secret)
            if conn.account not in (None, account.name):
                raise BinanceError(-1020, "Only one account per connection.")
            conn.account = account.name
            sub_id = self._next_subscription
            self._next_subscription += 1
            conn.subscription_ids.add(sub_id)
            return {"subscriptionId": sub_id}
        if method == "userDataStream.unsubscribe":
            sub = params.get("subscriptionId")
            if sub is None:
                conn.subscription_ids.clear()
            else:
                conn.subscription_ids.discard(int(sub))
            return {}
        if method == "session.subscriptions":
            return {"subscriptions": [{"subscriptionId": s} for s in sorted(conn.subscription_ids)]}
        raise BinanceError(-1020)


def _diff(before: dict[str, str], after: dict[str, str]) -> list[list[str]]:
    changed = [[p, q] for p, q in after.items() if before.get(p) != q]
    removed = [[p, "0.00000000"] for p in before if p not in after]
    return changed + removed
