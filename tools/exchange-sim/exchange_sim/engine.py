"""The matching engine: accounts, balances, orders and fills against the synthetic markets.

Pure and synchronous: no I/O, no clock reads (every call takes ``now_ms``), all randomness
from one seed. Users trade against the synthetic liquidity of each market, never against
each other: a taker walks the book; a resting limit order fills (as maker, at its price)
when a later step moves the opposite touch through it, at most one book level per step, so
large orders fill partially over several steps.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from . import errors
from .config import AccountSpec, SimConfig, SymbolSpec
from .decimals import EIGHT_PLACES, ZERO, is_multiple
from .errors import BinanceError, filter_failure
from .market import Market
from .models import (
    BUY,
    SELL,
    Balance,
    BalanceUpdate,
    Event,
    ExecutionReport,
    Fill,
    Order,
    TradeEvent,
)
from .pricepath import GbmPath, PricePath, ReplayPath, candles_to_points, load_candles_csv

CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
ORDER_TYPES = ("LIMIT", "MARKET", "LIMIT_MAKER")
UNSUPPORTED_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
TIME_IN_FORCE = ("GTC", "IOC", "FOK")
_ALNUM = string.ascii_letters + string.digits
PERCENT_UP = Decimal(5)
PERCENT_DOWN = Decimal("0.2")


@dataclass(frozen=True, slots=True)
class OrderRequest:
    symbol: str
    side: str
    type: str
    quantity: Decimal | None = None
    price: Decimal | None = None
    quote_order_qty: Decimal | None = None
    time_in_force: str | None = None
    client_order_id: str | None = None
    stp_mode: str | None = None


class AccountState:
    def __init__(self, spec: AccountSpec, uid: int) -> None:
        self.spec = spec
        self.uid = uid
        self.balances: dict[str, Balance] = {
            asset: Balance(free=amount) for asset, amount in spec.balances.items()
        }
        self.orders: dict[tuple[str, int], Order] = {}
        self.by_client_id: dict[str, list[Order]] = {}
        self.fills: list[Fill] = []
        self.update_time = 0

    @property
    def name(self) -> str:
        return self.spec.name

    def balance(self, asset: str) -> Balance:
        bal = self.balances.get(asset)
        if bal is None:
            bal = self.balances[asset] = Balance()
        return bal

    def open_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open]


def _fee(amount: Decimal, rate: Decimal) -> Decimal:
    return (amount * rate).quantize(EIGHT_PLACES, rounding=ROUND_HALF_UP)


def build_path(spec: SymbolSpec, rng: random.Random) -> PricePath:
    gbm = GbmPath(spec.initial_price, spec.drift, spec.volatility, rng, spec.tick_size)
    if spec.replay_csv:
        points = candles_to_points(load_candles_csv(Path(spec.replay_csv)))
        return ReplayPath(points, gbm)
    return gbm


class Engine:
    def __init__(self, config: SimConfig, start_ms: int) -> None:
        self.config = config.with_defaults()
        seed = self.config.seed
        self._rng = random.Random(f"{seed}:engine")
        self.markets: dict[str, Market] = {}
        for spec in self.config.symbols:
            rng = random.Random(f"{seed}:{spec.symbol}")
            market = Market(spec, build_path(spec, rng), rng)
            market.warm_up(start_ms, self.config.history_minutes)
            self.markets[spec.symbol] = market
        self.accounts: dict[str, AccountState] = {}
        self._by_key: dict[str, AccountState] = {}
        # Open orders per symbol in arrival order: the only orders a step can fill.
        self._resting: dict[str, dict[tuple[str, int], Order]] = {s: {} for s in self.markets}
        for account in self.config.accounts:
            self.add_account(account)

    # --- accounts ---

    def add_account(self, spec: AccountSpec) -> AccountState:
        if spec.name in self.accounts:
            raise ValueError(f"account {spec.name!r} exists")
        if spec.api_key in self._by_key:
            raise ValueError("api key already in use")
        state = AccountState(spec, uid=100_000_000 + len(self.accounts) + 1)
        self.accounts[spec.name] = state
        self._by_key[spec.api_key] = state
        return state

    def account_by_key(self, api_key: str) -> AccountState | None:
        return self._by_key.get(api_key)

    def market(self, symbol: str) -> Market:
        market = self.markets.get(symbol)
        if market is None:
            raise BinanceError(-1121)
        return market

    # --- clock ---

    def tick(self, now_ms: int, dt_seconds: Decimal) -> list[Event]:
        """Advance every market one path step and fill the resting orders it crosses."""
        events: list[Event] = []
        for symbol, market in self.markets.items():
            events.append(TradeEvent(market.advance(now_ms, dt_seconds)))
            events.extend(self._fill_resting(symbol, market, now_ms))
        return events

    def set_price(self, symbol: str, price: Decimal, now_ms: int) -> list[Event]:
        market = self.market(symbol)
        events: list[Event] = [TradeEvent(market.set_price(price, now_ms))]
        events.extend(self._fill_resting(symbol, market, now_ms))
        return events

    def _fill_resting(self, symbol: str, market: Market, now_ms: int) -> list[Event]:
        events: list[Event] = []
        touched: dict[str, AccountState] = {}
        for order in list(self._resting[symbol].values()):
            crossed = (
                market.best_ask <= order.price
                if order.side == BUY
                else market.best_bid >= order.price
            )
            if not crossed:
                continue
            account = self.accounts[order.account]
            qty = min(order.remaining, market.level_qty(0))
            events.append(self._execute(account, order, market, order.price, qty, True, now_ms))
            touched[account.name] = account
        for account in touched.values():
            events.append(self._balance_event(account, market.spec, now_ms))
        return events

    # --- orders ---

    def place_order(
        self, account_name: str, req: OrderRequest, now_ms: int
    ) -> tuple[Order, list[Event]]:
        account = self.accounts[account_name]
        market = self.market(req.symbol)
        spec = market.spec
        self.validate(account, market, req)
        client_id = req.client_order_id or self.new_client_id()
        order = Order(
            account=account.name,
            symbol=spec.symbol,
            order_id=market.next_order_id,
            client_order_id=client_id,
            side=req.side,
            type=req.type,
            time_in_force=req.time_in_force or "GTC",
            price=req.price if req.price is not None else ZERO,
            orig_qty=req.quantity if req.quantity is not None else ZERO,
            orig_quote_qty=req.quote_order_qty if req.quote_order_qty is not None else ZERO,
            time=now_ms,
            update_time=now_ms,
            stp_mode=req.stp_mode or "EXPIRE_MAKER",
        )
        if req.type == "MARKET":
            plan = self._plan_market(account, market, req)
        else:
            plan = self._plan_limit(account, market, req)
            self._lock(account, order, spec)
        market.next_order_id += 1
        account.orders[(spec.symbol, order.order_id)] = order
        account.by_client_id.setdefault(client_id, []).append(order)
        account.update_time = now_ms
        if req.type == "MARKET" and req.quote_order_qty is not None:
            order.orig_qty = sum((q for _, q in plan), ZERO)
        events: list[Event] = [ExecutionReport(account.name, order.snapshot(), "NEW", now_ms)]
        if plan:
            # Same walk as the dry-run plan, now consuming the book.
            limit = req.price if req.type != "MARKET" else None
            executed = market.take(req.side, req.quantity, req.quote_order_qty, limit)
            for price, qty in executed:
                events.append(self._execute(account, order, market, price, qty, False, now_ms))
        if order.remaining > ZERO:
            if req.type == "MARKET" or order.time_in_force in ("IOC", "FOK"):
                self._close(account, order, "EXPIRED", now_ms)
                events.append(ExecutionReport(account.name, order.snapshot(), "EXPIRED", now_ms))
            else:
                self._resting[spec.symbol][(account.name, order.order_id)] = order
        events.append(self._balance_event(account, spec, now_ms))
        return order, events

    def new_client_id(self) -> str:
        """A Binance-style random id (22 alphanumerics), from the engine's seeded RNG."""
        return "".join(self._rng.choice(_ALNUM) for _ in range(22))

    def validate(self, account: AccountState, market: Market, req: OrderRequest) -> None:
        """Parameter checks and exchange filters, in Binance's order; raises BinanceError."""
        spec = market.spec
        if req.side not in (BUY, SELL):
            raise BinanceError(-1117)
        if req.type in UNSUPPORTED_TYPES:
            raise BinanceError(-1014)
        if req.type not in ORDER_TYPES:
            raise BinanceError(-1116)
        if req.client_order_id is not None:
            if not CLIENT_ID.match(req.client_order_id):
                raise errors.illegal_chars("newClientOrderId", CLIENT_ID.pattern)
            previous = account.by_client_id.get(req.client_order_id, [])
            if self.config.client_id_reuse == "any" and previous:
                raise BinanceError(-2010, errors.DUPLICATE_ORDER)
            if any(o.is_open for o in previous):
                raise BinanceError(-2010, errors.DUPLICATE_ORDER)
        if req.type == "MARKET":
            if req.price is not None:
                raise errors.not_required("price")
            if req.time_in_force is not None:
                raise errors.not_required("timeInForce")
            if (req.quantity is None) == (req.quote_order_qty is None):
                raise BinanceError(
                    -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but not both."
                )
        else:
            if req.quantity is None:
                raise errors.missing("quantity")
            if req.price is None:
                raise errors.missing("price")
            if req.quote_order_qty is not None:
                raise errors.not_required("quoteOrderQty")
            if req.type == "LIMIT" and req.time_in_force is None:
                raise errors.missing("timeInForce")
            if req.type == "LIMIT_MAKER" and req.time_in_force is not None:
                raise errors.not_required("timeInForce")
            if req.time_in_force is not None and req.time_in_force not in TIME_IN_FORCE:
                raise BinanceError(-1115)
            price = req.price
            if (
                price < spec.min_price
                or price > spec.max_price
                or not is_multiple(price, spec.min_price, spec.tick_size)
            ):
                raise filter_failure("PRICE_FILTER")
            # PERCENT_PRICE_BY_SIDE (multipliers 0.2 .. 5 around the last price)
            if price > market.last_price * PERCENT_UP or price < market.last_price * PERCENT_DOWN:
                raise filter_failure("PERCENT_PRICE_BY_SIDE")
        if req.quantity is not None:
            qty = req.quantity
            if (
                qty < spec.min_qty
                or qty > spec.max_qty
                or not is_multiple(qty, spec.min_qty, spec.step_size)
            ):
                raise filter_failure("LOT_SIZE")
            if req.type == "MARKET" and spec.market_max_qty > ZERO and qty > spec.market_max_qty:
                raise filter_failure("MARKET_LOT_SIZE")
        notional = self._notional(market, req)
        if notional < spec.min_notional or (req.type != "MARKET" and notional > spec.max_notional):
            raise filter_failure("NOTIONAL")
        open_on_symbol = sum(1 for key in self._resting[spec.symbol] if key[0] == account.name)
        if req.type != "MARKET" and open_on_symbol >= spec.max_num_orders:
            raise filter_failure("MAX_NUM_ORDERS")

    @staticmethod
    def _notional(market: Market, req: OrderRequest) -> Decimal:
        if req.quote_order_qty is not None:
            return req.quote_order_qty
        assert req.quantity is not None
        if req.price is not None:
            return req.price * req.quantity
        return market.last_price * req.quantity  # Binance uses the average price here

    def _plan_market(
        self, account: AccountState, market: Market, req: OrderRequest
    ) -> list[tuple[Decimal, Decimal]]:
        spec = market.spec
        plan = market.take(req.side, req.quantity, req.quote_order_qty, None, dry_run=True)
        qty = sum((q for _, q in plan), ZERO)
        cost = sum((p * q for p, q in plan), ZERO)
        if req.side == BUY:
            needed = req.quote_order_qty if req.quote_order_qty is not None else cost
            if account.balance(spec.quote).free < needed:
                raise BinanceError(-2010, errors.INSUFFICIENT_BALANCE)
        elif account.balance(spec.base).free < qty:
            raise BinanceError(-2010, errors.INSUFFICIENT_BALANCE)
        return plan

    def _plan_limit(
        self, account: AccountState, market: Market, req: OrderRequest
    ) -> list[tuple[Decimal, Decimal]]:
        spec = market.spec
        assert req.price is not None and req.quantity is not None
        if req.side == BUY:
            crosses = req.price >= market.best_ask
            if account.balance(spec.quote).free < req.price * req.quantity:
                raise BinanceError(-2010, errors.INSUFFICIENT_BALANCE)
        else:
            crosses = req.price <= market.best_bid
            if account.balance(spec.base).free < req.quantity:
                raise BinanceError(-2010, errors.INSUFFICIENT_BALANCE)
        if not crosses:
            return []
        if req.type == "LIMIT_MAKER":
            raise BinanceError(-2010, errors.WOULD_TAKE)
        plan = market.take(req.side, req.quantity, None, req.price, dry_run=True)
        if req.time_in_force == "FOK" and sum((q for _, q in plan), ZERO) < req.quantity:
            return []  # FOK that cannot fill completely expires untouched
        return plan

    def _lock(self, account: AccountState, order: Order, spec: SymbolSpec) -> None:
        if order.side == BUY:
            amount, asset = order.price * order.orig_qty, spec.quote
        else:
            amount, asset = order.orig_qty, spec.base
        bal = account.balance(asset)
        bal.free -= amount
        bal.locked += amount
        order.locked = amount

    def _execute(
        self,
        account: AccountState,
        order: Order,
        market: Market,
        price: Decimal,
        qty: Decimal,
        is_maker: bool,
        now_ms: int,
    ) -> ExecutionReport:
        spec = market.spec
        quote_amount = price * qty
        base_bal, quote_bal = account.balance(spec.base), account.balance(spec.quote)
        rate = account.spec.maker_fee if is_maker else account.spec.taker_fee
        if order.side == BUY:
            if order.type == "MARKET":
                quote_bal.free -= quote_amount
            else:
                release = order.price * qty
                order.locked -= release
                quote_bal.locked -= release
                quote_bal.free += release - quote_amount
            fee, fee_asset = _fee(qty, rate), spec.base
            base_bal.free += qty - fee
        else:
            if order.type == "MARKET":
                base_bal.free -= qty
            else:
                order.locked -= qty
                base_bal.locked -= qty
            fee, fee_asset = _fee(quote_amount, rate), spec.quote
            quote_bal.free += quote_amount - fee
        buyer_is_maker = (order.side == BUY) == is_maker
        trade = market.record_trade(price, qty, now_ms, buyer_is_maker)
        fill = Fill(
            trade_id=trade.trade_id,
            order_id=order.order_id,
            account=account.name,
            symbol=spec.symbol,
            side=order.side,
            price=price,
            qty=qty,
            quote_qty=quote_amount,
            commission=fee,
            commission_asset=fee_asset,
            time=now_ms,
            is_maker=is_maker,
        )
        account.fills.append(fill)
        order.trade_ids.append(trade.trade_id)
        order.executed_qty += qty
        order.cum_quote += quote_amount
        order.update_time = now_ms
        account.update_time = now_ms
        if order.remaining <= ZERO:
            order.status = "FILLED"
            self._resting[spec.symbol].pop((account.name, order.order_id), None)
        else:
            order.status = "PARTIALLY_FILLED"
        return ExecutionReport(account.name, order.snapshot(), "TRADE", now_ms, fill)

    def _close(self, account: AccountState, order: Order, status: str, now_ms: int) -> None:
        """Cancel or expire: release what is still locked."""
        spec = self.markets[order.symbol].spec
        if order.locked > ZERO:
            bal = account.balance(spec.quote if order.side == BUY else spec.base)
            bal.locked -= order.locked
            bal.free += order.locked
            order.locked = ZERO
        order.status = status
        order.update_time = now_ms
        account.update_time = now_ms
        self._resting[order.symbol].pop((account.name, order.order_id), None)

    def cancel_order(
        self,
        account_name: str,
        symbol: str,
        order_id: int | None,
        orig_client_order_id: str | None,
        now_ms: int,
    ) -> tuple[Order, list[Event]]:
        account = self.accounts[account_name]
        order = self._find(account, symbol, order_id, orig_client_order_id, unknown=-2011)
        if not order.is_open:
            raise BinanceError(-2011)
        self._close(account, order, "CANCELED", now_ms)
        spec = self.markets[symbol].spec
        events: list[Event] = [
            ExecutionReport(account.name, order.snapshot(), "CANCELED", now_ms),
            self._balance_event(account, spec, now_ms),
        ]
        return order, events

    def cancel_all(
        self, account_name: str, symbol: str, now_ms: int
    ) -> tuple[list[Order], list[Event]]:
        account = self.accounts[account_name]
        self.market(symbol)
        orders = [o for o in account.open_orders() if o.symbol == symbol]
        events: list[Event] = []
        for order in orders:
            self._close(account, order, "CANCELED", now_ms)
            events.append(ExecutionReport(account.name, order.snapshot(), "CANCELED", now_ms))
        if orders:
            events.append(self._balance_event(account, self.markets[symbol].spec, now_ms))
        return orders, events

    def get_order(
        self, account_name: str, symbol: str, order_id: int | None, orig_client_order_id: str | None
    ) -> Order:
        return self._find(
            self.accounts[account_name], symbol, order_id, orig_client_order_id, unknown=-2013
        )

    def _find(
        self,
        account: AccountState,
        symbol: str,
        order_id: int | None,
        client_id: str | None,
        unknown: int,
    ) -> Order:
        self.market(symbol)
        if order_id is None and client_id is None:
            raise BinanceError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        order: Order | None = None
        if order_id is not None:
            order = account.orders.get((symbol, order_id))
            if order is not None and client_id is not None and order.client_order_id != client_id:
                order = None
        else:
            assert client_id is not None
            matches = [o for o in account.by_client_id.get(client_id, []) if o.symbol == symbol]
            order = matches[-1] if matches else None
        if order is None:
            raise BinanceError(unknown)
        return order

    def open_orders(self, account_name: str, symbol: str | None) -> list[Order]:
        if symbol is not None:
            self.market(symbol)
        orders = self.accounts[account_name].open_orders()
        return [o for o in orders if symbol is None or o.symbol == symbol]

    def all_orders(
        self,
        account_name: str,
        symbol: str,
        from_order_id: int | None,
        start_time: int | None,
        end_time: int | None,
        limit: int,
    ) -> list[Order]:
        self.market(symbol)
        orders = [o for (s, _), o in self.accounts[account_name].orders.items() if s == symbol]
        if from_order_id is not None:
            return [o for o in orders if o.order_id >= from_order_id][:limit]
        orders = [
            o
            for o in orders
            if (start_time is None or o.time >= start_time)
            and (end_time is None or o.time <= end_time)
        ]
        return orders[:limit] if start_time is not None else orders[-limit:]

    def my_trades(
        self,
        account_name: str,
        symbol: str,
        order_id: int | None,
        from_id: int | None,
        start_time: int | None,
        end_time: int | None,
        limit: int,
    ) -> list[Fill]:
        self.market(symbol)
        fills: Iterable[Fill] = (f for f in self.accounts[account_name].fills if f.symbol == symbol)
        if order_id is not None:
            fills = (f for f in fills if f.order_id == order_id)
        if from_id is not None:
            return [f for f in fills if f.trade_id >= from_id][:limit]
        selected = [
            f
            for f in fills
            if (start_time is None or f.time >= start_time)
            and (end_time is None or f.time <= end_time)
        ]
        return selected[:limit] if start_time is not None else selected[-limit:]

    def _balance_event(self, account: AccountState, spec: SymbolSpec, now_ms: int) -> BalanceUpdate:
        rows = tuple(
            (asset, account.balance(asset).free, account.balance(asset).locked)
            for asset in (spec.base, spec.quote)
        )
        return BalanceUpdate(account.name, now_ms, rows)

    def set_balance(
        self, account_name: str, asset: str, free: Decimal, now_ms: int
    ) -> BalanceUpdate:
        """Admin: set an asset's free balance (locked funds stay with their orders)."""
        account = self.accounts[account_name]
        account.balance(asset).free = free
        account.update_time = now_ms
        bal = account.balance(asset)
        return BalanceUpdate(account.name, now_ms, ((asset, bal.free, bal.locked),))
