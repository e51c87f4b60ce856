"""The TradingBot controller: one reconcile work queue served by a fixed pool of workers.

kopf's event handlers only wake bots (enqueue their key); a worker takes the bot's newest
body from the index, runs one level-based pass, and schedules the bot again at the next
moment its status could change on its own (see BotReconciler.reconcile). A bot being
deleted runs the finalizer instead: the runtime's onDelete action (waiting, bounded, for
its acknowledgement in the Lease heartbeat), then the Vault grant, then the finalizer goes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tradebot_contracts.names import vault_role_name
from tradebot_contracts.runtime_config import DeleteRequest
from tradebot_operator.bot_status import LeaseObservation
from tradebot_operator.inventory import BotKey
from tradebot_operator.kube.events import EventPoster
from tradebot_operator.reconcile_bot import (
    BOT_FINALIZER,
    DEADLINE_MARGIN_SECONDS,
    BodyLookup,
    BotReconciler,
    LeaseLookup,
)
from tradebot_operator.vault import VaultAdmin
from tradebot_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)

DELETE_ACK_TIMEOUT_SECONDS = 60.0
VAULT_CLEANUP_TIMEOUT_SECONDS = 120.0
VAULT_RETRY_SECONDS = 5.0

# A kopf index: key -> store of values (one value per object here). Typed loosely so that
# tests can pass plain dicts of lists.
IndexView = Mapping[Any, Iterable[Any]]


def first(index: IndexView, key: Any) -> Any:
    store = index.get(key)
    return next(iter(store), None) if store is not None else None


def body_lookup(index: IndexView) -> BodyLookup:
    return lambda ns, name: first(index, (ns, name))


def lease_lookup(index: IndexView) -> LeaseLookup:
    def lookup(ns: str, bot: str) -> Iterable[LeaseObservation]:
        return list(index.get((ns, bot)) or [])

    return lookup


@dataclass
class BotController:
    reconciler: BotReconciler
    events: EventPoster
    bots: IndexView
    strategies: IndexView
    accounts: IndexView
    leases: IndexView
    vault: VaultAdmin | None = None
    queue: WorkQueue[BotKey] = field(default_factory=WorkQueue)
    _deleting_since: dict[BotKey, float] = field(default_factory=dict)
    _delete_told: set[BotKey] = field(default_factory=set)

    def start(self, workers: int) -> None:
        self.events.start()
        self.queue.start(workers, self.process)

    async def stop(self) -> None:
        await self.queue.stop()
        await self.events.stop()

    def wake(self, key: BotKey) -> None:
        self.queue.add(key)

    def gone(self, key: BotKey) -> None:
        """The bot no longer exists: drop everything kept for it."""
        self.queue.forget(key)
        self.reconciler.forget(key)
        self._deleting_since.pop(key, None)
        self._delete_told.discard(key)

    async def process(self, key: BotKey) -> float | None:
        body = first(self.bots, key)
        if body is None:
            self.gone(key)
            return None
        if body.get("metadata", {}).get("deletionTimestamp"):
            return await self.finalize(key, body)
        result = await self.reconciler.reconcile(
            body,
            body_lookup(self.strategies),
            body_lookup(self.accounts),
            lease_lookup(self.leases),
            self.events.sink(body),
        )
        return result.requeue_after

    async def finalize(self, key: BotKey, body: Mapping[str, Any]) -> float | None:
        """Returns the delay before the next check while waiting; None once released."""
        meta, spec = body.get("metadata", {}), body.get("spec") or {}
        if BOT_FINALIZER not in (meta.get("finalizers") or []):
            return None  # not held by us (already released, or nothing to do)
        elapsed = time.monotonic() - self._deleting_since.setdefault(key, time.monotonic())
        action = spec.get("onDelete", "cancelOrders")
        if action != "leave" and not spec.get("suspend") and key not in self._delete_told:
            request = DeleteRequest(id=str(meta.get("uid", ""))[:36], action=action)
            rendered = await self.reconciler.request_delete_action(
                body, body_lookup(self.strategies), body_lookup(self.accounts), request
            )
            if rendered:
                now = datetime.now(UTC)
                held = [lease for lease in lease_lookup(self.leases)(*key) if lease.held(now)]
                pending = [
                    lease for lease in held
                    if lease.heartbeat is None or lease.heartbeat.ack_delete_request != request.id
                ]  # fmt: skip
                if pending and elapsed < DELETE_ACK_TIMEOUT_SECONDS:
                    # The acknowledgement arrives as a Lease change, which wakes the bot;
                    # otherwise look again when a pending Lease expires or time is up.
                    expiries = [
                        (lease.renew_time - now).total_seconds() + lease.duration_seconds
                        for lease in pending
                        if lease.renew_time is not None
                    ]
                    remaining = DELETE_ACK_TIMEOUT_SECONDS - elapsed
                    return min([remaining, *expiries]) + DEADLINE_MARGIN_SECONDS
                sink = self.events.sink(body)
                if pending:
                    names = [lease.name for lease in pending]
                    limit = f"{DELETE_ACK_TIMEOUT_SECONDS:.0f}s"
                    message = f"{action} not acknowledged by {names} within {limit}; deleting"
                    sink("Warning", "DeleteAckTimeout", message)
                else:
                    sink("Normal", "DeleteActionDone", f"runtime completed {action}")
        self._delete_told.add(key)
        if not await self._remove_vault_grant(key, body, elapsed):
            return VAULT_RETRY_SECONDS
        await self.reconciler.remove_finalizer(key, body)
        self.reconciler.forget(key)
        return None

    async def _remove_vault_grant(
        self, key: BotKey, body: Mapping[str, Any], elapsed: float
    ) -> bool:
        """Remove the bot's Vault role and policy. False: retry later (Vault unreachable);
        after VAULT_CLEANUP_TIMEOUT_SECONDS given up with a Warning event, so that Vault
        cannot block deletion forever."""
        if self.vault is None:
            return True
        role = vault_role_name(*key)
        try:
            await self.vault.remove_bot(role)
        except Exception as exc:
            if elapsed < VAULT_CLEANUP_TIMEOUT_SECONDS:
                log.warning("removing vault role %s failed, retrying: %s", role, exc)
                return False
            message = f"vault policy and role {role} not removed: {str(exc)[:200]}"
            self.events.post(body, "Warning", "VaultCleanupFailed", message)
        return True
