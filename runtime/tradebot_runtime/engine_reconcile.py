"""Reconciliation of one shard: journal vs. exchange on start, lookups by client id for
every order whose outcome is unknown (never resent), order polling and fill booking
(deduplicated by the journal and the PositionBook, so replays after a failover cannot
double-count)."""

from __future__ import annotations

import functools
import logging
import time
from decimal import Decimal

from tradebot_runtime import metrics
from tradebot_runtime.domain import Fill
from tradebot_runtime.engine_core import EngineCore, now_ms
from tradebot_runtime.exchange.client import OrderReport
from tradebot_runtime.orders import LookupResult, OrderRecord, OrderState, UpdateOutcome
from tradebot_runtime.positions import PnlTracker, PnlTrackerState

log = logging.getLogger("tradebot.engine")


BALANCE_REFRESH_S = 30.0
"""Free balances are read again after this long (or after a fill): the account endpoint
weighs 20 on Binance, too much for every poll."""
BALANCE_MIN_INTERVAL_S = 5.0

ABANDONED_RELOOK_MS = 3_600_000
"""How far back a takeover looks up abandoned orders again."""

FILL_OVERLAP_MS = 5_000
"""Fills are fetched from this long before the newest trade synced: a trade the exchange
records a little late (an older timestamp than one already seen) is still found."""


