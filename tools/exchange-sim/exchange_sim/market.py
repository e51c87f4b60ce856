"""One symbol's synthetic market: price path, order book, public trades and candles.

The book is a deterministic function of the path price and the step number; takers consume
it until the next step rebuilds it. Pure: callers pass the time in.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from .config import SymbolSpec
from .decimals import ZERO, floor_to_step, quantize_to
from .models import BUY, Candle, PublicTrade
from .pricepath import PricePath

MINUTE_MS = 60_000
DAY_MS = 86_400_000
BPS = Decimal(10_000)
MAX_CANDLES = 20_000  # about two weeks of 1m candles
MAX_TRADES = 1_000


@dataclass(slots=True)
class Level:
    price: Decimal
    qty: Decimal


class Market:
    def __init__(self, spec: SymbolSpec, path: PricePath, rng: random.Random) -> None:
        self.spec = spec
        self.path = path
        self._rng = rng
        self.step_no = 0
        self.update_id = 1
        self.next_trade_id = 1
        self.next_order_id = 1
        self.candles: deque[Candle] = deque(maxlen=MAX_CANDLES)
        self.trades: deque[PublicTrade] = deque(maxlen=MAX_TRADES)
        self.last_price = quantize_to(path.price, spec.tick_size)
        self.best_bid = ZERO
        self.best_ask = ZERO
        self._book: tuple[list[Level], list[Level]] | None = None
        self._reprice()

    # --- price path and book ---

    def _mid(self) -> Decimal:
        return max(self.spec.tick_size, self.path.price)

    def _reprice(self) -> None:
        spec, mid = self.spec, self._mid()
        spread = max(spec.tick_size, quantize_to(mid * spec.spread_bps / BPS, spec.tick_size))
        bid = floor_to_step(mid - spread / 2, spec.tick_size)
        self.best_bid = max(spec.tick_size, bid)
        self.best_ask = self.best_bid + spread
        self._book = None
        self.update_id += 1

    def level_qty(self, index: int) -> Decimal:
        """Synthetic size at a level: deeper levels hold more, with a small fixed wobble."""
        spec = self.spec
        wobble = Decimal(90 + (self.step_no * 31 + index * 17) % 21) / 100
        raw = spec.level_notional / self._mid() * (1 + Decimal(index) / 4) * wobble
        return max(spec.min_qty, floor_to_step(raw, spec.step_size))

    def book(self) -> tuple[list[Level], list[Level]]:
        """(bids, asks), best first; built lazily once per step, then consumed by takers."""
        if self._book is None:
            spec = self.spec
            gap = max(
                spec.tick_size,
                floor_to_step(self._mid() * spec.level_gap_bps / BPS, spec.tick_size),
            )
            bids: list[Level] = []
            asks: list[Level] = []
            for i in range(spec.levels):
                qty = self.level_qty(i)
                bid_price = self.best_bid - gap * i
                if bid_price >= spec.min_price:
                    bids.append(Level(bid_price, qty))
                ask_price = self.best_ask + gap * i
                if ask_price <= spec.max_price:
                    asks.append(Level(ask_price, qty))
            self._book = (bids, asks)
        return self._book

    def advance(self, now_ms: int, dt_seconds: Decimal) -> PublicTrade:
        """One path step: new mid, fresh book, one synthetic public trade at the touch."""
        before = self.last_price
        self.path.step(dt_seconds)
        self.step_no += 1
        self._reprice()
        # The tape prints the path price (on the tick grid, inside the spread), so candles
        # reproduce a replayed CSV exactly.
        price = quantize_to(self.path.price, self.spec.tick_size)
        price = min(max(price, self.best_bid), self.best_ask)
        up = price >= before
        return self.record_trade(price, self._synthetic_qty(price), now_ms, not up)

    def set_price(self, price: Decimal, now_ms: int) -> PublicTrade:
        """Admin override: jump the path to ``price`` (continues from there)."""
        self.path.price = price
        self.step_no += 1
        self._reprice()
        return self.record_trade(
            quantize_to(price, self.spec.tick_size),
            self._synthetic_qty(price),
            now_ms,
            price < self.last_price,
        )

    def _synthetic_qty(self, price: Decimal) -> Decimal:
        spec = self.spec
        factor = Decimal(50 + self._rng.randrange(101)) / 100  # 0.5 .. 1.5
        raw = (spec.trade_notional / max(price, spec.tick_size) * factor).quantize(
            spec.step_size, rounding=ROUND_DOWN
        )
        return max(spec.min_qty, raw)

    def take(
        self,
        side: str,
        qty: Decimal | None,
        quote: Decimal | None,
        limit_price: Decimal | None,
        dry_run: bool = False,
    ) -> list[tuple[Decimal, Decimal]]:
        """Walk the opposite side of the book; return [(price, qty)] executed.

        Exactly one of ``qty`` (base) and ``quote`` bounds the walk. ``limit_price`` stops
        at the first level worse than it. Unless ``dry_run``, consumed sizes stay consumed
        until the next step.
        """
        bids, asks = self.book()
        levels = asks if side == BUY else bids
        step = self.spec.step_size
        fills: list[tuple[Decimal, Decimal]] = []
        left_qty, left_quote = qty, quote
        for level in levels:
            if limit_price is not None and (
                level.price > limit_price if side == BUY else level.price < limit_price
            ):
                break
            if level.qty <= ZERO:
                continue
            take = level.qty
            if left_qty is not None:
                take = min(take, left_qty)
            if left_quote is not None:
                take = min(take, floor_to_step(left_quote / level.price, step))
            if take <= ZERO:
                break
            fills.append((level.price, take))
            if not dry_run:
                level.qty -= take
            if left_qty is not None:
                left_qty -= take
                if left_qty <= ZERO:
                    break
            if left_quote is not None:
                left_quote -= take * level.price
        if fills and not dry_run:
            self.update_id += 1
        return fills

    # --- public trades and candles ---

    def record_trade(
        self, price: Decimal, qty: Decimal, now_ms: int, is_buyer_maker: bool
    ) -> PublicTrade:
        trade = PublicTrade(
            self.next_trade_id, self.spec.symbol, price, qty, now_ms, is_buyer_maker
        )
        self.next_trade_id += 1
        self.trades.append(trade)
        self.last_price = price
        self._candle_for(now_ms, price).add(trade)
        return trade

    def _candle_for(self, now_ms: int, first_price: Decimal) -> Candle:
        open_time = now_ms - now_ms % MINUTE_MS
        if self.candles and self.candles[-1].open_time == open_time:
            return self.candles[-1]
        if self.candles and self.candles[-1].open_time > open_time:
            return self.candles[-1]  # a late trade (clock skew) joins the newest candle
        # A candle opens at its first trade, as on Binance (gaps between candles stay).
        candle = Candle(open_time, first_price, first_price, first_price, first_price)
        self.candles.append(candle)
        return candle

    def warm_up(self, end_ms: int, minutes: int, substeps: int = 4) -> None:
        """Generate ``minutes`` of 1m candles ending at ``end_ms`` (market time = 1 min each)."""
        dt = Decimal(60) / substeps
        first_minute = end_ms - end_ms % MINUTE_MS - minutes * MINUTE_MS
        for m in range(minutes):
            base = first_minute + m * MINUTE_MS
            for k in range(substeps):
                self.advance(base + k * (MINUTE_MS // substeps), dt)
