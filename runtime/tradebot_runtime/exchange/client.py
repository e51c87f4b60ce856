"""Order and account I/O over a stock ``ccxt.async_support`` exchange.

* Orders carry the deterministic client order id in the exchange's own param
  (order_ids.ClientOrderIds.order_params).
* Every failure goes through error_policy.classify_error. A create whose outcome is not
  certain returns ``SendStatus.UNKNOWN``: the caller marks the order UNKNOWN and resolves
  it with ``lookup`` (by client id) — this module never resends an order.
* Reads retry on RETRY with exponential backoff and full jitter; RESYNC_CLOCK reloads the
  clock offset (``load_time_difference``) first.
* A CircuitBreaker counts exchange failures (availability, rate limits); while it is open
  ``create_order`` refuses at once (``SendStatus.BREAKER_OPEN``) without touching the wire.
* Numbers from ccxt are converted with ``to_decimal`` (never float arithmetic).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import ccxt

from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_runtime import metrics
from tradebot_runtime.breaker import CircuitBreaker
from tradebot_runtime.domain import ZERO, Bar, Fill, Side, to_decimal
from tradebot_runtime.error_policy import ErrorAction, Operation, classify_error
from tradebot_runtime.orders import OrderRecord
from tradebot_runtime.precision import (
    DEFAULT_MONEY_PLACES,
    MarketRules,
    MoneyPrecision,
    money_precision,
)
from tradebot_runtime.ratelimit import SendDeadlinePassed, send_gate
from tradebot_runtime.ratelimit_cost import UnknownEndpoint, request_cost

log = logging.getLogger("tradebot.exchange")
T = TypeVar("T")


class SendStatus(enum.StrEnum):
    ACKED = "acked"
    UNKNOWN = "unknown"
    REJECTED = "rejected"
    BREAKER_OPEN = "breaker_open"
    NOT_SENT = "not_sent"
    """The right to send ended before the request went out (nothing reached the exchange)."""


@dataclass(frozen=True, slots=True)
class OrderReport:
    """What the exchange says about one order."""

    client_order_id: str | None
    exchange_order_id: str | None
    symbol: str
    status: str | None
    filled: Decimal
    amount: Decimal | None
    side: str | None


DEFAULT_RECV_WINDOW_MS = 10_000
"""Receive window assumed for an exchange whose ccxt class names none (Binance: 10 s)."""
CLOCK_SKEW_MS = 2_000
"""Allowance for our clock against the exchange's, beyond the offset ccxt measured."""

FILL_PAGE = 500
"""Trades asked for per fetch_my_trades page (Binance's default; most exchanges allow it)."""


@dataclass(frozen=True, slots=True)
class FillPage:
    """Our fills of one sync, and the newest trade timestamp seen (ours or not)."""

    fills: list[Fill]
    newest_ms: int


@dataclass(frozen=True, slots=True)
class SendResult:
    status: SendStatus
    report: OrderReport | None = None
    reason: str = ""


def _dec(value: Any, default: Decimal = ZERO) -> Decimal:
    return default if value is None else to_decimal(value)


def order_report(order: Mapping[str, Any]) -> OrderReport:
    return OrderReport(
        client_order_id=order.get("clientOrderId"),
        exchange_order_id=str(order["id"]) if order.get("id") is not None else None,
        symbol=str(order.get("symbol")),
        status=order.get("status"),
        filled=_dec(order.get("filled")),
        amount=_dec(order["amount"]) if order.get("amount") is not None else None,
        side=order.get("side"),
    )


def fill_from_trade(trade: Mapping[str, Any], client_order_id: str) -> Fill:
    fee = trade.get("fee") or {}
    return Fill(
        trade_id=str(trade["id"]),
        client_order_id=client_order_id,
        symbol=str(trade["symbol"]),
        side=Side(trade["side"]),
        price=to_decimal(trade["price"]),
        amount=to_decimal(trade["amount"]),
        fee=_dec(fee.get("cost")),
        fee_currency=str(fee.get("currency") or ""),
        ts=int(trade["timestamp"]),
    )


