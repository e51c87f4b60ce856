"""The execution pipeline of one shard: strategy -> conform -> risk -> journal (fenced,
intent first) -> send under the client id -> ack/fills -> positions and PnL.

Invariants (money):

* Nothing is sent that is not journaled first: the intent row is inserted (state
  SENDING, fenced by the epoch) in one durable statement before the create request.
* ``is_leader()`` (time-based, from the LeaseManager) is checked right before the journal
  write and again right before the send; a StaleEpochError stops the shard.
* A create whose outcome is unknown is never resent: the order goes UNKNOWN and is
  resolved by a lookup of its client id (``resolve_unknown``), also during reconciliation.
* Fills are deduplicated by the journal (account, symbol, trade id) and by the
  PositionBook, so replays after a failover cannot double-count.

Tracing (tracing.py): one ``tick`` span per bar, children ``decision`` (the strategy),
``risk`` (per intent) and ``order`` (journal + send) with its child ``ack`` (the exchange's
answer). Attributes are built only when the span is recording (a provider is installed).
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Tracer

from tradebot_contracts.types import TradingState
from tradebot_runtime import metrics, tracing
from tradebot_runtime.domain import Bar, CancelIntent, Fill, OrderIntent
from tradebot_runtime.exchange.client import ExchangeClient, OrderReport, SendResult, SendStatus
from tradebot_runtime.journal import Fence, Journal, StaleEpochError
from tradebot_runtime.orders import LookupResult, OrderRecord, OrderState, UpdateOutcome
from tradebot_runtime.positions import PnlTracker, PositionBook
from tradebot_runtime.precision import conform_intent
from tradebot_runtime.risk import RiskEngine, risk_inputs_for
from tradebot_runtime.strategies.base import Strategy, StrategyContext, TagStats

log = logging.getLogger("tradebot.engine")

SEQ_BLOCK = 1024
"""Sequence numbers reserved per journal round trip: a refill costs a second durable
commit on the hot path, so it must happen for well under 1% of orders (p99)."""
NOT_FOUND_GRACE_MS = 10_000
"""An UNKNOWN order not found by its client id is abandoned only after this long."""


START_BACKOFF_INITIAL_S = 1.0
START_BACKOFF_MAX_S = 30.0


def now_ms() -> int:
    return int(time.time() * 1000)


def start_backoff(
    failures: int,
    rng: random.Random,
    *,
    initial_s: float = START_BACKOFF_INITIAL_S,
    max_s: float = START_BACKOFF_MAX_S,
) -> float:
    """Seconds a shard whose start failed ``failures`` times in a row (>= 1) waits before
    it is handed back (and retried, under a new epoch): exponential, capped, with "equal
    jitter" -- uniform in [d/2, d] for d = min(max_s, initial_s * 2**(failures - 1)) -- so
    that pods failing together spread out, yet never retry at once. The caller resets
    ``failures`` after a successful start."""
    if failures < 1:
        raise ValueError("failures counts the failed starts and is at least 1")
    ceiling = min(max_s, initial_s * 2.0 ** min(failures - 1, 30))
    return rng.uniform(ceiling / 2, ceiling)


class NotLeader(RuntimeError):
    """The shard is not (or no longer) led by this process."""


@dataclass
class ShardStats:
    placed: int = 0
    rejected: int = 0
    unknown: int = 0
    mismatches: int = 0
    risk_rejected: int = 0


@dataclass
class ShardEngine:
    """One shard held at one epoch. Create a new one for every acquisition."""

    journal: Journal
    client: ExchangeClient
    strategy: Strategy
    risk: RiskEngine
    fence: Fence
    symbols: list[str]
    is_leader: Callable[[], bool]
    pnl: PnlTracker
    book: PositionBook = field(default_factory=PositionBook)
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    last_price: dict[str, Decimal] = field(default_factory=dict)
    stats: ShardStats = field(default_factory=ShardStats)
    tags: dict[tuple[str, str], TagStats] = field(default_factory=dict)
    reconciled: bool = False
    stopped: bool = False
    problems: dict[str, str] = field(default_factory=dict)
    """Current bad-input problems (key -> message) for logs and the heartbeat."""
    _seqs: Iterator[int] = field(default_factory=lambda: iter(()))
    tracer: Tracer = field(default_factory=tracing.get_tracer)
    """Global (no-op unless ``setup_tracing`` installed a provider); tests inject one."""

    @property
    def shard(self) -> int:
        return self.fence.shard

    def _log(self, msg: str, **extra: Any) -> None:
        log.info(msg, extra={"shard": self.shard, "epoch": self.fence.epoch, **extra})

    # -- start / reconcile --------------------------------------------------------------

    def _problem(self, key: str, message: str) -> None:
        if self.problems.get(key) != message:
            log.warning(message, extra={"shard": self.shard, "epoch": self.fence.epoch})
        self.problems[key] = message

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

    async def _load_tags(self) -> None:
        stats = await self.journal.tag_stats(self.fence.bot, self.fence.account, self.shard)
        self.tags = {key: TagStats(count=n, last_ts=last) for key, (n, last) in stats.items()}

    def _count_tag(self, record: OrderRecord) -> None:
        key = (record.intent.symbol, record.intent.tag)
        old = self.tags.get(key)
        self.tags[key] = TagStats(count=(old.count if old else 0) + 1, last_ts=record.created_ms)

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

    # -- trading ------------------------------------------------------------------------

    def context(self, symbol: str, now: int) -> StrategyContext:
        return StrategyContext(
            symbol=symbol,
            now_ms=now,
            position=self.book.position(symbol),
            open_orders=tuple(
                r.as_open_order() for r in self.orders.values() if r.intent.symbol == symbol
            ),
            last_price=self.last_price.get(symbol),
            tag_stats={tag: stats for (sym, tag), stats in self.tags.items() if sym == symbol},
            trading_state=self.risk.trading_state,
        )

    async def on_bar(self, bar: Bar) -> list[OrderRecord]:
        """Feed one closed bar to the strategy and place what it asks for."""
        self.last_price[bar.symbol] = bar.close
        if not self.reconciled or self.stopped:
            return []
        with self.tracer.start_as_current_span("tick") as tick:
            if tick.is_recording():
                tick.set_attributes(
                    {"symbol": bar.symbol, "shard": self.shard, "epoch": self.fence.epoch,
                     "timeframe": bar.timeframe, "bar.ts": bar.ts}
                )  # fmt: skip
            with self.tracer.start_as_current_span("decision") as decision:
                actions = self.strategy.on_bar(bar, self.context(bar.symbol, now_ms()))
                if decision.is_recording():
                    decision.set_attribute("intents", len(actions))
            placed: list[OrderRecord] = []
            for action in actions:
                if isinstance(action, CancelIntent):
                    await self.cancel(action.client_order_id)
                else:
                    record = await self.submit(action)
                    if record is not None:
                        placed.append(record)
            return placed

    def _snapshot(self) -> tuple[Decimal, Decimal]:
        total = self.book.total_pnl(self.last_price)
        snap = self.pnl.update(now_ms(), total)
        return snap.daily_pnl, snap.drawdown_pct

    async def _next_seq(self) -> int:
        seq = next(self._seqs, None)
        if seq is None:
            self._seqs = iter(await self.journal.allocate_seqs(self.fence, SEQ_BLOCK))
            seq = next(self._seqs)
        return seq

    async def submit(self, intent: OrderIntent) -> OrderRecord | None:
        """conform -> risk -> journal -> send. Returns the record (None if not placed)."""
        started = time.perf_counter()
        symbol = intent.symbol
        if self.stopped or not self.reconciled or not self.is_leader():
            return None
        if symbol not in self.symbols:
            self._problem(
                f"symbol:{symbol}",
                f"intent for {symbol} refused: not a tradable symbol of this shard",
            )
            return None
        rules = self.client.market_rules(symbol)
        conformed = conform_intent(intent, rules, self.last_price.get(symbol))
        if conformed.intent is None:
            log.info("intent not placeable", extra={"problem": str(conformed.problem)})
            return None
        intent = conformed.intent
        daily, drawdown = self._snapshot()
        inputs = risk_inputs_for(
            symbol, self.book.position(symbol).amount,
            self.orders.values(),
            self.last_price.get(symbol), daily_pnl=daily, drawdown_pct=drawdown,
        )  # fmt: skip
        with self.tracer.start_as_current_span("risk") as risk_span:
            decision = self.risk.check(intent, inputs, now_ms())
            if risk_span.is_recording():
                risk_span.set_attribute("accepted", decision.allowed)
                risk_span.set_attribute("symbol", symbol)
                if decision.rule is not None:
                    risk_span.set_attribute("rule", decision.rule.value)
        if not decision.allowed:
            self.stats.risk_rejected += 1
            metrics.RISK_REJECTIONS.labels(str(decision.rule)).inc()
            return None
        with self.tracer.start_as_current_span("order") as order_span:
            if order_span.is_recording():
                order_span.set_attributes(
                    {"symbol": symbol, "side": intent.side.value, "amount": str(intent.amount),
                     "type": intent.type.value, "shard": self.shard, "epoch": self.fence.epoch}
                )  # fmt: skip
            return await self._place(intent, started)

    async def _place(self, intent: OrderIntent, started: float) -> OrderRecord | None:
        """rate-limit tokens -> journal (fenced, intent first) -> send -> apply the answer;
        inside the order span. The tokens are taken first so that nothing waits between
        the journal write and the send."""
        await self.client.reserve_order()
        try:
            return await self._journal_and_send(intent, started)
        finally:
            self.client.release_reservation()

    async def _journal_and_send(self, intent: OrderIntent, started: float) -> OrderRecord | None:
        symbol = intent.symbol
        order_span = trace.get_current_span()
        try:
            seq = await self._next_seq()
            now = now_ms()
            record = OrderRecord(
                client_order_id=self.client.ids.build(self.shard, self.fence.epoch, seq),
                intent=intent, shard=self.shard, epoch=self.fence.epoch, seq=seq, created_ms=now,
            )  # fmt: skip
            record.mark_sending(now)  # the row says "may have been sent" from the start
            if order_span.is_recording():
                order_span.set_attribute("client_order_id", record.client_order_id)
            if not self.is_leader():
                return None
            await self.journal.insert_intent(self.fence, record)
        except StaleEpochError:
            self.stopped = True  # counted in tradebot_journal_fenced_total by the journal
            raise
        self.orders[record.client_order_id] = record
        self._count_tag(record)
        if not self.is_leader():
            # journaled but not sent: SENDING is resolved by lookup like any other
            return record
        with self.tracer.start_as_current_span("ack") as ack:
            result = await self.client.create_order(record)
            self._apply_send_result(record, result)
            if ack.is_recording():
                ack.set_attribute("state", record.state.value)
                ack.set_attribute("send_status", result.status.value)
                if record.exchange_order_id is not None:
                    ack.set_attribute("exchange_order_id", record.exchange_order_id)
                if result.status is SendStatus.REJECTED:
                    ack.set_attribute("reason", result.reason)
        await self.journal.update_order(self.fence, record)
        if record.state is OrderState.REJECTED:
            await self._load_tags()  # a refused order does not count for the schedule
        if record.state.is_terminal:
            self.orders.pop(record.client_order_id, None)
        metrics.ORDER_LATENCY.labels(str(self.shard)).observe(time.perf_counter() - started)
        log.info(
            "order",
            extra={"client_order_id": record.client_order_id, "state": record.state.value,
                   "symbol": symbol, "side": intent.side.value, "amount": str(intent.amount)},
        )  # fmt: skip
        return record

    def _apply_send_result(self, record: OrderRecord, result: SendResult) -> None:
        intent = record.intent
        symbol = intent.symbol
        now = now_ms()
        labels = (str(self.shard), symbol, intent.side.value)
        if result.status is SendStatus.ACKED and result.report is not None:
            self.problems.pop(f"order:{symbol}", None)
            self.client.remember(result.report.exchange_order_id, record.client_order_id)
            record.apply_exchange_update(
                result.report.status, result.report.filled, now,
                exchange_order_id=result.report.exchange_order_id,
            )  # fmt: skip
            self.stats.placed += 1
            metrics.ORDERS.labels(*labels, "acked").inc()
        elif result.status is SendStatus.REJECTED:
            record.mark_rejected(now)
            self.stats.rejected += 1
            metrics.ORDERS.labels(*labels, "rejected").inc()
            reason = result.reason.split(":", 1)[0] or "unknown"
            metrics.ORDER_REJECTIONS.labels(symbol, reason).inc()
            self._problem(
                f"order:{symbol}",
                f"order rejected by the exchange ({symbol} {intent.side.value} "
                f"{intent.amount}): {result.reason}",
            )
        else:
            # UNKNOWN or breaker: resolved by lookup, never resent
            record.mark_unknown(now)
            self.stats.unknown += 1
            metrics.ORDERS.labels(*labels, "unknown").inc()

    async def cancel(self, client_order_id: str) -> None:
        record = self.orders.get(client_order_id)
        if record is None or record.state not in _CANCELLABLE or not self.is_leader():
            return
        record.request_cancel(now_ms())
        await self.journal.update_order(self.fence, record)
        await self.client.cancel(record.intent.symbol, client_order_id)
        await self._refresh(record)

    async def cancel_all(self) -> int:
        """Cancel every working order of the shard (delete request / halt); unresolved
        ones are looked up. Returns how many are still working."""
        await self.resolve_unknown()
        for cid in list(self.orders):
            await self.cancel(cid)
        return len(self.orders)

    def set_trading_state(self, state: TradingState) -> None:
        self.risk.set_trading_state(state)


_LOOKUP = frozenset({OrderState.INTENT, OrderState.SENDING, OrderState.UNKNOWN})
_CANCELLABLE = frozenset({OrderState.OPEN, OrderState.PARTIALLY_FILLED})