class ShardReconciler(EngineCore):
    """Start, reconcile, look up and poll the orders and fills of one shard."""

    def drop_unknown_symbols(self) -> list[str]:
        """Symbols the exchange does not list: reported, never traded or queried."""
        unknown = [s for s in self.symbols if not self.client.has_symbol(s)]
        for symbol in unknown:
            metrics.CONFIG_ERRORS.labels("unknown_symbol").inc()
            self._problem(
                f"symbol:{symbol}", f"unknown symbol {symbol}: not listed by the exchange"
            )
        self.symbols = [s for s in self.symbols if s not in unknown]
        return unknown

    async def start(self, holder: str) -> None:
        """Record the epoch (fencing), then reconcile journal vs exchange."""
        self.drop_unknown_symbols()
        await self.journal.take_shard(self.fence, holder)
        await self.journal.audit(
            self.fence.bot, self.fence.account, "shard.acquired", shard=self.shard,
            epoch=self.fence.epoch, data={"holder": holder},
        )  # fmt: skip
        for fill in await self.journal.load_fills(self.fence.bot, self.fence.account, self.shard):
            self._book(fill)  # an old fill's price is no reference for now
            self.fill_cursor[fill.symbol] = max(self.fill_cursor.get(fill.symbol, 0), fill.ts)
        for symbol in self.symbols:
            if symbol not in self.fill_cursor:  # no fill booked: none before its first order
                first = await self.journal.first_order_ms(
                    self.fence.bot, self.fence.account, self.shard, symbol
                )
                self.fill_cursor[symbol] = now_ms() if first is None else first
        baseline = await self.journal.load_pnl_baseline(
            self.fence.bot, self.fence.account, self.shard
        )
        if baseline is not None:  # the day's opening and the peak survive a takeover
            self.pnl = PnlTracker(self.pnl.starting_equity, baseline)
            self.saved_pnl = _pnl_key(baseline)
        for record in await self.journal.load_orders(
            self.fence.bot, self.fence.account, self.shard
        ):
            self.orders[record.client_order_id] = record
            self.client.remember(record.exchange_order_id, record.client_order_id)
        await self.reconcile()
        await self._load_tags()

    async def reconcile(self) -> None:
        """Look up every working journal order by client id, book missed fills, and count
        our open orders on the exchange the journal does not know. A PENDING_CANCEL left
        by the previous leader (it died mid-cancel) is settled: no cancel of this epoch is
        in flight."""
        for record in list(self.orders.values()):
            if record.state is OrderState.PENDING_CANCEL:
                await self.settle_cancel(record)
            else:
                await self._refresh(record)
        await self._look_again_at_abandoned()
        known = set(self.orders)
        for symbol in self.symbols:
            for report in await self.client.open_orders(symbol):
                cid = report.client_order_id
                if self.client.ids.owns(cid) and cid not in known:
                    parts = self.client.ids.parse(cid or "")
                    if parts.shard == self.shard:
                        self._mismatch("unjournaled_open_order", cid)
        await self.sync_fills()
        await self.refresh_balances(force=True)
        self.reconciled = True
        self._log("reconciled", orders=len(self.orders), mismatches=self.stats.mismatches)

    async def _look_again_at_abandoned(self) -> None:
        """Orders abandoned in the last ABANDONED_RELOOK_MS are looked up once more: one
        the exchange took after all (a grace too short, a clock far off) is working again
        and is journaled, instead of resting unseen by risk, halts and the strategy."""
        since = now_ms() - ABANDONED_RELOOK_MS
        for record in await self.journal.load_abandoned(
            self.fence.bot, self.fence.account, self.shard, since
        ):
            report = await self.client.lookup(record.intent.symbol, record.client_order_id)
            if report is None:
                continue
            self._mismatch("abandoned_found", record.client_order_id)
            if record.revive(report.status, report.filled, now_ms()) is UpdateOutcome.APPLIED:
                self.client.remember(report.exchange_order_id, record.client_order_id)
                await self.journal.update_order(self.fence, record)
                if record.state.is_working:
                    self.orders[record.client_order_id] = record
                await self._load_tags()

    def _mismatch(self, kind: str, cid: str | None) -> None:
        self.stats.mismatches += 1
        metrics.RECONCILE_MISMATCHES.labels(str(self.shard), kind).inc()
        log.warning("reconcile mismatch", extra={"kind": kind, "client_order_id": cid})

    def _not_before(self, record: OrderRecord, now: int) -> int:
        """From when a NOT_FOUND order's grace runs: this epoch's INTENT/SENDING orders
        are being sent by this process (never abandoned: the send decides them); a
        previous leader's from the takeover (its request may have left just before)."""
        if record.state in (OrderState.INTENT, OrderState.SENDING):
            return now if record.epoch == self.fence.epoch else self.started_ms
        return 0

    async def _refresh(self, record: OrderRecord) -> None:
        """Apply what the exchange says about ``record`` (lookup by client id)."""
        report = await self.client.lookup(record.intent.symbol, record.client_order_id)
        now = now_ms()
        grace = self.client.not_found_grace_ms()
        if report is None:
            outcome = record.resolve_lookup(
                LookupResult.NOT_FOUND, now, not_found_grace_ms=grace,
                not_before_ms=self._not_before(record, now),
            )  # fmt: skip
        else:
            outcome = record.resolve_lookup(
                LookupResult.FOUND, now, status=report.status, filled=report.filled,
                not_found_grace_ms=grace, exchange_order_id=report.exchange_order_id,
            )  # fmt: skip
            self.client.remember(report.exchange_order_id, record.client_order_id)
        if outcome is UpdateOutcome.CONFLICT:
            self._mismatch("state_conflict", record.client_order_id)
        if outcome is UpdateOutcome.APPLIED:
            await self.journal.update_order(self.fence, record)
            if record.state is OrderState.ABANDONED:
                await self._load_tags()  # it never reached the market: not in the schedule
        if record.state.is_terminal:
            self._retire(record)

    async def settle_cancel(self, record: OrderRecord) -> None:
        """After a cancel attempt: the exchange's state of the order, or OPEN again when it
        is still working or cannot be told (a later lookup corrects it): an order is never
        left PENDING_CANCEL, which nothing would retry."""
        try:
            await self._refresh(record)
        except Exception as exc:
            log.warning(
                "lookup after a cancel failed; the order counts as working",
                extra={"client_order_id": record.client_order_id, "error": type(exc).__name__},
            )
        if record.state is OrderState.PENDING_CANCEL:
            record.cancel_refused(now_ms())
            await self.journal.update_order(self.fence, record)

    async def resolve_unknown(self) -> int:
        """Look up every INTENT/SENDING/UNKNOWN order; returns how many remain unresolved."""
        pending = [r for r in self.orders.values() if r.state in _LOOKUP]
        for record in pending:
            await self._refresh(record)
        return sum(1 for r in self.orders.values() if r.state in _LOOKUP)

    async def poll_orders(self) -> None:
        """Refresh working orders (open orders per symbol, lookups for the rest) and fills,
        then sample and save the PnL baselines."""
        booked = self.fills_booked
        await self._poll_orders()
        await self.refresh_balances(force=self.fills_booked != booked)  # a fill moved them
        self.sample_pnl()
        await self.save_pnl()

    async def _poll_orders(self) -> None:
        working = list(self.orders.values())
        if not working:
            await self.sync_fills()
            return
        open_by_cid: dict[str, OrderReport] = {}
        for symbol in {r.intent.symbol for r in working}:
            for item in await self.client.open_orders(symbol):
                if item.client_order_id:
                    open_by_cid[item.client_order_id] = item
        for record in working:
            report = open_by_cid.get(record.client_order_id)
            if report is not None and record.state not in _LOOKUP:
                if (
                    record.apply_exchange_update(report.status, report.filled, now_ms())
                    is UpdateOutcome.APPLIED
                ):
                    await self.journal.update_order(self.fence, record)
            else:
                await self._refresh(record)
        await self.sync_fills()

    async def refresh_balances(self, *, force: bool = False) -> None:
        """Free balances from the exchange, for a strategy that uses them: every
        BALANCE_REFRESH_S, or after a new fill (``force``) but not more often than every
        BALANCE_MIN_INTERVAL_S; a failure keeps the last known ones."""
        if not getattr(self.strategy, "uses_balances", False):
            return
        age = time.monotonic() - self.balances_at
        if age < (BALANCE_MIN_INTERVAL_S if force else BALANCE_REFRESH_S):
            return
        try:
            self.balances = await self.client.free_balances()
        except Exception as exc:
            log.warning("balances not refreshed: %s", type(exc).__name__)
            return
        self.balances_at = time.monotonic()

    def sample_pnl(self) -> None:
        """Feed the PnL tracker the current total (on every mark change and poll, not only
        when an order is tried: day rollovers and peaks between orders count)."""
        self.pnl.update(now_ms(), self.book.total_pnl(self.last_price))

    async def save_pnl(self) -> None:
        """Write the PnL baselines when they changed (fenced)."""
        state = self.pnl.state
        if state is None or _pnl_key(state) == self.saved_pnl:
            return
        await self.journal.save_pnl_baseline(self.fence, state)
        self.saved_pnl = _pnl_key(state)

    async def sync_fills(self) -> int:
        """Book our fills from the exchange (deduplicated); returns how many were new.

        Fetched forward from the newest trade synced (minus FILL_OVERLAP_MS), page after
        page: a burst of trades on the account never pushes one of ours out of reach."""
        new = 0
        for symbol in self.symbols:
            # booked trades are in the journal already (the book is loaded from it)
            known = functools.partial(self.book.has_fill, symbol)
            cursor = self.fill_cursor.get(symbol, now_ms())
            page = await self.client.fills_since(
                symbol, max(0, cursor - FILL_OVERLAP_MS), known=known
            )
            for fill in page.fills:
                if self.client.ids.parse(fill.client_order_id).shard != self.shard:
                    continue
                if await self.journal.record_fill(self.fence, fill):
                    new += 1
                self._apply_fill(fill)
            self.fill_cursor[symbol] = max(cursor, page.newest_ms)
        return new

    def _apply_fill(self, fill: Fill) -> None:
        if self._book(fill):
            self.last_price.setdefault(fill.symbol, fill.price)

    def _book(self, fill: Fill) -> bool:
        """Into the position book (once per fill); an order it completes stops settling."""
        if not self.book.apply(fill):
            return False
        cid = fill.client_order_id
        self.fills_booked += 1
        self.booked[cid] = self.booked.get(cid, Decimal(0)) + fill.amount
        settled = self.settling.get(cid)
        if settled is not None and self.booked[cid] >= settled.filled:
            del self.settling[cid]
        return True


_LOOKUP = frozenset({OrderState.INTENT, OrderState.SENDING, OrderState.UNKNOWN})


def _pnl_key(state: PnlTrackerState) -> tuple[object, ...]:
    return (state.day, state.day_open_pnl, state.peak_equity, state.last_total_pnl)
