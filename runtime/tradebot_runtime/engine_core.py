"""The state of one shard held at one epoch (the fields of ``ShardEngine``) and the helpers
both halves of the engine use: logging with shard and epoch, the bad-input problems of the
heartbeat, and the per-tag order schedule. Reconciliation is in engine_reconcile.py, the
order pipeline in engine.py."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from opentelemetry.trace import Tracer

from tradebot_runtime import tracing
from tradebot_runtime.domain import Side
from tradebot_runtime.exchange.client import ExchangeClient
from tradebot_runtime.journal import Fence, Journal
from tradebot_runtime.orders import OrderRecord
from tradebot_runtime.positions import PnlTracker, PositionBook
from tradebot_runtime.risk import RiskEngine
from tradebot_runtime.strategies.base import Strategy, TagStats

log = logging.getLogger("tradebot.engine")


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class ShardStats:
    placed: int = 0
    rejected: int = 0
    unknown: int = 0
    mismatches: int = 0
    risk_rejected: int = 0


@dataclass
class EngineCore:
    """What a ``ShardEngine`` holds; see engine.py."""

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
    booked: dict[str, Decimal] = field(default_factory=dict)
    """Per client order id: the amount of its fills booked in ``book``."""
    fills_booked: int = 0
    settling: dict[str, OrderRecord] = field(default_factory=dict)
    """Orders gone from ``orders`` (filled, canceled) whose acknowledged fills are not all
    booked yet: risk still counts them (``unbooked``)."""
    balances: dict[str, Decimal] = field(default_factory=dict)
    """Free balances by currency (``refresh_balances``): strategies budget with them."""
    balances_at: float = 0.0
    """time.monotonic() of the last balance refresh (0: never)."""
    saved_pnl: tuple[object, ...] | None = None
    """The PnL baselines as last written to the journal (``save_pnl``)."""
    fill_cursor: dict[str, int] = field(default_factory=dict)
    """Per symbol: the newest trade timestamp synced (ms); fills are fetched from there on
    (engine_reconcile.py ``sync_fills``)."""
    started_ms: int = field(default_factory=lambda: now_ms())
    """When this engine (one acquisition of the shard) was made: the takeover."""
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

    def _problem(self, key: str, message: str) -> None:
        if self.problems.get(key) != message:
            log.warning(message, extra={"shard": self.shard, "epoch": self.fence.epoch})
        self.problems[key] = message

    async def _load_tags(self) -> None:
        stats = await self.journal.tag_stats(self.fence.bot, self.fence.account, self.shard)
        self.tags = {key: TagStats(count=n, last_ts=last) for key, (n, last) in stats.items()}

    def unbooked(self, symbol: str) -> Decimal:
        """Signed amount the exchange reported filled (ack, lookup, poll) that no booked
        fill carries yet: part of the position for risk until the fills are booked."""
        total = Decimal(0)
        for record in (*self.orders.values(), *self.settling.values()):
            if record.intent.symbol != symbol:
                continue
            pending = record.filled - self.booked.get(record.client_order_id, Decimal(0))
            if pending > 0:
                total += pending if record.intent.side is Side.BUY else -pending
        return total

    def _retire(self, record: OrderRecord) -> None:
        """A terminal order leaves the working set; it settles until its fills are booked."""
        self.orders.pop(record.client_order_id, None)
        if record.filled > self.booked.get(record.client_order_id, Decimal(0)):
            self.settling[record.client_order_id] = record

    def _count_tag(self, record: OrderRecord) -> None:
        key = (record.intent.symbol, record.intent.tag)
        old = self.tags.get(key)
        self.tags[key] = TagStats(count=(old.count if old else 0) + 1, last_ts=record.created_ms)
