"""The Vault grant sweep's trigger (services/vault.py ``VaultAdmin.sweep``): once at
start-up, then every ``settings.vault_sweep_interval_seconds``, in one background task.

The sweep learns which TradingBots exist from the operator's index first (no API read while
every grant belongs to a known bot), then, only when some grant does not, from one LIST of
the watched namespaces and a GET of each bot an orphan's owner comment names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from tradebot_operator.kube.client import KubeClient
from tradebot_operator.kube.indexes import IndexView, first
from tradebot_operator.kube.inventory import BotKey
from tradebot_operator.kube.resources import KNOWN, Resource
from tradebot_operator.services.vault import VaultAdmin

log = logging.getLogger(__name__)

BOTS = KNOWN[("tradebot.io/v1alpha1", "TradingBot")]


@dataclass
class KubeBotDirectory:
    """services.vault.BotDirectory from the TradingBot index and the API server."""

    kube: KubeClient
    bots: IndexView
    """(namespace, name) -> slim TradingBot body."""
    namespaces: tuple[str, ...] = ()
    """The watched namespaces (empty: all)."""

    def known(self) -> set[BotKey]:
        return {key for key in list(self.bots) if first(self.bots, key) is not None}

    async def listed(self) -> set[BotKey]:
        if self.namespaces:
            pages = await asyncio.gather(*(self.kube.list(BOTS, ns) for ns in self.namespaces))
            items = [item for page in pages for item in page]
        else:
            everywhere = Resource(BOTS.api_version, BOTS.kind, BOTS.plural, namespaced=False)
            items = await self.kube.list(everywhere, None)
        keys = ((item.get("metadata") or {}) for item in items)
        return {(meta.get("namespace", ""), meta.get("name", "")) for meta in keys}

    async def exists(self, namespace: str, name: str) -> bool:
        return await self.kube.get(BOTS, namespace, name) is not None


@dataclass
class GrantSweeper:
    vault: VaultAdmin
    directory: KubeBotDirectory
    interval_seconds: float
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="vault-grant-sweep")

    async def _run(self) -> None:
        while True:
            removed = await self.vault.sweep(self.directory, self.directory.namespaces)
            if removed:
                log.info("vault grant sweep removed %d orphaned grants", len(removed))
            await asyncio.sleep(self.interval_seconds)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
