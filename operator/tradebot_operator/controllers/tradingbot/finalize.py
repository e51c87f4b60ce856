"""Everything about deleting a TradingBot.

The bot carries our finalizer (BOT_FINALIZER) while deleting it has work to do. Once the
bot is being deleted: the runtime's spec.onDelete action is rendered into its ConfigMaps
and the operator waits, bounded, for its acknowledgement in the Lease heartbeats; then
the bot's Vault policy and role go (retried while Vault is unreachable, given up after a
while so that Vault cannot block deletion forever); then the finalizer goes, and the
garbage collector removes the children.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tradebot_contracts.names import vault_role_name
from tradebot_contracts.runtime_config import DeleteRequest
from tradebot_operator.builders.desired import desired
from tradebot_operator.controllers.tradingbot.inputs import LeaseLookup, resolve
from tradebot_operator.controllers.tradingbot.reconcile import BOT_RESOURCE
from tradebot_operator.controllers.tradingbot.status import DEADLINE_MARGIN_SECONDS
from tradebot_operator.kube.client import KubeClient
from tradebot_operator.kube.events import EventPoster
from tradebot_operator.kube.finalizers import set_finalizer
from tradebot_operator.kube.indexes import BodyLookup
from tradebot_operator.kube.inventory import BotKey
from tradebot_operator.services.vault import VaultAdmin
from tradebot_operator.settings import OperatorSettings

log = logging.getLogger(__name__)

# Our finalizer on a TradingBot: applies spec.onDelete through the runtime and removes
# the bot's Vault grant before the children go (kopf's finalizer name stays on the other
# kinds, whose timers hold it).
BOT_FINALIZER = "tradebot.io/on-delete"
DELETE_ACK_TIMEOUT_SECONDS = 60.0
VAULT_CLEANUP_TIMEOUT_SECONDS = 120.0
VAULT_RETRY_SECONDS = 5.0


def needs_finalizer(body: Mapping[str, Any], vault_managed: bool) -> bool:
    """Whether deleting the bot has work to do: the runtime's onDelete (only while it may
    run, i.e. not suspended) or the Vault grant. Without work, no finalizer (no write)."""
    spec = body.get("spec") or {}
    runs = not spec.get("suspend") and spec.get("onDelete", "cancelOrders") != "leave"
    return vault_managed or runs


@dataclass(frozen=True)
class FinalizeResult:
    requeue_after: float | None
    """Seconds before the next check while waiting; None: nothing more to do."""
    released: bool = False
    """The finalizer was removed by this pass: forget the bot's reconcile state."""


@dataclass
class BotFinalizer:
    kube: KubeClient
    settings: OperatorSettings
    events: EventPoster
    vault: VaultAdmin | None = None
    """Removes the bot's Vault policy and role (None: the operator does not manage Vault)."""
    delete_requests: dict[BotKey, str] = field(default_factory=dict)
    """Delete request id already rendered into the bot's ConfigMaps."""
    _deleting_since: dict[BotKey, float] = field(default_factory=dict)
    _delete_told: set[BotKey] = field(default_factory=set)

    def forget(self, key: BotKey) -> None:
        """The bot no longer exists: drop everything kept for it."""
        self.delete_requests.pop(key, None)
        self._deleting_since.pop(key, None)
        self._delete_told.discard(key)

    # ---- the finalizer on the object -------------------------------------------------

    async def ensure(self, key: BotKey, body: Mapping[str, Any]) -> None:
        if not needs_finalizer(body, self.vault is not None):
            return
        await self._set_finalizer(key, body, present=True)

    async def remove(self, key: BotKey, body: Mapping[str, Any]) -> None:
        await self._set_finalizer(key, body, present=False)

    async def _set_finalizer(self, key: BotKey, body: Mapping[str, Any], *, present: bool) -> None:
        """Add or remove BOT_FINALIZER, guarded by resourceVersion (kube/finalizers.py)."""
        await set_finalizer(
            self.kube, BOT_RESOURCE, key[0], key[1], body, BOT_FINALIZER, present=present
        )

    # ---- a bot being deleted ---------------------------------------------------------

    async def finalize(
        self,
        key: BotKey,
        body: Mapping[str, Any],
        strategies: BodyLookup,
        accounts: BodyLookup,
        leases: LeaseLookup,
    ) -> FinalizeResult:
        """One pass over a bot being deleted."""
        meta, spec = body.get("metadata", {}), body.get("spec") or {}
        if BOT_FINALIZER not in (meta.get("finalizers") or []):
            return FinalizeResult(None)  # not held by us (already released, or nothing to do)
        elapsed = time.monotonic() - self._deleting_since.setdefault(key, time.monotonic())
        action = spec.get("onDelete", "cancelOrders")
        if action != "leave" and not spec.get("suspend") and key not in self._delete_told:
            request = DeleteRequest(id=str(meta.get("uid", ""))[:36], action=action)
            rendered = await self.request_delete_action(body, strategies, accounts, request)
            if rendered:
                now = datetime.now(UTC)
                held = [lease for lease in leases(*key) if lease.held(now)]
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
                    return FinalizeResult(min([remaining, *expiries]) + DEADLINE_MARGIN_SECONDS)
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
            return FinalizeResult(VAULT_RETRY_SECONDS)
        await self.remove(key, body)
        self.delete_requests.pop(key, None)
        return FinalizeResult(None, released=True)

    async def request_delete_action(
        self,
        body: Mapping[str, Any],
        strategies: BodyLookup,
        accounts: BodyLookup,
        request: DeleteRequest,
    ) -> bool:
        """Render the delete request into the runtime ConfigMaps. False if nothing runs."""
        resolved = resolve(body, strategies, accounts, self.settings)
        if resolved.problems or resolved.bot is None or resolved.strategy is None:
            return False
        meta = body.get("metadata", {})
        key: BotKey = (meta.get("namespace", ""), meta.get("name", ""))
        if self.delete_requests.get(key) == request.id:
            return True  # rendered on an earlier pass: the ConfigMaps carry it
        accounts_ok = {k: v for k, v in resolved.accounts.items() if v is not None}
        children = desired(
            resolved.bot, resolved.strategy, accounts_ok, self.settings, delete_request=request
        )
        config_maps = [c for c in children if c["kind"] == "ConfigMap"]
        await asyncio.gather(*(self.kube.apply(cm) for cm in config_maps))
        self.delete_requests[key] = request.id
        return True

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
