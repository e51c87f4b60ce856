"""Positions and PnL from fills, with average-cost accounting.

Average cost (not FIFO): a fill that grows a position moves the average entry price to
the size-weighted mean; a fill that shrinks it realizes ``closed x (price - average)``
(sign-adjusted for shorts) and leaves the average unchanged; a fill that crosses zero
closes the old position and opens the remainder at the fill price. It is what exchanges
show for derivatives and needs no lot bookkeeping. The result depends on the order of
fills, so a replay must use the journal's order (insertion order).

Fees are tracked apart from trading PnL, in the quote currency:

* fee in quote: booked as is;
* fee in base (Binance spot charges the received asset): the position really changes by
  ``amount - fee`` on a buy and ``amount + fee`` on a sell, so the base amount matches the
  balance; the fee's quote value (``fee x price``) is booked as a fee;
* fee in another asset (e.g. BNB): converted with the rate the caller passes (quote per
  unit); without a rate it is kept in ``unconverted_fees`` and reported, never guessed.

Fills are deduplicated by (symbol, exchange trade id): applying a fill twice is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from tradebot_runtime.domain import ZERO, Fill, Position, Side, split_symbol

_HUNDRED: Final = Decimal(100)
_DAY_MS: Final = 86_400_000


@dataclass(slots=True)
class _Book:
    amount: Decimal = ZERO
    avg_price: Decimal = ZERO
    realized: Decimal = ZERO
    fees: Decimal = ZERO

    def trade(self, delta: Decimal, price: Decimal) -> None:
        """Apply a signed base-amount change at ``price`` (average-cost)."""
        amount = self.amount
        if delta == 0:
            return
        if amount == 0 or (amount > 0) == (delta > 0):
            new_amount = amount + delta
            self.avg_price = (abs(amount) * self.avg_price + abs(delta) * price) / abs(new_amount)
            self.amount = new_amount
            return
        closed = min(abs(delta), abs(amount))
        direction = 1 if amount > 0 else -1
        self.realized += closed * (price - self.avg_price) * direction
        new_amount = amount + delta
        if new_amount == 0:
            self.avg_price = ZERO
        elif (new_amount > 0) != (amount > 0):
            self.avg_price = price  # flipped: the remainder opened at this fill's price
        self.amount = new_amount


class PositionBook:
    """Positions of one account (all symbols of a pod), built from our fills."""

    def __init__(self) -> None:
        self._books: dict[str, _Book] = {}
        self._seen: set[tuple[str, str, str]] = set()
        self.unconverted_fees: dict[str, Decimal] = {}
        """Fees in assets without a conversion rate, by currency (reported, not in PnL)."""

    def apply(self, fill: Fill, fee_rate: Decimal | None = None) -> bool:
        """Book one fill; returns False (and changes nothing) if it was already booked.

        ``fee_rate`` converts a fee paid in a third asset to quote (quote per unit of
        ``fill.fee_currency``); unused for fees in base or quote.
        """
        key = fill.key
        if key in self._seen:
            return False
        base, quote = split_symbol(fill.symbol)
        book = self._books.setdefault(fill.symbol, _Book())
        amount = fill.amount
        fee_quote = ZERO
        if fill.fee:
            if fill.fee_currency == quote:
                fee_quote = fill.fee
            elif fill.fee_currency == base:
                fee_quote = fill.fee * fill.price
                amount = amount - fill.fee if fill.side is Side.BUY else amount + fill.fee
                amount = max(amount, ZERO)  # a fee larger than a buy leaves nothing
            elif fee_rate is not None:
                fee_quote = fill.fee * fee_rate
            else:
                current = self.unconverted_fees.get(fill.fee_currency, ZERO)
                self.unconverted_fees[fill.fee_currency] = current + fill.fee
        book.trade(amount if fill.side is Side.BUY else -amount, fill.price)
        book.fees += fee_quote
        self._seen.add(key)
        return True

    def apply_all(self, fills: Iterable[Fill]) -> int:
        """Book fills in order (e.g. a journal replay); returns how many were new."""
        return sum(1 for fill in fills if self.apply(fill))

    def has_fill(self, symbol: str, trade_id: str, side: str) -> bool:
        return (symbol, trade_id, side) in self._seen

    def position(self, symbol: str) -> Position:
        book = self._books.get(symbol)
        if book is None:
            return Position(symbol=symbol)
        return Position(
            symbol=symbol,
            amount=book.amount,
            avg_entry_price=book.avg_price,
            realized_pnl=book.realized,
            fees_quote=book.fees,
        )

    def positions(self) -> dict[str, Position]:
        return {symbol: self.position(symbol) for symbol in self._books}

    def realized_pnl(self) -> Decimal:
        """Trading PnL realized so far, before fees."""
        return sum((book.realized for book in self._books.values()), ZERO)

    def fees(self) -> Decimal:
        return sum((book.fees for book in self._books.values()), ZERO)

    def unrealized_pnl(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Unrealized PnL at ``marks`` (last prices); every open position needs a mark."""
        total = ZERO
        missing = []
        for symbol, book in self._books.items():
            if book.amount == 0:
                continue
            mark = marks.get(symbol)
            if mark is None:
                missing.append(symbol)
                continue
            total += book.amount * (mark - book.avg_price)
        if missing:
            raise ValueError(f"no mark price for open positions: {', '.join(sorted(missing))}")
        return total

    def total_pnl(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Realized - fees + unrealized: the equity change since the book started."""
        return self.realized_pnl() - self.fees() + self.unrealized_pnl(marks)

    def position_notional(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Sum of |position| x mark over open positions (gross exposure)."""
        total = ZERO
        for symbol, book in self._books.items():
            if book.amount != 0:
                mark = marks.get(symbol)
                if mark is None:
                    raise ValueError(f"no mark price for open position {symbol}")
                total += abs(book.amount) * mark
        return total


@dataclass(frozen=True, slots=True)
class PnlSnapshot:
    """Figures for the risk engine, metrics and the heartbeat."""

    total_pnl: Decimal
    daily_pnl: Decimal
    equity: Decimal
    peak_equity: Decimal
    drawdown_pct: Decimal


@dataclass(slots=True)
class PnlTrackerState:
    """What must survive a restart (persist it, or rebuild it from the journal)."""

    day: int
    """UTC day number (ms // 86_400_000) of ``day_open_pnl``."""
    day_open_pnl: Decimal
    peak_equity: Decimal
    last_total_pnl: Decimal = field(default=ZERO)


class PnlTracker:
    """Daily PnL (since 00:00 UTC) and drawdown from the equity peak.

    ``starting_equity`` is the capital the bot trades (its allocation); equity is that plus
    the total PnL. Feed it ``total_pnl`` (PositionBook.total_pnl) whenever prices or fills
    change. At a UTC day change the last seen total becomes the new day's opening.
    """

    def __init__(self, starting_equity: Decimal, state: PnlTrackerState | None = None) -> None:
        if starting_equity <= 0:
            raise ValueError("starting equity must be positive")
        self.starting_equity = starting_equity
        self._state = state

    @property
    def state(self) -> PnlTrackerState | None:
        return self._state

    def update(self, now_ms: int, total_pnl: Decimal) -> PnlSnapshot:
        day = now_ms // _DAY_MS
        equity = self.starting_equity + total_pnl
        state = self._state
        if state is None:
            state = PnlTrackerState(
                day=day, day_open_pnl=total_pnl, peak_equity=equity, last_total_pnl=total_pnl
            )
            self._state = state
        elif day > state.day:
            state.day = day
            state.day_open_pnl = state.last_total_pnl
        state.last_total_pnl = total_pnl
        if equity > state.peak_equity:
            state.peak_equity = equity
        peak = state.peak_equity
        if peak <= 0:
            drawdown = _HUNDRED
        else:
            drawdown = min(_HUNDRED, max(ZERO, (peak - equity) * _HUNDRED / peak))
        return PnlSnapshot(
            total_pnl=total_pnl,
            daily_pnl=total_pnl - state.day_open_pnl,
            equity=equity,
            peak_equity=peak,
            drawdown_pct=drawdown,
        )
