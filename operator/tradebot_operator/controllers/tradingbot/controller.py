"""The TradingBot controller: one reconcile work queue served by a fixed pool of workers.

kopf's event handlers only tell the controller what they saw (``bot_event``,
``lease_event``); it wakes a bot (enqueues its key) when the change is one a pass acts
on. A worker takes the bot's newest body from the index, runs one level-based pass
(reconcile.py), and schedules the bot again at the next moment its status could change on
its own. A bot being deleted runs the finalizer instead (finalize.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tradebot_contracts.heartbeat import Heartbeat
from tradebot_operator.controllers.tradingbot.finalize import BotFinalizer
from tradebot_operator.controllers.tradingbot.inputs import lease_lookup, priority_class_lookup
from tradebot_operator.controllers.tradingbot.reconcile import BotReconciler
from tradebot_operator.controllers.tradingbot.status import lease_observation, owner_bot
from tradebot_operator.kube.events import EventPoster
from tradebot_operator.kube.indexes import Indexes, body_lookup, first
from tradebot_operator.kube.inventory import BotKey
from tradebot_operator.kube.workqueue import WorkQueue

log = logging.getLogger(__name__)


@dataclass
class BotController:
    reconciler: BotReconciler
    finalizer: BotFinalizer
    events: EventPoster
    indexes: Indexes
    queue: WorkQueue[BotKey] = field(default_factory=WorkQueue)
    _triggers: dict[BotKey, tuple[Any, ...]] = field(default_factory=dict)
    """Per bot: (uid, generation, being deleted) of the last body that woke it."""
    _lease_state: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    """Per Lease (namespace, name): holder and heartbeat readiness last seen."""

    def start(self, workers: int) -> None:
        self.queue.start(workers, self.process)

    async def stop(self) -> None:
        await self.queue.stop()

    def wake(self, key: BotKey) -> None:
        self.queue.add(key)

    def gone(self, key: BotKey) -> None:
        """The bot no longer exists: drop everything kept for it."""
        self.queue.forget(key)
        self.reconciler.forget(key)
        self.finalizer.forget(key)

    # ---- what the watches saw ----------------------------------------------------------

    def bot_event(self, type_: str | None, key: BotKey, meta: Mapping[str, Any]) -> None:
        """Wake the bot on what a pass acts on: a new object, spec (generation) or deletion.
        Status-only updates (our own writes) wake nothing."""
        if type_ == "DELETED":
            self._triggers.pop(key, None)
            self.gone(key)
            return
        self.reconciler.observed(key, meta.get("resourceVersion"))
        trigger = (meta.get("uid"), meta.get("generation"), bool(meta.get("deletionTimestamp")))
        if self._triggers.get(key) != trigger:
            self._triggers[key] = trigger
            self.wake(key)

    def lease_event(self, type_: str | None, namespace: str, body: Mapping[str, Any]) -> None:
        """Wake the owning bot when a shard's holder or readiness changes (not on every
        renew)."""
        bot = owner_bot(body.get("metadata", {}))
        if bot is None:
            return
        obs = lease_observation(body)
        hb: Heartbeat | None = obs.heartbeat
        state = (obs.holder, hb.ready if hb else None, hb.state if hb else None,
                 hb.ack_delete_request if hb else None)  # fmt: skip
        lease_key = (namespace, obs.name)
        if type_ == "DELETED":
            self._lease_state.pop(lease_key, None)
            self.wake((namespace, bot))
        elif self._lease_state.get(lease_key) != state:
            self._lease_state[lease_key] = state
            self.wake((namespace, bot))

    def priority_class_event(self, type_: str | None, name: str) -> None:
        """A PriorityClass appeared or went: wake the bots whose runtime asks for it (rare
        events: one scan of the bots index)."""
        if type_ not in ("ADDED", "DELETED", None):
            return  # a change of an existing one changes nothing a pass checks
        for key, store in list(self.indexes.bots.items()):
            body = next(iter(store), None)
            runtime = ((body or {}).get("spec") or {}).get("runtime") or {}
            if isinstance(runtime, dict) and runtime.get("priorityClassName") == name:
                self.wake(key)

    # ---- one pass ----------------------------------------------------------------------

    async def process(self, key: BotKey) -> float | None:
        body = first(self.indexes.bots, key)
        if body is None:
            self.gone(key)
            return None
        strategies = body_lookup(self.indexes.strategies)
        accounts = body_lookup(self.indexes.accounts)
        leases = lease_lookup(self.indexes.leases)
        index = self.indexes.priority_classes
        priority_classes = priority_class_lookup(index) if index is not None else None
        if body.get("metadata", {}).get("deletionTimestamp"):
            finalized = await self.finalizer.finalize(key, body, strategies, accounts, leases)
            if finalized.released:
                self.reconciler.forget(key)
            return finalized.requeue_after
        await self.finalizer.ensure(key, body)
        result = await self.reconciler.reconcile(
            body, strategies, accounts, leases, self.events.sink(body),
            priority_classes=priority_classes,
        )  # fmt: skip
        return result.requeue_after
