"""The runtime process (``python -m tradebot_runtime``): identity from env, config from the
mounted file, then ``RuntimeApp.setup`` wires the clients, the market feed and the Leases,
and ``run`` starts the long-running tasks. Each part of ``RuntimeApp`` is a module of its
own, all on the shared state of app_state.py:

* identity.py: the environment; bootstrap.py: Kubernetes/ccxt clients, start-up retries;
* shard_slots.py: a Lease acquired starts the shard's engine, a Lease lost stops it;
* bar_routing.py: prices and bars to the engines, takeover replay of the latest bar;
* order_polling.py: order and fill polling, the journal probe;
* live_config.py: the ConfigMap watch and the live config;
* delete_requests.py: leave / cancel orders / flatten on delete;
* heartbeats.py: the heartbeat in each Lease; probes.py: /metrics, /healthz, /readyz;
* shutdown.py: SIGTERM, in-flight orders, Lease release, closing the clients.

Order safety (see engine.py for the pipeline): every engine's ``is_leader`` is the
LeaseManager's time-based check, so a lost Lease stops sending at once. SIGTERM stops
every engine (no new decision, no new intent) at once; an order already journaled is
still sent while the Lease is valid, and the Leases are released only after that
in-flight work has finished (bounded, see ``_quiesce_slots`` in shutdown.py), so a
graceful stop never leaves a journaled-but-unsent order for the successor to wait out. A
delete request or ``Halted`` stops new orders at the next call (the ConfigMap watch
applies it within the watch latency).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from decimal import Decimal
from typing import Any

import ccxt.pro as ccxt_pro

from tradebot_contracts import env
from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_contracts.runtime_config import RuntimeConfig
from tradebot_runtime import metrics
from tradebot_runtime.app_state import ShardSlot
from tradebot_runtime.bootstrap import (
    freeze_startup_heap,
    kube_api_client,
    make_exchange,
    open_exchange,
    retry,
)
from tradebot_runtime.data_logins import DataLogins
from tradebot_runtime.exchange.paper import DEFAULT_FEE_RATE, PaperBroker
from tradebot_runtime.heartbeats import Heartbeats
from tradebot_runtime.identity import Identity
from tradebot_runtime.journal import Journal
from tradebot_runtime.leases import LeaseManager
from tradebot_runtime.live_config import LiveConfig
from tradebot_runtime.marketdata import FeedSettings, MarketFeed
from tradebot_runtime.order_polling import OrderPolling
from tradebot_runtime.presence import RedisPresence, presence_key
from tradebot_runtime.probes import Probes
from tradebot_runtime.ratelimit import (
    SharedRateLimiter,
    budget_params,
    install,
    order_count_params,
)
from tradebot_runtime.ratelimit_cost import budget_units_per_minute
from tradebot_runtime.shard_slots import ShardSlots
from tradebot_runtime.shutdown import Shutdown
from tradebot_runtime.strategies import create_strategy
from tradebot_runtime.tracing import setup_tracing

log = logging.getLogger("tradebot.app")


class RuntimeApp(Probes, Heartbeats, LiveConfig, OrderPolling, ShardSlots, Shutdown):
    """One runtime pod: the parts above wired together."""

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
        logins = None
        if config.data_credentials is not None:  # the bot's own logins, from Vault
            logins = DataLogins(config.data_credentials)
            await retry("vault data logins", logins.start)
            self.data_logins = logins
        user, password = (
            (logins.journal.username, logins.journal.password) if logins else (None, None)
        )
        self.journal = await retry(
            "journal", lambda: Journal.connect(dsn, user=user, password=password)
        )
        if logins is not None:
            journal = self.journal
            logins.on_change(
                "journal", lambda login: journal.use_login(login.username, login.password)
            )
        redis_url = config.redis_url or os.environ.get(env.REDIS_URL)
        if redis_url:
            import redis.asyncio as redis

            provider = logins.redis_credentials() if logins else None
            self.redis = redis.Redis.from_url(
                redis_url, socket_timeout=1.0, credential_provider=provider
            )
        ids = ClientOrderIds(config.exchange, self.bot_id, config.account)
        fee = Decimal(os.environ.get(env.PAPER_FEE_RATE) or DEFAULT_FEE_RATE)
        access = await open_exchange(config, ids, fee_rate=fee)
        exchange, self.client, self.credentials = access.exchange, access.client, access.credentials
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
        await retry("load_markets", client.load_markets)
        self.money = client.money_precision(config.allocation.quote)
        log.info(
            "money figures are published in %s at %d decimal places (from the %s)",
            self.money.currency, self.money.places, self.money.source,
        )  # fmt: skip
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
                self.ws = make_exchange(ccxt_pro, config, {})
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
            if self.data_logins is not None:
                self.tasks.append(
                    asyncio.create_task(
                        self._guard("data_logins", self.data_logins.run()), name="data_logins"
                    )
                )
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


async def main() -> int:
    identity = Identity.from_env()
    config = RuntimeConfig.load(identity.config_path)
    app = RuntimeApp(identity, config)
    return await app.run()
