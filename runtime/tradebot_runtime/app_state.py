"""The state the parts of ``RuntimeApp`` share (one ``ShardSlot`` per configured shard, the
clients, the live config) and the leadership checks every part uses."""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg
from aiohttp import web
from kubernetes_asyncio import client as k8s

from tradebot_contracts import env
from tradebot_contracts.runtime_config import DeleteRequest, RuntimeConfig
from tradebot_contracts.types import TradingState
from tradebot_runtime.credentials import CredentialsProvider, credentials_refusal
from tradebot_runtime.data_logins import DataLogins
from tradebot_runtime.domain import Bar
from tradebot_runtime.engine import ShardEngine
from tradebot_runtime.exchange.client import ExchangeClient
from tradebot_runtime.identity import Identity
from tradebot_runtime.journal import Journal, StaleEpochError
from tradebot_runtime.leases import LeaseManager
from tradebot_runtime.marketdata import MarketFeed
from tradebot_runtime.precision import MoneyPrecision
from tradebot_runtime.strategies.base import Strategy

log = logging.getLogger("tradebot.app")


@dataclass
class ShardSlot:
    """One configured shard of this process: its strategy, and its engine while this pod
    holds the shard's Lease (``epoch``)."""

    index: int
    lease: str
    symbols: list[str]
    strategy: Strategy
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    engine: ShardEngine | None = None
    epoch: int | None = None
    starting: asyncio.Task[None] | None = None
    ack: str | None = None
    error: str | None = None
    start_failures: int = 0
    """Failed starts in a row (reset by a successful start): drives the back-off."""
    replay_bars: list[Bar] = field(default_factory=list)
    """The latest closed live bar(s) (one per symbol, same open time) this process saw
    without trading them (standby, or still reconciling)."""
    replay_strategy: Strategy | None = None
    """A copy of the strategy from before ``replay_bars`` were fed to ``warmup``."""


JOURNAL_OUTAGE: Final = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # admin/crash shutdown, cannot connect now
    OSError,
    TimeoutError,
)
"""Errors that mean the journal's server is unreachable (not a bad statement)."""


def log_fenced(shard: int, exc: StaleEpochError) -> None:
    log.error(
        "fenced: a newer epoch owns the shard, journal write refused, shard stopped",
        extra={"shard": shard, "epoch": exc.fence.epoch, "current_epoch": exc.current},
    )


class AppState:
    """What every part of ``RuntimeApp`` reads and writes; see app.py."""

    def __init__(self, identity: Identity, config: RuntimeConfig) -> None:
        self.identity = identity
        self.config = config
        self.running_version = config.config_version
        self.bot_id = f"{config.namespace}/{config.bot}"
        self.stopping = False
        self.started = False
        self.rng = random.Random()
        self.failed: str | None = None
        self.delete_request: DeleteRequest | None = None
        self.pending_rollout: frozenset[str] = frozenset()
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task[Any]] = []
        self.background: set[asyncio.Future[Any]] = set()
        self.slots: dict[int, ShardSlot] = {}
        self.slot_by_symbol: dict[str, ShardSlot] = {}
        self.api: k8s.ApiClient | None = None
        self.journal: Journal | None = None
        self.redis: Any = None
        self.journal_problem: str | None = None
        """Set while the journal's PostgreSQL is unreachable: no order can be placed."""
        self.client: ExchangeClient | None = None
        self.ws: Any = None
        self.feed: MarketFeed | None = None
        self.leases: LeaseManager | None = None
        self.http: web.AppRunner | None = None
        self.credentials: CredentialsProvider | None = None
        self.data_logins: DataLogins | None = None
        """The bot's own journal and Redis logins (Vault), when the installation gives them."""
        self.refusal = credentials_refusal(config)
        """Why no shard of this pod may trade (a paper bot on a sandbox or live account):
        held shards report it in their heartbeat (state Error) and never start."""
        self.unknown_symbols: dict[str, str] = {}
        self.money = MoneyPrecision(config.allocation.quote)
        """Precision of the published money figures (the quote currency's once the markets
        are loaded; DEFAULT_MONEY_PLACES until then)."""
        self.poll_interval_s = float(os.environ.get(env.POLL_INTERVAL) or 1.0)

    # -- state helpers ------------------------------------------------------------------

    @property
    def trading_state(self) -> TradingState:
        return self.config.trading_state

    def _risk_state(self) -> TradingState:
        return "Halted" if self.delete_request is not None else self.trading_state

    def is_leader(self, shard: int) -> bool:
        return not self.stopping and self.leases is not None and self.leases.is_leader(shard)

    def _leading(self, slot: ShardSlot) -> Callable[[], float]:
        """tradebot_leader of a shard: 1 while this pod trades it and its Lease is fresh."""
        return lambda: 1.0 if slot.engine is not None and self.is_leader(slot.index) else 0.0

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
