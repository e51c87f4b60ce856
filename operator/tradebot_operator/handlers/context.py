"""The operator's typed context: built once at start-up, handed to every handler.

kopf hands each handler a ``memo``; the start-up handler stores the OperatorContext on it
as ``memo.context`` (per-object memos are shallow copies of the root memo, so every
handler sees the same context), and handlers read it with ``context_of(memo)``. This
works for both entry points (``python -m tradebot_operator`` and
``kopf run -m tradebot_operator.handlers``), which cannot share a custom memo object.
"""

from __future__ import annotations

from dataclasses import dataclass

import kopf

from tradebot_contracts.names import MANAGED_BY
from tradebot_operator.controllers.grants import GrantSweeper, KubeBotDirectory
from tradebot_operator.controllers.references.reconcile import ReferenceController
from tradebot_operator.controllers.tradingbot.controller import BotController
from tradebot_operator.controllers.tradingbot.finalize import BotFinalizer
from tradebot_operator.controllers.tradingbot.reconcile import BotReconciler
from tradebot_operator.kube.client import KubeClient
from tradebot_operator.kube.events import EventPoster
from tradebot_operator.kube.indexes import Indexes
from tradebot_operator.kube.inventory import BotKey, Inventory
from tradebot_operator.kube.workqueue import WorkQueue
from tradebot_operator.services.vault import VaultAdmin
from tradebot_operator.settings import OperatorSettings, ProcessSettings


@dataclass
class OperatorContext:
    settings: OperatorSettings
    process: ProcessSettings
    kube: KubeClient
    queue: WorkQueue[BotKey]
    """The TradingBot reconcile work queue."""
    indexes: Indexes
    """Live views of kopf's indexes: the workers always read the newest bodies."""
    events: EventPoster
    """The one Event poster, for every kind."""
    vault: VaultAdmin | None
    """Vault policies/roles and credential checks, only when the operator has its own
    Vault auth."""
    bots: BotController
    references: ReferenceController
    grant_sweeper: GrantSweeper | None = None
    """Removes Vault grants of bots that are gone (only when the operator manages Vault)."""

    @classmethod
    async def create(
        cls, settings: OperatorSettings, process: ProcessSettings, indexes: Indexes
    ) -> OperatorContext:
        """Connect to the API server and load the children inventory (one LIST per kind);
        nothing runs until ``start``."""
        kube = await KubeClient.from_environment(max_concurrency=process.api_concurrency)
        inventory = Inventory()
        await inventory.load(kube, MANAGED_BY, process.watch_namespaces)
        vault = VaultAdmin(settings) if settings.vault_managed else None
        queue: WorkQueue[BotKey] = WorkQueue()
        events = EventPoster(kube, quiet=queue.wait_idle)
        bots = BotController(
            BotReconciler(kube, settings, inventory, vault=vault),
            BotFinalizer(kube, settings, events, vault=vault),
            events,
            indexes,
            queue=queue,
        )
        references = ReferenceController(
            kube, events, indexes, wake=bots.wake, vault=vault, settings=settings
        )
        sweeper = None
        if vault is not None:
            directory = KubeBotDirectory(kube, indexes.bots, process.watch_namespaces)
            sweeper = GrantSweeper(vault, directory, settings.vault_sweep_interval_seconds)
        return cls(
            settings, process, kube, queue, indexes, events, vault, bots, references, sweeper
        )

    def start(self) -> None:
        self.events.start()
        self.bots.start(self.process.reconcile_workers)
        if self.grant_sweeper is not None:
            self.grant_sweeper.start()  # its first sweep now, at start-up

    async def close(self) -> None:
        if self.grant_sweeper is not None:
            await self.grant_sweeper.stop()
        await self.references.stop()
        await self.bots.stop()
        await self.events.stop()
        await self.kube.close()


def context_of(memo: kopf.Memo) -> OperatorContext:
    """The context the start-up handler stored on kopf's memo."""
    context = getattr(memo, "context", None)
    if not isinstance(context, OperatorContext):
        raise RuntimeError("the operator context is not set: the start-up handler has not run")
    return context
