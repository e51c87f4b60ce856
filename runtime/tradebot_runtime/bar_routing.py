"""Market data to the shard engines: prices and closed bars go to the engine of the shard
that trades the symbol, only while it may trade; a standby remembers the latest bar and
re-evaluates it on takeover."""

from __future__ import annotations

import copy
import logging
import time
from decimal import Decimal
from typing import Final

from tradebot_runtime.app_state import JOURNAL_OUTAGE, AppState, ShardSlot, log_fenced
from tradebot_runtime.candles import Timeframe
from tradebot_runtime.domain import Bar
from tradebot_runtime.engine import ShardEngine
from tradebot_runtime.exchange.paper import PaperBroker
from tradebot_runtime.journal import StaleEpochError
from tradebot_runtime.strategies.base import Strategy

log = logging.getLogger("tradebot.app")

REPLAY_GRACE_MS: Final = 1_000
"""On takeover the latest closed bar is re-evaluated only while the next one is not yet
due (its period plus this grace), so a stale signal is never traded."""


class BarRouting(AppState):
    """Routes prices and bars to the engines; the takeover replay of the latest bar."""

    def on_price(self, symbol: str, price: Decimal) -> None:
        if isinstance(self.client, PaperBroker):
            self.client.on_price(symbol, price)
        slot = self.slot_by_symbol.get(symbol)
        if slot is not None and slot.engine is not None:
            slot.engine.last_price[symbol] = price

    async def on_bar(self, bar: Bar, live: bool) -> None:
        slot = self.slot_by_symbol.get(bar.symbol)
        if slot is None:
            return
        async with slot.lock:
            engine = slot.engine
            tradeable = live and engine is not None and self._can_trade(slot, bar)
            if not tradeable or engine is None:
                if engine is None and not self.stopping:
                    self._remember_for_replay(slot, bar, live)
                slot.strategy.warmup([bar])
                if engine is not None:
                    engine.last_price[bar.symbol] = bar.close
                return
            try:
                await engine.on_bar(bar)
            except StaleEpochError as exc:
                log_fenced(slot.index, exc)
            except Exception as exc:
                self._bar_failed(slot, exc)

    def _bar_failed(self, slot: ShardSlot, exc: Exception) -> None:
        if isinstance(exc, JOURNAL_OUTAGE):  # reported by check_journal: one line here
            log.warning("bar not traded: journal unreachable",
                        extra={"shard": slot.index, "error": repr(exc)})  # fmt: skip
        else:
            log.error("bar handling failed", extra={"shard": slot.index}, exc_info=exc)

    def _can_trade(self, slot: ShardSlot, bar: Bar) -> bool:
        return (
            self.is_leader(slot.index)
            and self.delete_request is None
            and self.feed is not None
            and not self.feed.stale(bar.symbol)
            and (self.credentials is None or self.credentials.usable)  # fail closed
        )

    async def _replay_latest_bar(self, slot: ShardSlot, engine: ShardEngine) -> None:
        """Takeover: re-evaluate the latest closed bar with the journal's account snapshot
        instead of waiting for the next bar (called under ``slot.lock``, reconciled).

        The strategy is restored to its state from before that bar and gets it through
        ``on_bar``, exactly as a leader would have. What the previous leader already did
        on that bar is in the context (journaled orders incl. in-flight ones, reconciled
        fills and positions, tag schedules), so a strategy that decides from the context
        (every built-in: position/open-order/tag gated) does not repeat it; a pending
        intent the previous leader never placed is placed now. Nothing is replayed once
        the next bar is due."""
        bars, snapshot = slot.replay_bars, slot.replay_strategy
        slot.replay_bars, slot.replay_strategy = [], None
        if not bars or snapshot is None:
            return
        try:
            period_ms = Timeframe.parse(bars[0].timeframe).ms
        except ValueError:
            return
        if int(time.time() * 1000) >= bars[0].ts + 2 * period_ms + REPLAY_GRACE_MS:
            return
        if not all(self._can_trade(slot, bar) for bar in bars):
            return
        slot.strategy = engine.strategy = snapshot
        log.info(
            "re-evaluating the latest bar on takeover",
            extra={"shard": slot.index, "epoch": engine.fence.epoch, "bar_ts": bars[0].ts},
        )
        for bar in bars:
            try:
                await engine.on_bar(bar)
            except StaleEpochError as exc:
                log_fenced(slot.index, exc)
                return
            except Exception as exc:
                self._bar_failed(slot, exc)

    def _remember_for_replay(self, slot: ShardSlot, bar: Bar, live: bool) -> None:
        """Keep the latest closed live bar group and the strategy state from before it
        (called before ``bar`` is fed to ``warmup``)."""
        latest = slot.replay_bars[0].ts if slot.replay_bars else None
        if not live:  # history / backfill: warmed outside any snapshot, nothing to replay
            slot.replay_bars, slot.replay_strategy = [], None
        elif latest is None or bar.ts > latest:
            try:
                snapshot: Strategy | None = copy.deepcopy(slot.strategy)
            except Exception:  # a plugin strategy that cannot be copied: no replay
                snapshot = None
            slot.replay_bars, slot.replay_strategy = [bar], snapshot
        elif bar.ts == latest and all(b.symbol != bar.symbol for b in slot.replay_bars):
            slot.replay_bars.append(bar)
        else:  # an older bar came late: the snapshot no longer precedes every warmed bar
            slot.replay_bars, slot.replay_strategy = [], None
