"""The runtime process: identity from env, config from the mounted file, live config from
the ConfigMap watch, Leases per shard, one ShardEngine per held shard, market data,
heartbeats, delete requests, probes and metrics, graceful shutdown.

Order safety (see engine.py for the pipeline): every engine's ``is_leader`` is the
LeaseManager's time-based check, so a lost Lease stops sending at once. SIGTERM stops
every engine (no new decision, no new intent) at once; an order already journaled is
still sent while the Lease is valid, and the Leases are released only after that
in-flight work has finished (bounded, see ``_quiesce_slots``), so a graceful stop never
leaves a journaled-but-unsent order for the successor to wait out. A delete request or
``Halted`` stops new orders at the next call (the ConfigMap watch applies it within the
watch latency).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import logging
import os
import random
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import asyncpg
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
from aiohttp import web
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio import watch as k8s_watch
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tradebot_contracts import env
from tradebot_contracts import runtime_config as rc
from tradebot_contracts.endpoint import endpoint_overrides
from tradebot_contracts.heartbeat import encode_heartbeat, now_utc
from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_contracts.runtime_config import DeleteRequest, RuntimeConfig
from tradebot_contracts.types import TradingState
from tradebot_runtime import metrics
from tradebot_runtime.breaker import BreakerState
from tradebot_runtime.candles import Timeframe
from tradebot_runtime.credentials import CredentialsProvider, apply_to_exchange
from tradebot_runtime.domain import Bar, OrderIntent, OrderType, Side
from tradebot_runtime.engine import ShardEngine, start_backoff
from tradebot_runtime.exchange.client import ExchangeClient
from tradebot_runtime.exchange.paper import DEFAULT_FEE_RATE, PaperBroker
from tradebot_runtime.journal import Fence, Journal, StaleEpochError
from tradebot_runtime.leases import LeaseManager
from tradebot_runtime.marketdata import FeedSettings, MarketFeed
from tradebot_runtime.positions import PnlTracker
from tradebot_runtime.precision import conform_intent
from tradebot_runtime.presence import RedisPresence, presence_key
from tradebot_runtime.ratelimit import (
    SharedRateLimiter,
    budget_params,
    install,
    order_count_params,
)
from tradebot_runtime.ratelimit_cost import budget_units_per_minute
from tradebot_runtime.risk import RiskEngine, RiskLimits
from tradebot_runtime.status import ShardView, build_heartbeat, diff_config
from tradebot_runtime.strategies import create_strategy
from tradebot_runtime.strategies.base import Strategy
from tradebot_runtime.tracing import setup_tracing, shutdown_tracing

log = logging.getLogger("tradebot.app")

FLATTEN_TAG: Final = "flatten"
SHUTDOWN_QUIESCE_S: Final = 2.0
"""SIGTERM: how long in-flight order work may finish before the Leases are released."""


@dataclass(frozen=True)
class Identity:
    """Who this process is (env from the Deployment's downward API; never a secret)."""

    namespace: str
    pod: str
    bot: str
    account: str
    configmap: str
    config_path: str
    leases: list[str]
    metrics_port: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Identity:
        e = os.environ if environ is None else environ
        missing = [k for k in (env.NAMESPACE, env.POD_NAME, env.BOT, env.ACCOUNT) if not e.get(k)]
        if missing:
            raise SystemExit(f"missing environment: {', '.join(missing)}")
        return cls(
            namespace=e[env.NAMESPACE],
            pod=e[env.POD_NAME],
            bot=e[env.BOT],
            account=e[env.ACCOUNT],
            configmap=e.get(env.CONFIGMAP, ""),
            config_path=e.get(env.CONFIG_PATH) or rc.CONFIG_PATH,
            leases=[n for n in e.get(env.LEASES, "").split(",") if n],
            metrics_port=int(e.get(env.METRICS_PORT) or 9090),
        )


@dataclass
class ShardSlot:
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

REPLAY_GRACE_MS: Final = 1_000
"""On takeover the latest closed bar is re-evaluated only while the next one is not yet
due (its period plus this grace), so a stale signal is never traded."""


def freeze_startup_heap() -> None:
    """Take what start-up allocated (modules, ccxt's markets, config) out of the garbage
    collector's generations: it lives as long as the process, and without this a full
    collection walks all of it between a signal and its order (an 83 ms gen-2 pause
    measured by tests/bench/bench_runtime_hotpath.py)."""
    gc.collect()
    gc.freeze()


async def kube_api_client() -> k8s.ApiClient:
    """KUBECONFIG when set (pod runner, out-of-cluster), else in-cluster config."""
    cfg = k8s.Configuration()
    if os.environ.get("KUBECONFIG"):
        await k8s_config.load_kube_config(
            config_file=os.environ["KUBECONFIG"], client_configuration=cfg
        )
    else:
        k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    return k8s.ApiClient(configuration=cfg)


def ccxt_config(config: RuntimeConfig, credentials: Mapping[str, str]) -> dict[str, Any]:
    conf: dict[str, Any] = {"enableRateLimit": True, "timeout": 10_000}
    if config.endpoint:
        conf.update(endpoint_overrides(config.exchange, config.endpoint))
    if config.market_type != "spot":
        options = dict(conf.get("options") or {})
        options["defaultType"] = config.market_type
        conf["options"] = options
    conf.update(credentials)
    return conf


def _make_exchange(module: Any, config: RuntimeConfig, credentials: Mapping[str, str]) -> Any:
    cls = getattr(module, config.exchange, None)
    if cls is None:
        raise SystemExit(f"ccxt has no exchange {config.exchange!r}")
    exchange = cls(ccxt_config(config, credentials))
    if config.account_mode == "sandbox" and not config.endpoint:
        exchange.set_sandbox_mode(True)
    return exchange


class RuntimeApp:
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
        self.unknown_symbols: dict[str, str] = {}
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

    def ready(self) -> bool:
        if not self.started or self.stopping or self.failed is not None:
            return False
        assert self.leases is not None
        for shard in self.leases.held:
            slot = self.slots[shard]
            if slot.engine is None or not slot.engine.reconciled:
                return False
        return True  # every held shard reconciled, or a healthy standby

    # -- setup --------------------------------------------------------------------------

    async def setup(self) -> None:
        config = self.config
        setup_tracing(  # only with an OTLP endpoint in the environment; else a no-op
            "tradebot-runtime",
            {
                "tradebot.bot": config.bot,
                "tradebot.account": config.account,
                "k8s.namespace.name": self.identity.namespace,
                "k8s.pod.name": self.identity.pod,
            },
        )
        for shard in config.shards:
            strategy = create_strategy(config.strategy, shard.symbols)
            slot = ShardSlot(shard.index, shard.lease_name, list(shard.symbols), strategy)
            self.slots[shard.index] = slot
            for symbol in shard.symbols:
                self.slot_by_symbol[symbol] = slot
            # Evaluated at scrape time with the same fail-closed check that guards sending,
            # so the gauge drops to 0 as soon as renewals stop, not when the loss is noticed.
            metrics.LEADER.labels(str(shard.index)).set_function(self._leading(slot))
        await self._start_http()
        self.api = await kube_api_client()
        dsn = config.journal_dsn or os.environ.get(env.JOURNAL_DSN)
        if not dsn:
            raise SystemExit("no journal DSN: set journalDsn in the operator settings")
        self.journal = await _retry("journal", lambda: Journal.connect(dsn))
        redis_url = config.redis_url or os.environ.get(env.REDIS_URL)
        if redis_url:
            import redis.asyncio as redis

            self.redis = redis.Redis.from_url(redis_url, socket_timeout=1.0)
        self.credentials = CredentialsProvider(config.credentials)
        credentials = await self.credentials.start()
        ids = ClientOrderIds(config.exchange, self.bot_id, config.account)
        exchange = _make_exchange(ccxt_async, config, credentials)
        if credentials:  # key rotation / fail closed swap the keys of this ccxt instance
            self.credentials.on_change(lambda values: apply_to_exchange(exchange, values))
        if config.mode == "paper" and not credentials:
            fee = Decimal(os.environ.get(env.PAPER_FEE_RATE) or DEFAULT_FEE_RATE)
            self.client = PaperBroker(exchange, ids, fee_rate=fee)
            log.info("paper broker: orders are filled in process", extra={"fee_rate": str(fee)})
        else:
            self.client = ExchangeClient(exchange, ids)
        del credentials
        # Always throttled through our limiter (never ccxt's own): without Redis it keeps
        # the conservative local share for good, and the 429/418 pause still applies.
        if self.redis is None:
            log.warning("no Redis configured: rate budget is a local share of the account's")
        units = budget_units_per_minute(
            config.exchange,
            config.rate_limit.requests_per_minute,
            config.rate_limit.weight_per_minute,
        )
        limiter = SharedRateLimiter(
            self.redis,
            config.rate_limit.budget_key,
            budget_params(exchange, units),
            pods=lambda: self.leases.live_pods if self.leases else 1,
        )
        install(exchange, limiter)
        if not isinstance(self.client, PaperBroker):  # the in-process broker sends nothing
            self.client.use_limiter(limiter)
            if config.rate_limit.orders_per_10s:
                self.client.order_limiter = SharedRateLimiter(
                    self.redis,
                    config.rate_limit.budget_key + ":orders",
                    order_count_params(config.rate_limit.orders_per_10s),
                    pods=lambda: self.leases.live_pods if self.leases else 1,
                )
        client = self.client
        await _retry("load_markets", client.load_markets)
        for symbol in config.symbols:
            if not client.has_symbol(symbol):
                # reported (log, metric, heartbeat), never traded: the other symbols go on
                message = f"unknown symbol {symbol}: not listed by the exchange"
                self.unknown_symbols[symbol] = message
                metrics.CONFIG_ERRORS.labels("unknown_symbol").inc()
                log.error(message, extra={"symbol": symbol})
        symbols = [s for s in config.symbols if s not in self.unknown_symbols]
        if os.environ.get(env.MARKET_DATA_WEBSOCKET, "1") != "0":
            try:
                self.ws = _make_exchange(ccxt_pro, config, {})
                self.ws.enableRateLimit = False
                self.ws.set_markets(exchange.markets, exchange.currencies)
            except Exception as exc:
                log.warning("no websocket market data: %s", exc)
                self.ws = None
        self.feed = MarketFeed(
            client,
            symbols,
            config.strategy.timeframe,
            self.on_bar,
            ws=self.ws,
            on_price=self.on_price,
            settings=FeedSettings(poll_interval_s=min(1.0, self.poll_interval_s)),
        )
        await self.feed.load_history()
        presence = None
        if self.redis is not None:
            key = presence_key(config.namespace, config.bot, config.account)
            presence = RedisPresence(
                self.redis, key, self.identity.pod, ttl_s=config.lease_duration_seconds * 2
            )
        lease_names = self.identity.leases or [s.lease_name for s in config.shards]
        self.leases = LeaseManager(
            self.api,
            self.identity.namespace,
            lease_names,
            self.identity.pod,
            duration_s=float(config.lease_duration_seconds),
            heartbeat=self.heartbeat,
            on_acquired=self.on_acquired,
            before_release=self.before_release,
            on_lost=self.on_lost,
            presence=presence,
        )
        self.apply_config(config, initial=True)
        self.started = True

    async def _start_http(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self.http = web.AppRunner(app, access_log=None)
        await self.http.setup()
        site = web.TCPSite(self.http, "0.0.0.0", self.identity.metrics_port)
        await site.start()

    async def _metrics(self, _: web.Request) -> web.Response:
        if self.feed is not None:
            self.feed.stale_symbols()
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _: web.Request) -> web.Response:
        if self.failed is not None:
            return web.Response(status=500, text=self.failed)
        return web.Response(text="ok")

    async def _readyz(self, _: web.Request) -> web.Response:
        return web.Response(text="ready") if self.ready() else web.Response(status=503)

    # -- run ----------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            setup = asyncio.create_task(self.setup())
            stop = asyncio.create_task(self.stop_event.wait())
            await asyncio.wait({setup, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not setup.done():
                setup.cancel()
                with contextlib.suppress(BaseException):
                    await setup
                return 0
            setup.result()
            freeze_startup_heap()
            assert self.leases is not None and self.feed is not None
            self.tasks = [
                asyncio.create_task(self._guard("leases", self.leases.run()), name="leases"),
                asyncio.create_task(self._guard("marketdata", self.feed.run()), name="marketdata"),
                asyncio.create_task(self._guard("poll", self.poll_loop()), name="poll"),
                asyncio.create_task(self._guard("config", self.watch_config()), name="config"),
            ]
            if self.credentials is not None:
                self.tasks.append(
                    asyncio.create_task(
                        self._guard("credentials", self.credentials.run()), name="credentials"
                    )
                )
            log.info("runtime started", extra={"pod": self.identity.pod, "shards": len(self.slots)})
            await self.stop_event.wait()
            return 0 if self.failed is None else 1
        finally:
            await self.shutdown()

    async def _guard(self, name: str, coro: Any) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("task failed", extra={"task": name})
            self.failed = f"{name}: {type(exc).__name__}"
            self.stop_event.set()

    def request_stop(self) -> None:
        if not self.stopping:
            log.info("stop requested: no new orders, releasing leases")
        self.stopping = True  # is_leader() is False from now on: no new orders
        for slot in self.slots.values():
            if slot.engine is not None:
                slot.engine.stopped = True
        self.stop_event.set()

    async def shutdown(self) -> None:
        self.request_stop()
        await self._quiesce_slots(SHUTDOWN_QUIESCE_S)
        if self.leases is not None:
            try:
                await asyncio.wait_for(self.leases.stop(), 5)
            except Exception as exc:
                log.warning("lease release failed: %s", exc)
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            # bounded: a task that does not honour cancellation must not block the exit
            _, pending = await asyncio.wait(self.tasks, timeout=5)
            if pending:
                log.warning(
                    "tasks did not stop", extra={"tasks": sorted(t.get_name() for t in pending)}
                )
        for slot in self.slots.values():
            if slot.starting is not None:
                slot.starting.cancel()
        for closer in (
            self.client.close if self.client else None,
            self.ws.close if self.ws else None,
            self.journal.close if self.journal else None,
            self.redis.aclose if self.redis else None,
            self.api.close if self.api else None,
            self.http.cleanup if self.http else None,
        ):
            if closer is not None:
                try:
                    await asyncio.wait_for(closer(), 3)
                except Exception as exc:
                    log.warning(
                        "close failed", extra={"closer": closer.__qualname__, "error": repr(exc)}
                    )
        await asyncio.to_thread(shutdown_tracing)  # flushes the batch (blocking HTTP)
        log.info("runtime stopped")

    async def _quiesce_slots(self, limit_s: float) -> None:
        """Before the Leases are released: cancel shard starts and wait (bounded) until no
        order work is in flight, so that the successor's first order can never reach the
        exchange before one of ours (a send already on the wire finishes first). Nothing
        new starts: ``stopping`` makes ``is_leader`` false and every engine is stopped."""
        for slot in self.slots.values():
            if slot.starting is not None and not slot.starting.done():
                slot.starting.cancel()

        async def idle(slot: ShardSlot) -> None:
            async with slot.lock:
                pass

        busy = [slot for slot in self.slots.values() if slot.lock.locked()]
        if not busy:
            return
        try:
            await asyncio.wait_for(asyncio.gather(*(idle(s) for s in busy)), limit_s)
        except TimeoutError:
            log.warning("order work still in flight at shutdown; releasing the leases anyway")

    # -- leases -------------------------------------------------------------------------

    async def on_acquired(self, shard: int, epoch: int) -> None:
        slot = self.slots[shard]
        slot.epoch, slot.engine, slot.error, slot.ack = epoch, None, None, None
        slot.starting = asyncio.create_task(self._start_engine(slot, epoch))

    async def _start_engine(self, slot: ShardSlot, epoch: int) -> None:
        assert self.journal is not None and self.client is not None
        config = self.config
        engine = ShardEngine(
            journal=self.journal,
            client=self.client,
            strategy=slot.strategy,
            risk=RiskEngine(RiskLimits.from_config(config.risk), self._risk_state()),
            fence=Fence(self.bot_id, config.account, slot.index, epoch),
            symbols=slot.symbols,
            # lease validity only: after SIGTERM, engine.stopped refuses new intents while
            # an intent journaled just before may still be sent (released after, see
            # _quiesce_slots); every decision path checks self.is_leader (not stopping)
            is_leader=lambda: self.leases is not None and self.leases.is_leader(slot.index),
            pnl=PnlTracker(config.allocation.amount),
        )
        try:
            async with slot.lock:
                if isinstance(self.client, PaperBroker):
                    records = await self.journal.load_orders(
                        self.bot_id, config.account, slot.index
                    )
                    self.client.adopt(records)
                await engine.start(self.identity.pod)
                if isinstance(self.client, PaperBroker):
                    for symbol in slot.symbols:
                        last = self.client.prices.get(symbol)
                        if last is not None:
                            engine.last_price[symbol] = last
                if slot.epoch != epoch or not self.is_leader(slot.index):
                    engine.stopped = True
                    return
                slot.engine = engine
                await self._replay_latest_bar(slot, engine)
            slot.start_failures = 0
            metrics.SHARD_START_BACKOFF.labels(str(slot.index)).set(0)
            log.info(
                "shard trading",
                extra={"shard": slot.index, "epoch": epoch, "orders": len(engine.orders)},
            )
            if self.delete_request is not None:
                await self._delete_action(slot, self.delete_request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            slot.error = f"start failed: {type(exc).__name__}: {exc}"[:150]
            slot.start_failures += 1
            delay = start_backoff(slot.start_failures, self.rng)
            metrics.SHARD_START_FAILURES.labels(str(slot.index)).inc()
            metrics.SHARD_START_BACKOFF.labels(str(slot.index)).set(delay)
            log.exception(
                "shard start failed",
                extra={"shard": slot.index, "epoch": epoch, "failures": slot.start_failures,
                       "retry_in_s": round(delay, 2)},
            )  # fmt: skip
            if self.leases is not None and not self.stopping:
                # give the shard to someone else rather than hold it without trading; one
                # that keeps failing is handed back (and retried under a new epoch) with
                # exponential back-off instead of every ~2 s
                self._spawn(self._release_failed(slot.index, epoch, delay=delay))

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
                _log_fenced(slot.index, exc)
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

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _release_failed(self, shard: int, epoch: int, delay: float) -> None:
        await asyncio.sleep(delay)
        slot = self.slots[shard]
        if self.leases is not None and slot.epoch == epoch and slot.engine is None:
            await self.leases.release(shard)

    async def _stop_slot(self, shard: int, epoch: int) -> None:
        slot = self.slots[shard]
        if slot.starting is not None and not slot.starting.done():
            slot.starting.cancel()
        async with slot.lock:
            if slot.engine is not None:
                slot.engine.stopped = True
            slot.engine = None
            slot.epoch = None

    async def before_release(self, shard: int, epoch: int) -> None:
        await self._stop_slot(shard, epoch)

    async def on_lost(self, shard: int, epoch: int) -> None:
        await self._stop_slot(shard, epoch)

    # -- heartbeat ----------------------------------------------------------------------

    def shard_view(self, slot: ShardSlot) -> ShardView | None:
        engine = slot.engine
        if engine is None:
            if slot.error is None:
                return None
            return ShardView(
                shard=slot.index, epoch=slot.epoch or 0, reconciled=False, stopped=False,
                open_orders=0, position_notional=Decimal(0), realized_pnl=Decimal(0),
                unrealized_pnl=Decimal(0), mismatches=0, error=slot.error,
            )  # fmt: skip
        marks = engine.last_price
        breaker = None
        if engine.client.breaker.state is not BreakerState.CLOSED:
            breaker = "exchange"
        return ShardView(
            shard=slot.index,
            epoch=engine.fence.epoch,
            reconciled=engine.reconciled,
            stopped=engine.stopped,
            open_orders=len(engine.orders),
            position_notional=engine.book.position_notional(marks),
            realized_pnl=engine.book.realized_pnl(),
            unrealized_pnl=engine.book.unrealized_pnl(marks),
            mismatches=engine.stats.mismatches,
            breaker=breaker,
            error=self.journal_problem,
        )

    def messages(self, slot: ShardSlot) -> list[str]:
        out: list[str] = []
        if self.feed is not None:
            stale = [s for s in self.feed.stale_symbols() if s in slot.symbols]
            if stale:
                out.append("market data stale: " + ",".join(stale))
        if self.pending_rollout:
            out.append("waiting for rollout: " + ",".join(sorted(self.pending_rollout)))
        if slot.engine is not None:
            out.extend(slot.engine.problems[k] for k in sorted(slot.engine.problems))
        out.extend(
            self.unknown_symbols.get(s, "") for s in slot.symbols if s in self.unknown_symbols
        )
        credentials = self.credentials.problem() if self.credentials is not None else None
        if credentials:
            out.append(credentials)
        return out

    def heartbeat(self, shard: int, epoch: int) -> str | None:
        slot = self.slots.get(shard)
        if slot is None:
            return None
        try:
            hb = build_heartbeat(
                pod=self.identity.pod,
                shard=shard,
                epoch=epoch,
                now=now_utc(),
                view=self.shard_view(slot),
                trading_state=self.trading_state,
                config_version=self.running_version,
                draining=self.stopping,
                deleting=self.delete_request is not None,
                ack_delete_request=slot.ack,
                messages=self.messages(slot),
            )
            return encode_heartbeat(hb)
        except Exception:
            log.exception("heartbeat build failed", extra={"shard": shard})
            return None

    # -- market data --------------------------------------------------------------------

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
                _log_fenced(slot.index, exc)
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

    # -- order polling ------------------------------------------------------------------

    async def check_journal(self) -> None:
        """Probe the journal while this pod leads a shard; report an outage (heartbeat,
        log) on the transition, not on every failed bar."""
        if self.journal is None or not any(self.is_leader(s) for s in self.slots):
            return
        try:
            await self.journal.ping()
        except JOURNAL_OUTAGE as exc:
            if self.journal_problem is None:
                log.warning("journal unreachable: no new orders", extra={"error": repr(exc)})
            self.journal_problem = f"journal unreachable ({type(exc).__name__}): no new orders"
            return
        if self.journal_problem is not None:
            log.info("journal reachable again")
        self.journal_problem = None

    async def poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            await self.check_journal()
            for slot in self.slots.values():
                engine = slot.engine
                if engine is None or engine.stopped or not self.is_leader(slot.index):
                    continue
                try:
                    async with slot.lock:
                        if engine.orders:
                            await engine.resolve_unknown()
                        await engine.poll_orders()
                except StaleEpochError as exc:
                    engine.stopped = True
                    _log_fenced(slot.index, exc)
                except Exception as exc:
                    log.warning("order poll failed", extra={"shard": slot.index, "error": str(exc)})
                if self.delete_request is not None and slot.ack != self.delete_request.id:
                    await self._delete_action(slot, self.delete_request)

    # -- config -------------------------------------------------------------------------

    def apply_config(self, new: RuntimeConfig, *, initial: bool = False) -> None:
        """Apply the live fields of ``new``; roll-relevant changes wait for the rollout."""
        diff = diff_config(self.config, new)
        if not initial and diff.empty:
            return
        if diff.rolled:
            self.pending_rollout = diff.rolled
            log.info("config change needs a rollout", extra={"fields": sorted(diff.rolled)})
        else:
            self.pending_rollout = frozenset()
        # keep the roll-relevant fields this process runs with; take the live ones
        live = {name: getattr(new, name) for name in rc.LIVE_FIELDS if name != "config_version"}
        self.config = self.config.model_copy(update=live)
        limits = RiskLimits.from_config(self.config.risk)
        request = self.config.delete_request
        if request is None and self.delete_request is not None:
            log.info("delete request withdrawn")
        self.delete_request = request
        for slot in self.slots.values():
            if slot.engine is not None:
                slot.engine.risk.update_limits(limits)
                slot.engine.set_trading_state(self._risk_state())
        if diff.live:
            log.info(
                "config applied",
                extra={"fields": sorted(diff.live), "tradingState": self.trading_state},
            )
        if request is not None and not initial:
            for slot in self.slots.values():
                if slot.engine is not None and slot.ack != request.id:
                    self._spawn(self._delete_action(slot, request))

    async def watch_config(self) -> None:
        assert self.api is not None
        core = k8s.CoreV1Api(self.api)
        name = self.identity.configmap
        if not name:
            log.warning("no ConfigMap name in the environment: live config changes disabled")
            return
        selector = f"metadata.name={name}"
        delay = 0.5
        while True:
            try:
                listed = await core.list_namespaced_config_map(
                    self.identity.namespace, field_selector=selector
                )
                for item in listed.items:
                    self._config_event(item)
                version = listed.metadata.resource_version
                watcher = k8s_watch.Watch()
                async with watcher.stream(
                    core.list_namespaced_config_map,
                    self.identity.namespace,
                    field_selector=selector,
                    resource_version=version,
                    timeout_seconds=300,
                ) as stream:
                    async for event in stream:
                        if event["type"] in ("ADDED", "MODIFIED"):
                            self._config_event(event["object"])
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("config watch failed: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _config_event(self, obj: Any) -> None:
        data = obj.data or {}
        text = data.get(rc.CONFIG_KEY)
        if text is None:
            return
        try:
            new = RuntimeConfig.loads(text)
        except Exception as exc:
            log.error("ConfigMap payload invalid: %s", exc)
            return
        self.apply_config(new)

    # -- delete requests ----------------------------------------------------------------

    async def _delete_action(self, slot: ShardSlot, request: DeleteRequest) -> None:
        engine = slot.engine
        if engine is None or slot.ack == request.id or not self.is_leader(slot.index):
            return
        async with slot.lock:
            if slot.engine is not engine or slot.ack == request.id:
                return
            try:
                done = await self._do_delete_action(engine, request)
            except Exception:
                log.exception("delete action failed", extra={"shard": slot.index})
                return
            if done:
                slot.ack = request.id
                log.info(
                    "delete request done",
                    extra={"shard": slot.index, "id": request.id, "action": request.action},
                )

    async def _do_delete_action(self, engine: ShardEngine, request: DeleteRequest) -> bool:
        engine.set_trading_state("Halted")
        if request.action == "leave":
            return True
        remaining = await engine.cancel_all()
        if remaining:
            return False
        if request.action == "cancelOrders":
            return True
        await engine.sync_fills()
        engine.set_trading_state("ReduceOnly")
        try:
            for symbol in engine.symbols:
                intent = _closing_intent(engine, symbol)
                if intent is not None:
                    await engine.submit(intent)
            await engine.resolve_unknown()
            await engine.sync_fills()
        finally:
            engine.set_trading_state("Halted")
        return all(_closing_intent(engine, s) is None for s in engine.symbols) and not engine.orders


def _closing_intent(engine: ShardEngine, symbol: str) -> OrderIntent | None:
    """The reduce-only market order that closes ``symbol``'s position; None when flat or
    when the exchange would refuse any closing order (below its minimum amount, step or
    notional: dust, e.g. the remainder of a base-currency fee), which flatten leaves."""
    amount = engine.book.position(symbol).amount
    if amount == 0:
        return None
    side = Side.SELL if amount > 0 else Side.BUY
    intent = OrderIntent(
        symbol, side, OrderType.MARKET, abs(amount), reduce_only=True, tag=FLATTEN_TAG
    )
    rules = engine.client.market_rules(symbol)
    if conform_intent(intent, rules, engine.last_price.get(symbol)).intent is None:
        log.info("flatten: position below the exchange's minimum left as dust",
                 extra={"symbol": symbol, "amount": str(amount)})  # fmt: skip
        return None
    return intent


def _log_fenced(shard: int, exc: StaleEpochError) -> None:
    log.error(
        "fenced: a newer epoch owns the shard, journal write refused, shard stopped",
        extra={"shard": shard, "epoch": exc.fence.epoch, "current_epoch": exc.current},
    )


async def _retry(what: str, call: Any, attempts: int = 30) -> Any:
    delay = 0.5
    for attempt in range(attempts):
        try:
            return await call()
        except Exception as exc:
            if attempt == attempts - 1:
                raise
            log.warning("%s failed, retrying: %s", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
    raise AssertionError("unreachable")


async def main() -> int:
    identity = Identity.from_env()
    config = RuntimeConfig.load(identity.config_path)
    app = RuntimeApp(identity, config)
    return await app.run()
