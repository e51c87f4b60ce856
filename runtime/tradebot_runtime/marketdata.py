"""Market data: closed candles per symbol for the strategies, last prices, staleness.

Two sources per symbol, the WebSocket first:

* **candles** (timeframes the exchange serves, 1m and up): ``ccxt.pro watch_ohlcv``; a
  candle is closed once a newer one appears or its period has ended on the wall clock.
  ``watch_ohlcv`` returns only the candles updated since the previous call (ccxt.pro's
  ``newUpdates``), usually just the one being built, so the last state of a candle seen
  while it was open is kept (``SymbolFeed.pending``) and emitted when the stream moves on
  to a newer candle (or the clock passes its end). REST fallback: ``fetch_ohlcv`` polling.
* **trades** (sub-minute timeframes such as ``1s``/``5s``, which most exchanges do not
  serve as candles): ``watch_trades`` aggregated by CandleAggregator; REST fallback
  ``fetch_trades`` polling.

A failed or frozen stream (no message within ``freeze_timeout_s``) counts in
``exchange_websocket_disconnects_total``, the socket is closed, REST polling takes over
and the stream is retried with exponential backoff and full jitter (reset after a good
message). Before a candle is emitted, the range since the last emitted one is checked with
``find_gaps`` and backfilled from REST, so a reconnect never skips a candle. Candles
older than the latest closed one are delivered as ``history`` (strategy warm-up, never
orders). Staleness (``is_stale``: no update for one period + grace) is exported per symbol
in ``tradebot_market_data_stale``; the app places no orders while a symbol is stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from tradebot_runtime import metrics
from tradebot_runtime.candles import (
    CandleAggregator,
    Timeframe,
    find_gaps,
    is_stale,
    latest_closed_open,
)
from tradebot_runtime.domain import Bar, to_decimal
from tradebot_runtime.exchange.client import ExchangeClient
from tradebot_runtime.marketdata_rows import row_to_bar, split_closed, trade_from_ccxt

log = logging.getLogger("tradebot.marketdata")

EXCHANGE_MIN_TIMEFRAME_MS: Final = 60_000
MAX_SEEN_TRADES: Final = 5_000
BarHandler = Callable[[Bar, bool], Awaitable[None]]
"""(bar, live): live=False for history (warm-up only)."""
PriceHandler = Callable[[str, Decimal], None]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class FeedSettings:
    poll_interval_s: float = 1.0
    freeze_timeout_s: float = 5.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 15.0
    stale_grace_ms: int = 5_000
    use_websocket: bool = True
    history_bars: int = 100


@dataclass
class SymbolFeed:
    symbol: str
    last_update_ms: int | None = None
    last_emitted_ts: int | None = None
    source: str = "none"
    disconnects: int = 0
    aggregator: CandleAggregator | None = None
    since_ms: int | None = None
    seen_ids: dict[str, None] = field(default_factory=dict)
    """Recent trade ids (insertion ordered, bounded): REST polls overlap, ws replays."""
    pending: Sequence[Any] | None = None
    """The newest candle row seen while still open (candle timeframes only)."""


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform(0, min(max, initial * 2**attempt))."""
    return rng.uniform(0, min(maximum, initial * (2 ** min(attempt, 30))))


