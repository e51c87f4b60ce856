"""The HTTP endpoints of the runtime process: ``/metrics``, ``/healthz`` and ``/readyz``."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tradebot_runtime.app_state import AppState


class Probes(AppState):
    """Liveness, readiness and the Prometheus scrape."""

    def ready(self) -> bool:
        if not self.started or self.stopping or self.failed is not None:
            return False
        assert self.leases is not None
        for shard in self.leases.held:
            slot = self.slots[shard]
            if slot.engine is None or not slot.engine.reconciled:
                return False
        return True  # every held shard reconciled, or a healthy standby

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
