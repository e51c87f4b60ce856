"""Reconciliation of one shard: journal vs. exchange on start, lookups by client id for
every order whose outcome is unknown (never resent), order polling and fill booking
(deduplicated by the journal and the PositionBook, so replays after a failover cannot
double-count)."""

from __future__ import annotations

import functools
import logging

from tradebot_runtime import metrics
from tradebot_runtime.domain import Fill
from tradebot_runtime.engine_core import EngineCore, now_ms
from tradebot_runtime.exchange.client import OrderReport
from tradebot_runtime.orders import LookupResult, OrderRecord, OrderState, UpdateOutcome

log = logging.getLogger("tradebot.engine")

NOT_FOUND_GRACE_MS = 10_000
"""An UNKNOWN order not found by its client id is abandoned only after this long."""


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
            self.book.apply(fill)
        for record in await self.journal.load_orders(
            self.fence.bot, self.fence.account, self.shard
        ):
            self.orders[record.client_order_id] = record
            self.client.remember(record.exchange_order_id, record.client_order_id)
        await self.reconcile()
        await self._load_tags()

    async def reconcile(self) -> None:
        """Look up every working journal order by client id, book missed fills, and count
        our open orders on the exchange the journal does not know."""
        for record in list(self.orders.values()):
            await self._refresh(record)
        known = set(self.orders)
        for symbol in self.symbols:
            for report in await self.client.open_orders(symbol):
                cid = report.client_order_id
                if self.client.ids.owns(cid) and cid not in known:
                    parts = self.client.ids.parse(cid or "")
                    if parts.shard == self.shard:
                        self._mismatch("unjournaled_open_order", cid)
        await self.sync_fills()
        self.reconciled = True
        self._log("reconciled", orders=len(self.orders), mismatches=self.stats.mismatches)

    def _mismatch(self, kind: str, cid: str | None) -> None:
        self.stats.mismatches += 1
        metrics.RECONCILE_MISMATCHES.labels(str(self.shard), kind).inc()
        log.warning("reconcile mismatch", extra={"kind": kind, "client_order_id": cid})

    async def _refresh(self, record: OrderRecord) -> None:
        """Apply what the exchange says about ``record`` (lookup by client id)."""
        report = await self.client.lookup(record.intent.symbol, record.client_order_id)
        now = now_ms()
        if report is None:
            outcome = record.resolve_lookup(
                LookupResult.NOT_FOUND, now, not_found_grace_ms=NOT_FOUND_GRACE_MS
            )
        else:
            outcome = record.resolve_lookup(
                LookupResult.FOUND, now, status=report.status, filled=report.filled,
                not_found_grace_ms=NOT_FOUND_GRACE_MS,
                exchange_order_id=report.exchange_order_id,
            )  # fmt: skip
            self.client.remember(report.exchange_order_id, record.client_order_id)
        if outcome is UpdateOutcome.CONFLICT:
            self._mismatch("state_conflict", record.client_order_id)
        if outcome is UpdateOutcome.APPLIED:
            await self.journal.update_order(self.fence, record)
            if record.state is OrderState.ABANDONED:
                await self._load_tags()  # it never reached the market: not in the schedule
        if record.state.is_terminal:
            self.orders.pop(record.client_order_id, None)

    async def resolve_unknown(self) -> int:
        """Look up every INTENT/SENDING/UNKNOWN order; returns how many remain unresolved."""
        pending = [r for r in self.orders.values() if r.state in _LOOKUP]
        for record in pending:
            await self._refresh(record)
        return sum(1 for r in self.orders.values() if r.state in _LOOKUP)

    async def poll_orders(self) -> None:
        """Refresh working orders (open orders per symbol, lookups for the rest) and fills."""
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

    async def sync_fills(self) -> int:
        """Book our fills from the exchange (deduplicated); returns how many were new."""
        new = 0
        for symbol in self.symbols:
            # booked trades are in the journal already (the book is loaded from it)
            known = functools.partial(self.book.has_fill, symbol)
            for fill in await self.client.my_trades(symbol, known=known):
                if self.client.ids.parse(fill.client_order_id).shard != self.shard:
                    continue
                if await self.journal.record_fill(self.fence, fill):
                    new += 1
                self._apply_fill(fill)
        return new

    def _apply_fill(self, fill: Fill) -> None:
        if self.book.apply(fill):
            self.last_price.setdefault(fill.symbol, fill.price)


_LOOKUP = frozenset({OrderState.INTENT, OrderState.SENDING, OrderState.UNKNOWN})