class ExchangeClient:
    def __init__(
        self,
        exchange: Any,
        ids: ClientOrderIds,
        *,
        breaker: CircuitBreaker | None = None,
        read_attempts: int = 4,
        backoff_s: float = 0.2,
    ) -> None:
        self.exchange = exchange
        self.ids = ids
        self.breaker = breaker or CircuitBreaker(f"exchange:{exchange.id}")
        self.read_attempts = read_attempts
        self.backoff_s = backoff_s
        self.tick_size_mode = getattr(exchange, "precisionMode", None) == ccxt.TICK_SIZE
        self._rules: dict[str, tuple[Any, MarketRules]] = {}
        self._cid_by_order_id: dict[str, str] = {}
        self._foreign_order_ids: set[str] = set()
        self.order_limiter: Any = None
        """The account's new-order bucket (``ratelimit.order_count_params``), if limited."""
        self.limiter: Any = None
        """The account's request budget (``ratelimit.SharedRateLimiter``), if installed."""
        self.create_cost: Decimal | None = None

    def use_limiter(self, limiter: Any) -> None:
        """Prepay new orders from ``limiter`` (the one installed as the ccxt throttle)."""
        self.limiter = limiter
        try:
            self.create_cost = request_cost(self.exchange, "create_order")
        except UnknownEndpoint:  # not in ratelimit_cost's table: paid at send time instead
            self.create_cost = None

    async def reserve_order(self) -> None:
        """Take every rate-limit token one new order needs (the account's new-order budget
        and the create request's weight). Called before the intent is journaled, so that
        no wait sits between the journal write and the send; ``release_reservation``
        after the send (or when nothing was sent)."""
        if self.order_limiter is not None:
            await self.order_limiter.acquire(1)
        if self.limiter is not None and self.create_cost is not None:
            await self.limiter.prepay(self.create_cost)

    def release_reservation(self) -> None:
        if self.limiter is not None:
            self.limiter.drop_prepaid()

    async def close(self) -> None:
        await self.exchange.close()

    # -- generic call wrapper -----------------------------------------------------------

    async def _timed(self, method: str, call: Callable[[], Awaitable[T]]) -> T:
        started = time.perf_counter()
        try:
            result = await call()
        except BaseException as exc:
            metrics.API_ERRORS.labels(method, type(exc).__name__).inc()
            raise
        finally:
            metrics.API_LATENCY.labels(method).observe(time.perf_counter() - started)
        return result

    async def read(self, method: str, call: Callable[[], Awaitable[T]]) -> T:
        """An idempotent call: retried with backoff on RETRY / RESYNC_CLOCK."""
        for attempt in range(self.read_attempts):
            try:
                result = await self._timed(method, call)
                self.breaker.record_success()
                return result
            except Exception as exc:
                policy = classify_error(exc, Operation.READ)
                if policy.exchange_failure:
                    self.breaker.record_failure()
                last = attempt == self.read_attempts - 1
                if policy.action is ErrorAction.RESYNC_CLOCK and not last:
                    await self._resync_clock()
                elif policy.action is not ErrorAction.RETRY or last:
                    raise
                await asyncio.sleep(random.uniform(0, self.backoff_s * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _resync_clock(self) -> None:
        try:
            await self.exchange.load_time_difference()
        except Exception as exc:
            log.warning("clock resync failed: %s", exc)

    # -- markets ------------------------------------------------------------------------

    async def load_markets(self) -> None:
        await self.read("load_markets", lambda: self.exchange.load_markets())

    def has_symbol(self, symbol: str) -> bool:
        """Whether the exchange lists ``symbol`` (markets must be loaded)."""
        return symbol in (self.exchange.markets or {})

    def market_rules(self, symbol: str) -> MarketRules:
        """The symbol's rules, built once per loaded market (every intent needs them)."""
        market = (self.exchange.markets or {}).get(symbol)
        cached = self._rules.get(symbol)
        if cached is not None and market is not None and cached[0] is market:
            return cached[1]  # same market dict: markets were not reloaded since
        market = self.exchange.market(symbol)
        rules = MarketRules.from_ccxt_market(market, tick_size_mode=self.tick_size_mode)
        self._rules[symbol] = (market, rules)
        return rules

    def money_precision(self, currency: str) -> MoneyPrecision:
        """Precision of money figures in ``currency`` (markets must be loaded; see
        precision.money_precision). Significant-digit precision says nothing about decimal
        places: the fallback then."""
        if getattr(self.exchange, "precisionMode", None) == ccxt.SIGNIFICANT_DIGITS:
            return MoneyPrecision(currency, DEFAULT_MONEY_PLACES)
        return money_precision(
            currency,
            currencies=getattr(self.exchange, "currencies", None),
            markets=getattr(self.exchange, "markets", None),
            tick_size_mode=self.tick_size_mode,
        )

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None = None, limit: int | None = None
    ) -> list[Bar]:
        rows = await self.read(
            "fetch_ohlcv", lambda: self.exchange.fetch_ohlcv(symbol, timeframe, since, limit)
        )
        return [
            Bar(
                symbol=symbol,
                timeframe=timeframe,
                ts=int(r[0]),
                open=to_decimal(r[1]),
                high=to_decimal(r[2]),
                low=to_decimal(r[3]),
                close=to_decimal(r[4]),
                volume=to_decimal(r[5]),
            )
            for r in rows
        ]

    async def fetch_last_price(self, symbol: str) -> Decimal | None:
        ticker = await self.read("fetch_ticker", lambda: self.exchange.fetch_ticker(symbol))
        last = ticker.get("last") or ticker.get("close")
        return None if last is None else to_decimal(last)

    # -- orders -------------------------------------------------------------------------

    async def create_order(
        self, record: OrderRecord, may_send: Callable[[], bool] | None = None
    ) -> SendResult:
        """Send one journaled order under its client id. Never retried here.
        ``may_send`` (the Lease): checked after every rate-limit wait and right before the
        request goes out; False then means NOT_SENT (certainly not at the exchange)."""
        if not self.breaker.allow():
            return SendResult(SendStatus.BREAKER_OPEN, reason="circuit breaker open")
        if may_send is not None:
            with send_gate(may_send):
                try:
                    return await self._create(record)
                except SendDeadlinePassed as exc:
                    return SendResult(SendStatus.NOT_SENT, reason=str(exc))
        return await self._create(record)

    async def _create(self, record: OrderRecord) -> SendResult:
        intent = record.intent
        params: dict[str, Any] = dict(self.ids.order_params(record.client_order_id))
        if intent.reduce_only and self._derivative(intent.symbol):
            params["reduceOnly"] = True  # the exchange enforces it too (spot has no such flag)
        price = float(intent.price) if intent.price is not None else None
        try:
            order = await self._timed(
                "create_order",
                lambda: self.exchange.create_order(
                    intent.symbol,
                    intent.type.value,
                    intent.side.value,
                    float(intent.amount),  # ccxt formats with the market's precision
                    price,
                    params,
                ),
            )
        except (asyncio.CancelledError, SendDeadlinePassed):
            raise
        except Exception as exc:
            policy = classify_error(exc, Operation.CREATE)
            if policy.exchange_failure:
                self.breaker.record_failure()
            if policy.action is ErrorAction.REJECT:
                return SendResult(SendStatus.REJECTED, reason=f"{policy.reason}: {exc}"[:200])
            # LOOKUP, RESYNC_CLOCK (the timestamp may have been accepted after all) ...
            if policy.action is ErrorAction.RESYNC_CLOCK:
                await self._resync_clock()
            return SendResult(SendStatus.UNKNOWN, reason=policy.reason)
        self.breaker.record_success()
        return SendResult(SendStatus.ACKED, order_report(order))

    def _derivative(self, symbol: str) -> bool:
        market = (getattr(self.exchange, "markets", None) or {}).get(symbol) or {}
        return bool(market.get("contract"))

    def not_found_grace_ms(self) -> int:
        """How long after its request could last have been signed an order may still be
        accepted: the exchange's receive window (the one ccxt signs with) plus clock skew.
        Only then does a lookup that finds nothing mean the order never reached it."""
        options = getattr(self.exchange, "options", None) or {}
        window = int(options.get("recvWindow") or DEFAULT_RECV_WINDOW_MS)
        offset = abs(int(options.get("timeDifference") or 0))
        return window + CLOCK_SKEW_MS + offset

    async def lookup(self, symbol: str, client_order_id: str) -> OrderReport | None:
        """The order with ``client_order_id``; None when the exchange has no such order."""
        try:
            order = await self.read(
                "fetch_order",
                lambda: self.exchange.fetch_order(
                    None, symbol, self.ids.lookup_params(client_order_id)
                ),
            )
        except ccxt.OrderNotFound:
            return None
        return order_report(order)

    async def cancel(self, symbol: str, client_order_id: str) -> OrderReport | None:
        """Cancel by client id; None when the exchange does not know the order (or it is
        no longer cancellable); the caller looks it up to learn the final state."""
        try:
            order = await self._timed(
                "cancel_order",
                lambda: self.exchange.cancel_order(
                    None, symbol, self.ids.lookup_params(client_order_id)
                ),
            )
        except (ccxt.OrderNotFound, ccxt.InvalidOrder):
            return None
        return order_report(order)

    async def open_orders(self, symbol: str) -> list[OrderReport]:
        orders = await self.read(
            "fetch_open_orders", lambda: self.exchange.fetch_open_orders(symbol)
        )
        return [order_report(o) for o in orders]

    async def fills_since(
        self, symbol: str, since: int, *, known: Callable[[str, str], bool] | None = None
    ) -> FillPage:
        """Our fills in ``symbol`` from ``since`` (ms, inclusive) on, oldest first, page
        after page until a page is not full: a fill older than the exchange's newest
        page (500 trades on Binance, counting other bots' trades on the account) is
        never lost. ``newest_ms``: the newest trade seen, ours or not, where the next sync
        may start."""
        cursor, out, taken = since, [], set()
        while True:
            fetch = functools.partial(self.exchange.fetch_my_trades, symbol, cursor, FILL_PAGE)
            page: list[dict[str, Any]] = await self.read("fetch_my_trades", fetch)
            for fill in await self._ours(symbol, page, known):
                if (fill.trade_id, fill.client_order_id) not in taken:
                    taken.add((fill.trade_id, fill.client_order_id))
                    out.append(fill)
            stamps = [int(t["timestamp"]) for t in page if t.get("timestamp") is not None]
            top = max(stamps, default=cursor)
            if len(page) < FILL_PAGE:
                return FillPage(out, top)
            if top <= cursor:  # a full page inside one millisecond: step over it
                log.warning("a full page of trades at one timestamp", extra={"symbol": symbol})
                top = cursor + 1
            cursor = top

    async def _ours(
        self, symbol: str, trades: list[dict[str, Any]], known: Callable[[str, str], bool] | None
    ) -> list[Fill]:
        """Our fills among ``trades`` (only orders with one of this bot's client ids).
        Trades ``known`` accepts (already booked) are skipped before their client id is
        looked up: a new leader does not know the order ids of its predecessor's orders,
        and one lookup per historical trade made takeovers slow."""
        out: list[Fill] = []
        for trade in trades:
            if (
                known is not None
                and trade.get("id") is not None
                and known(str(trade["id"]), str(trade.get("side")))
            ):
                continue
            cid = trade.get("clientOrderId") or (trade.get("info") or {}).get("clientOrderId")
            order_id = trade.get("order")
            if cid is None and order_id is not None:
                cid = await self._cid_of_order(symbol, str(order_id))
            if cid is not None and self.ids.owns(cid):
                out.append(fill_from_trade(trade, cid))
        return out

    async def _cid_of_order(self, symbol: str, order_id: str) -> str | None:
        """The client id of an exchange order: from memory, else one lookup by order id
        (a fill of an order the previous leader placed must never be lost)."""
        if order_id in self._cid_by_order_id:
            return self._cid_by_order_id[order_id]
        if order_id in self._foreign_order_ids:
            return None
        order = await self.read("fetch_order", lambda: self.exchange.fetch_order(order_id, symbol))
        cid = order.get("clientOrderId")
        if cid is not None and self.ids.owns(cid):
            self._cid_by_order_id[order_id] = str(cid)
            return str(cid)
        self._foreign_order_ids.add(order_id)
        return None

    def remember(self, exchange_order_id: str | None, client_order_id: str) -> None:
        """Map an exchange order id to our client id (Binance trades carry only the
        former)."""
        if exchange_order_id is not None:
            self._cid_by_order_id[exchange_order_id] = client_order_id

    async def free_balances(self) -> dict[str, Decimal]:
        balance = await self.read("fetch_balance", lambda: self.exchange.fetch_balance())
        free = balance.get("free") or {}
        return {k: to_decimal(v) for k, v in free.items() if v is not None}
