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

import logging
import random
import time
from decimal import Decimal

from opentelemetry import trace

from tradebot_contracts.types import TradingState
from tradebot_runtime import metrics
from tradebot_runtime.domain import Bar, CancelIntent, OrderIntent
from tradebot_runtime.engine_core import now_ms
from tradebot_runtime.engine_reconcile import ShardReconciler
from tradebot_runtime.exchange.client import SendResult, SendStatus
from tradebot_runtime.journal import StaleEpochError
from tradebot_runtime.orders import OrderRecord, OrderState
from tradebot_runtime.precision import conform_intent
from tradebot_runtime.risk import risk_inputs_for
from tradebot_runtime.strategies.base import StrategyContext

log = logging.getLogger("tradebot.engine")

SEQ_BLOCK = 1024
"""Sequence numbers reserved per journal round trip: a refill costs a second durable
commit on the hot path, so it must happen for well under 1% of orders (p99)."""

START_BACKOFF_INITIAL_S = 1.0
START_BACKOFF_MAX_S = 30.0


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


class ShardEngine(ShardReconciler):
    """One shard held at one epoch. Create a new one for every acquisition.

    The fields are in engine_core.py; start, reconciliation, lookups and order polling
    in engine_reconcile.py; the order pipeline here."""

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
            balances=self.balances,
        )

    async def on_bar(self, bar: Bar) -> list[OrderRecord]:
        """Feed one closed bar to the strategy and place what it asks for."""
        self.last_price[bar.symbol] = bar.close
        if not self.reconciled or self.stopped:
            return []
        self.sample_pnl()  # a new mark: the day's PnL and the peak move with it
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
        # acknowledged fills count at once: a second intent in the same bar must not pass
        # the position cap, nor a reduce-only one flip the position, before the poll
        position = self.book.position(symbol).amount + self.unbooked(symbol)
        inputs = risk_inputs_for(
            symbol, position,
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
            result = await self.client.create_order(record, self.is_leader)
            self._apply_send_result(record, result)
            if ack.is_recording():
                ack.set_attribute("state", record.state.value)
                ack.set_attribute("send_status", result.status.value)
                if record.exchange_order_id is not None:
                    ack.set_attribute("exchange_order_id", record.exchange_order_id)
                if result.status is SendStatus.REJECTED:
                    ack.set_attribute("reason", result.reason)
        await self.journal.update_order(self.fence, record)
        if record.state in (OrderState.REJECTED, OrderState.ABANDONED):
            await self._load_tags()  # a refused order does not count for the schedule
        if record.state.is_terminal:
            self._retire(record)
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
        elif result.status is SendStatus.NOT_SENT:
            record.mark_not_sent(now)
            metrics.ORDERS.labels(*labels, "not_sent").inc()
            log.warning(
                "order not sent: the Lease lapsed during a rate-limit wait",
                extra={"client_order_id": record.client_order_id},
            )
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
        """Ask the exchange to cancel; then look the order up. PENDING_CANCEL lasts only
        while the request is in flight: an order the exchange still shows working after a
        refused, failed or timed-out cancel is OPEN again (the next cancel retries it, and
        the strategy sees the level taken, so nothing is placed twice)."""
        record = self.orders.get(client_order_id)
        if record is None or record.state not in _CANCELLABLE or not self.is_leader():
            return
        record.request_cancel(now_ms())
        await self.journal.update_order(self.fence, record)
        try:
            await self.client.cancel(record.intent.symbol, client_order_id)
        except Exception as exc:  # outcome unknown: the lookup tells
            metrics.CANCEL_FAILURES.labels(str(self.shard)).inc()
            log.warning(
                "cancel failed, looking the order up",
                extra={"client_order_id": client_order_id, "error": type(exc).__name__},
            )
        await self.settle_cancel(record)

    async def cancel_all(self) -> int:
        """Cancel every working order of the shard (delete request / halt); unresolved
        ones are looked up. Returns how many are still working."""
        await self.resolve_unknown()
        for cid in list(self.orders):
            await self.cancel(cid)
        return len(self.orders)

    def set_trading_state(self, state: TradingState) -> None:
        self.risk.set_trading_state(state)

    async def enforce_trading_state(self) -> int:
        """The kill switch on orders already working: Halted and ReduceOnly cancel every
        entry (an order that is not reduce-only); reducing orders stay. Called on every
        poll, so a refused or failed cancel is tried again. Returns the entries cancelled."""
        if self.risk.trading_state not in ("Halted", "ReduceOnly"):
            return 0
        entries = [
            r.client_order_id
            for r in self.orders.values()
            if r.state in _CANCELLABLE and not r.intent.reduce_only
        ]
        for cid in entries:
            await self.cancel(cid)
        return len(entries)


_CANCELLABLE = frozenset({OrderState.OPEN, OrderState.PARTIALLY_FILLED})