class MarketFeed:
    """Closed candles and last prices for ``symbols``; see the module docstring."""

    def __init__(
        self,
        rest: ExchangeClient,
        symbols: Sequence[str],
        timeframe: str,
        on_bar: BarHandler,
        *,
        ws: Any | None = None,
        on_price: PriceHandler | None = None,
        settings: FeedSettings | None = None,
        clock: Callable[[], int] = now_ms,
        rng: random.Random | None = None,
    ) -> None:
        self.rest = rest
        self.ws = ws
        self.timeframe = Timeframe.parse(timeframe)
        self.on_bar = on_bar
        self.on_price = on_price
        self.settings = settings or FeedSettings()
        self.clock = clock
        self.rng = rng or random.Random()
        self.use_trades = self.timeframe.ms < EXCHANGE_MIN_TIMEFRAME_MS
        self.feeds = {s: SymbolFeed(s) for s in symbols}
        for feed in self.feeds.values():
            if self.use_trades:
                feed.aggregator = CandleAggregator(feed.symbol, self.timeframe)
        self._locks = {s: asyncio.Lock() for s in symbols}

    # -- queries ------------------------------------------------------------------------

    def stale(self, symbol: str, now: int | None = None) -> bool:
        feed = self.feeds.get(symbol)
        if feed is None:
            return True
        return is_stale(
            self.clock() if now is None else now,
            feed.last_update_ms,
            self.timeframe,
            grace_ms=self.settings.stale_grace_ms,
        )

    def stale_symbols(self) -> list[str]:
        now = self.clock()
        out = [s for s in self.feeds if self.stale(s, now)]
        for symbol in self.feeds:
            metrics.MARKET_DATA_STALE.labels(symbol).set(1 if symbol in out else 0)
        return out

    # -- running ------------------------------------------------------------------------

    async def run(self) -> None:
        await asyncio.gather(*(self._run_symbol(s) for s in self.feeds))

    async def _run_symbol(self, symbol: str) -> None:
        feed = self.feeds[symbol]
        attempt = 0
        while True:
            if self.ws is not None and self.settings.use_websocket:
                try:
                    await self._stream(feed)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    feed.disconnects += 1
                    metrics.WS_DISCONNECTS.labels("trades" if self.use_trades else "ohlcv").inc()
                    log.warning(
                        "market data stream failed",
                        extra={"symbol": symbol, "error": f"{type(exc).__name__}: {exc}"[:200]},
                    )
                    await self._close_ws()
                if feed.source == "ws":
                    attempt = 0  # the stream had worked: start the backoff over
                delay = backoff_delay(
                    attempt, self.settings.backoff_initial_s, self.settings.backoff_max_s,
                    self.rng,
                )  # fmt: skip
                attempt += 1
                feed.source = "rest"
                await self._poll_for(feed, delay)
            else:
                feed.source = "rest"
                await self._poll_for(feed, float("inf"))

    async def _close_ws(self) -> None:
        if self.ws is None:
            return
        with contextlib.suppress(Exception):
            await self.ws.close()

    async def _poll_for(self, feed: SymbolFeed, seconds: float) -> None:
        """REST polling for ``seconds`` (at least one poll)."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                await self.poll_once(feed.symbol)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "market data poll failed",
                    extra={"symbol": feed.symbol, "error": f"{type(exc).__name__}: {exc}"[:200]},
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(min(self.settings.poll_interval_s, remaining))

    async def _stream(self, feed: SymbolFeed) -> None:
        assert self.ws is not None
        timeout = self.settings.freeze_timeout_s
        while True:
            if self.use_trades:
                trades = await asyncio.wait_for(self.ws.watch_trades(feed.symbol), timeout)
                feed.source = "ws"
                await self._ingest_trades(feed, trades)
            else:
                rows = await asyncio.wait_for(
                    self.ws.watch_ohlcv(feed.symbol, self.timeframe.label), timeout
                )
                feed.source = "ws"
                await self._ingest_rows(feed, rows)

    # -- ingestion ----------------------------------------------------------------------

    async def poll_once(self, symbol: str) -> None:
        feed = self.feeds[symbol]
        if self.use_trades:
            since_ms = feed.since_ms if feed.since_ms is not None else self.clock() - 2_000
            trades = await self.rest.read(
                "fetch_trades", lambda: self.rest.exchange.fetch_trades(symbol, since_ms)
            )
            await self._ingest_trades(feed, trades)
        else:
            since: int | None = (
                feed.last_emitted_ts + self.timeframe.ms
                if feed.last_emitted_ts is not None
                else None
            )
            rows = await self.rest.read(
                "fetch_ohlcv",
                lambda: self.rest.exchange.fetch_ohlcv(
                    symbol, self.timeframe.label, since, self.settings.history_bars
                ),
            )
            await self._ingest_rows(feed, rows)

    def _touch(self, feed: SymbolFeed, price: Decimal | None) -> None:
        if price is not None and (not price.is_finite() or price <= 0):
            # invalid data neither refreshes the feed (it goes stale) nor marks positions
            metrics.MARKET_DATA_INVALID.labels(feed.symbol).inc()
            log.warning("invalid market data", extra={"symbol": feed.symbol, "price": str(price)})
            return
        feed.last_update_ms = self.clock()
        if price is not None and self.on_price is not None:
            self.on_price(feed.symbol, price)

    async def _ingest_trades(self, feed: SymbolFeed, trades: Sequence[dict[str, Any]]) -> None:
        async with self._locks[feed.symbol]:
            assert feed.aggregator is not None
            bars: list[Bar] = []
            last_price: Decimal | None = None
            for raw in sorted(trades, key=lambda t: (int(t["timestamp"]), str(t.get("id")))):
                ts = int(raw["timestamp"])
                tid = f"{raw.get('id')}:{ts}"
                if tid in feed.seen_ids:
                    continue
                feed.seen_ids[tid] = None
                if len(feed.seen_ids) > MAX_SEEN_TRADES:
                    del feed.seen_ids[next(iter(feed.seen_ids))]
                feed.since_ms = max(feed.since_ms or 0, ts)
                trade = trade_from_ccxt(feed.symbol, raw)
                last_price = trade.price
                bars.extend(feed.aggregator.add_trade(trade))
            bars.extend(feed.aggregator.flush(self.clock()))
            self._touch(feed, last_price)
            for bar in bars:
                await self._emit(feed, bar)

    def _valid_row(self, feed: SymbolFeed, row: Sequence[Any]) -> bool:
        """An invalid candle (Bar refuses it) is counted, logged and skipped: it neither
        refreshes the feed nor reaches the strategy."""
        try:
            row_to_bar(feed.symbol, self.timeframe.label, row)
        except (ValueError, TypeError, ArithmeticError) as exc:
            metrics.MARKET_DATA_INVALID.labels(feed.symbol).inc()
            log.warning("invalid market data", extra={"symbol": feed.symbol, "error": str(exc)})
            return False
        return True

    async def _ingest_rows(self, feed: SymbolFeed, rows: Sequence[Sequence[Any]]) -> None:
        async with self._locks[feed.symbol]:
            if not rows:
                self._touch(feed, None)
                return
            valid = [r for r in rows if self._valid_row(feed, r)]
            newest = max(rows, key=lambda r: int(r[0]))
            if any(r is newest for r in valid):
                self._touch(feed, to_decimal(newest[4]))
            closed_valid, feed.pending = split_closed(
                valid, feed.pending, self.clock(), self.timeframe
            )
            closed = [row_to_bar(feed.symbol, self.timeframe.label, r) for r in closed_valid]
            closed = [
                b for b in closed if feed.last_emitted_ts is None or b.ts > feed.last_emitted_ts
            ]
            if not closed:
                return
            if feed.last_emitted_ts is not None:
                closed = await self._backfill(feed, closed)
            for bar in closed:
                await self._emit(feed, bar)

    async def _backfill(self, feed: SymbolFeed, closed: list[Bar]) -> list[Bar]:
        """Fill the candles missing between the last emitted one and ``closed``."""
        assert feed.last_emitted_ts is not None
        start = feed.last_emitted_ts + self.timeframe.ms
        end = closed[-1].ts + self.timeframe.ms
        gaps = find_gaps((b.ts for b in closed), self.timeframe, start, end)
        if not gaps:
            return closed
        by_ts = {b.ts: b for b in closed}
        for gap in gaps:
            log.info(
                "market data gap",
                extra={
                    "symbol": feed.symbol,
                    "from": gap.start,
                    "bars": gap.bar_count(self.timeframe),
                },
            )
            bars = await self.rest.fetch_ohlcv(
                feed.symbol, self.timeframe.label, gap.start, gap.bar_count(self.timeframe)
            )
            for bar in bars:
                if gap.start <= bar.ts < gap.end:
                    by_ts[bar.ts] = bar
        return [by_ts[ts] for ts in sorted(by_ts)]

    async def _emit(self, feed: SymbolFeed, bar: Bar) -> None:
        if feed.last_emitted_ts is not None and bar.ts <= feed.last_emitted_ts:
            return
        feed.last_emitted_ts = bar.ts
        live = bar.ts >= latest_closed_open(self.clock(), self.timeframe)
        await self.on_bar(bar, live)

    async def load_history(self) -> None:
        """Warm-up candles (candle timeframes only): delivered with live=False."""
        if self.use_trades:
            return
        for symbol, feed in self.feeds.items():
            try:
                bars = await self.rest.fetch_ohlcv(
                    symbol, self.timeframe.label, None, self.settings.history_bars
                )
            except Exception as exc:
                log.warning("history load failed", extra={"symbol": symbol, "error": str(exc)})
                continue
            latest = latest_closed_open(self.clock(), self.timeframe)
            async with self._locks[symbol]:
                for bar in bars:
                    if bar.ts < latest:
                        await self._emit(feed, bar)
                if bars:
                    self._touch(feed, bars[-1].close)
