"""The simulator process: wires engine, ledger, limiter, faults, REST, WebSocket and admin
onto one aiohttp application on 127.0.0.1, and drives the price path on a timer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from decimal import Decimal

from aiohttp import web

from .admin import Admin
from .config import SimConfig
from .engine import Engine
from .faults import FaultStore
from .ledger import DuplicateDetector, Ledger
from .models import Event
from .ratelimit import RateLimiter
from .rest import RestFront
from .ws import StreamHub

log = logging.getLogger("exchange_sim")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def wall_ms() -> int:
    return int(time.time() * 1000)


class Simulator:
    def __init__(self, config: SimConfig, clock: Callable[[], int] = wall_ms) -> None:
        self.config = config.with_defaults()
        self._clock = clock
        self.engine = Engine(self.config, start_ms=clock())
        cfg = self.config
        self.ledger = Ledger(
            DuplicateDetector(
                cfg.duplicate_pattern,
                cfg.duplicate_ignore_groups,
                cfg.similar_window_ms,
                cfg.duplicate_decoders,
            )
        )
        self.limiter = RateLimiter(cfg.limits)
        self.faults = FaultStore(cfg.seed)
        self.hub = StreamHub(self)
        self.rest = RestFront(self)
        self.admin = Admin(self)
        self.ticks = 0
        self.url = ""
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.app = self._build_app()

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 20)
        app.add_routes(self.admin.routes())
        app.add_routes(
            [
                web.get("/ws", self.hub.market_endpoint),
                web.get("/ws/{tail:.*}", self.hub.market_endpoint),
                web.get("/stream", self.hub.market_endpoint),
                web.get("/ws-api/v3", self.hub.api_endpoint),
                # Everything else (Binance REST and unsupported paths) goes to the REST front.
                web.route("*", "/{path:.*}", self.rest.handle),
            ]
        )
        return app

    async def hold(self, delay_ms: int) -> None:
        """Sleep for an injected delay, cut short when the simulator stops (so that a
        connection held by a timeout fault never delays shutdown)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay_ms / 1000)

    def wall_now(self) -> int:
        """Unskewed time in ms: what fault rules expire by (a clock_skew rule must not
        make itself or any other rule expire early)."""
        return self._clock()

    def now(self, account: str | None = None) -> int:
        """Server time in ms, shifted by any clock_skew fault (global or for ``account``)."""
        now = self._clock()
        return now + self.faults.clock_skew(account, now)

    # --- market clock ---

    async def step(self) -> None:
        """One price-path step for every market, then stream the results."""
        now = self.now()
        events = self.engine.tick(now, self.config.step_seconds)
        self.ticks += 1
        await self.publish(events)
        await self.hub.flush(now)

    async def set_price(self, symbol: str, price: Decimal) -> None:
        now = self.now()
        await self.publish(self.engine.set_price(symbol, price, now))
        await self.hub.flush(now)

    async def publish(self, events: Iterable[Event]) -> None:
        await self.hub.publish(events)

    async def _run_ticker(self) -> None:
        interval = self.config.tick_interval_s
        next_at = time.monotonic()
        while True:
            next_at += interval
            try:
                await self.step()
            except Exception:  # a bad step must not stop the market
                log.exception("price step failed")
            late = time.monotonic() - next_at
            if late > interval:
                next_at += late  # fell behind (a stall): skip the missed steps, no burst
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    # --- lifecycle ---

    async def start(self) -> str:
        """Bind (port 0 picks a free one) and start the ticker; return the base URL."""
        if self.config.host not in LOOPBACK:
            raise ValueError("the simulator binds to loopback only")
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        port = sockets[0].getsockname()[1]
        self.url = f"http://{self.config.host}:{port}"
        if self.config.tick_interval_s > 0:
            self._ticker = asyncio.create_task(self._run_ticker(), name="exchange-sim-ticker")
        return self.url

    async def stop(self) -> None:
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for conn in list(self.hub.conns):
            with contextlib.suppress(Exception):
                await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
