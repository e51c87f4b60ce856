"""One pass over a Strategy or ExchangeAccount: compute its status (the timer refreshes
usedBy), write it when it changed, post an Event for each condition that flipped and for
each warning, hold or release the in-use finalizer, then wake the bots that use the object
so that a change reaches them at once.

In-use protection (like Kubernetes' PVC protection): while at least one TradingBot uses the
object (the bots_by_reference index, bots being deleted included: their finalizer still
needs the account's onDelete and kill switch) it carries IN_USE_FINALIZER. Deleting it then
waits: status says so (Deletable False, reason InUse, naming the bots; a Warning event
once) and the bots keep their config. The moment the last bot stops using it (deleted or
pointed elsewhere; ``bot_changed`` is told by the bot's watch) the finalizer goes and the
deletion completes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.checks import Problem, errors, parse, validate_account
from tradebot_operator.checks.tenancy import Tenant, tenant_of
from tradebot_operator.controllers.references.status import (
    IN_USE_FINALIZER,
    account_status,
    secret_ref_check,
    strategy_status,
)
from tradebot_operator.kube.client import KubeApiError, KubeClient
from tradebot_operator.kube.conditions import ConditionUpdate
from tradebot_operator.kube.events import EventPoster
from tradebot_operator.kube.finalizers import has_finalizer, set_finalizer
from tradebot_operator.kube.indexes import Indexes, IndexView, first
from tradebot_operator.kube.inventory import BotKey
from tradebot_operator.kube.resources import KNOWN, SECRETS, Resource
from tradebot_operator.kube.status import current_status, status_patch, write_status
from tradebot_operator.services.vault import VaultAdmin, VaultUnavailable
from tradebot_operator.settings import OperatorSettings

log = logging.getLogger(__name__)

PROTECT_RETRY_SECONDS = 5.0
"""A failed hold or release of the in-use finalizer is tried again after this long (an
object being deleted has no timer and may see no other event)."""

STRATEGY = KNOWN[("tradebot.io/v1alpha1", "Strategy")]
ACCOUNT = KNOWN[("tradebot.io/v1alpha1", "ExchangeAccount")]

# plural -> (reference kind in the bots_by_reference index, resource)
REFERENCED: dict[str, tuple[str, Resource]] = {
    "strategies": ("strategy", STRATEGY),
    "exchangeaccounts": ("account", ACCOUNT),
}
PLURAL_OF = {kind: plural for plural, (kind, _) in REFERENCED.items()}
RefKey = tuple[str, str, str]
"""("strategy"|"account", namespace, name): a key of the bots_by_reference index."""


def reference_keys(namespace: str, name: str, spec: Mapping[str, Any]) -> dict[Any, Any]:
    """The bots_by_reference index entries of one bot:
    ("strategy"|"account", namespace, referenced name) -> bot name."""
    keys: dict[Any, Any] = {}
    strategy = (spec.get("strategyRef") or {}).get("name")
    if isinstance(strategy, str):
        keys[("strategy", namespace, strategy)] = name
    for exchange in spec.get("exchanges") or []:
        if isinstance(exchange, dict) and isinstance(exchange.get("account"), str):
            keys[("account", namespace, exchange["account"])] = name
    return keys


def bots_using(index: IndexView, kind: str, namespace: str, name: str) -> list[str]:
    return sorted(set(index.get((kind, namespace, name)) or []))


@dataclass
class ReferenceController:
    kube: KubeClient
    events: EventPoster
    indexes: Indexes
    wake: Callable[[BotKey], None]
    """Wakes a bot in the TradingBot controller."""
    vault: VaultAdmin | None = None
    """Checks the accounts' Vault secrets (None: the operator does not manage Vault)."""
    settings: OperatorSettings = field(default_factory=OperatorSettings)
    """The installation's tenancy policy applies to every Strategy and ExchangeAccount."""
    _uses: dict[BotKey, frozenset[RefKey]] = field(default_factory=dict)
    """Per bot: the references its last seen spec named."""
    _held: dict[RefKey, tuple[Any, bool]] = field(default_factory=dict)
    """Per object: (uid, whether it carries IN_USE_FINALIZER) as last seen or written."""
    _finalizer_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _retrying: set[RefKey] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def tenant(self, namespace: str) -> Tenant:
        return tenant_of(namespace, self.settings.tenancy, self.settings.runtime_image)

    async def reconcile(
        self, plural: str, body: Mapping[str, Any], namespace: str, name: str,
        type_: str | None = None,
    ) -> None:  # fmt: skip
        ref_kind, res = REFERENCED[plural]
        ref: RefKey = (ref_kind, namespace, name)
        users = bots_using(self.indexes.bots_by_reference, ref_kind, namespace, name)
        tenant = self.tenant(namespace)
        if type_ == "DELETED":
            self._held.pop(ref, None)
        else:
            try:
                if ref_kind == "account":
                    check = await self._vault_check(body, tenant)
                    status, warnings = account_status(body, users, vault_check=check, tenant=tenant)
                else:
                    status, warnings = strategy_status(body, users, tenant=tenant)
                await self._write_status(res, body, status, warnings)
                await self._protect(ref, body, users, seen=True)
            except Exception:
                if (body.get("metadata") or {}).get("deletionTimestamp"):
                    self._retry_later(ref)  # no timer runs for it any more
                raise
        for bot in users:
            self.wake((namespace, bot))

    # ---- in-use protection -------------------------------------------------------------

    async def bot_changed(self, key: BotKey, spec: Mapping[str, Any] | None) -> None:
        """A TradingBot appeared, changed its spec or is gone (``spec`` None): hold the
        finalizer on what it starts using, release it on what nobody uses any more.
        The index already reflects the event (kopf indexes before it calls handlers)."""
        uses = frozenset(reference_keys(*key, spec)) if spec is not None else frozenset()
        before = self._uses.pop(key, frozenset())
        if uses:
            self._uses[key] = uses
        for ref in sorted(before ^ uses):
            await self._refresh_or_retry(ref)

    async def _refresh_or_retry(self, ref: RefKey) -> None:
        try:
            await self.refresh_protection(ref)
        except Exception as exc:
            log.warning("in-use finalizer of %s %s/%s not updated, retrying: %s",
                        *ref, str(exc)[:300])  # fmt: skip
            self._retry_later(ref)

    def _retry_later(self, ref: RefKey) -> None:
        if ref in self._retrying:
            return
        self._retrying.add(ref)

        async def again() -> None:
            await asyncio.sleep(PROTECT_RETRY_SECONDS)
            self._retrying.discard(ref)
            await self._refresh_or_retry(ref)

        task = asyncio.create_task(again())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def refresh_protection(self, ref: RefKey) -> None:
        """Hold or release the finalizer of one referenced object after its users changed.
        Steady state: no API call (the index body and what we last wrote agree)."""
        kind, namespace, name = ref
        index = self.indexes.strategies if kind == "strategy" else self.indexes.accounts
        body = first(index, (namespace, name))
        if body is None:
            return  # no such object (yet): nothing to protect
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            # Its deletion waits for its users: a whole pass on the current body, so that
            # usedBy and the InUse message follow, and the finalizer goes with the last one.
            res = REFERENCED[PLURAL_OF[kind]][1]
            fresh = await self.kube.get(res, namespace, name)
            if fresh is not None:
                await self.reconcile(PLURAL_OF[kind], fresh, namespace, name)
            return
        users = bots_using(self.indexes.bots_by_reference, kind, namespace, name)
        await self._protect(ref, body, users, seen=False)

    async def _protect(
        self, ref: RefKey, body: Mapping[str, Any], users: list[str], *, seen: bool
    ) -> None:
        """IN_USE_FINALIZER present while ``users`` is not empty, absent otherwise.
        ``seen``: ``body`` is the object's own current event (trusted over what we last
        wrote); otherwise the index copy may lag our own last write."""
        want = bool(users)
        uid = (body.get("metadata") or {}).get("uid")
        if seen and has_finalizer(body, IN_USE_FINALIZER) == want:
            self._held[ref] = (uid, want)
            return
        if not seen and self._held.get(ref) == (uid, want):
            return
        kind, namespace, name = ref
        res = REFERENCED[PLURAL_OF[kind]][1]
        async with self._finalizer_lock:  # a burst of bot events: one write per object
            if not seen and self._held.get(ref) == (uid, want):
                return
            if await set_finalizer(
                self.kube, res, namespace, name, body, IN_USE_FINALIZER, present=want
            ):
                self._held[ref] = (uid, want)

    async def _vault_check(self, body: Mapping[str, Any], tenant: Tenant) -> ConditionUpdate | None:
        """Vault (or the API server, for a secretRef) is asked only about an account that
        passed every check: a path outside the namespace's prefix is never looked up, so
        nobody learns whether it exists."""
        vault = self.vault
        account, _ = parse(ExchangeAccount, body)
        if account is None or errors(validate_account(account, tenant)):
            return None
        credentials = account.spec.credentials
        if credentials is not None and credentials.secret_ref is not None:
            return await self._secret_check(
                account.metadata.namespace or "", credentials.secret_ref.name
            )
        if vault is None:
            return None
        try:
            return await vault.check_account(account)
        except VaultUnavailable as exc:
            return ConditionUpdate("CredentialsReady", "Unknown", "VaultUnavailable", str(exc))

    async def _secret_check(self, namespace: str, name: str) -> ConditionUpdate:
        """The Secret's metadata only (never its data): present and labelled for tradebot."""
        try:
            metadata = await self.kube.get_metadata(SECRETS, namespace, name)
        except KubeApiError as exc:
            return ConditionUpdate(
                "CredentialsReady", "Unknown", "SecretCheckFailed",
                f"the operator could not read Secret {name!r}'s metadata: {exc.status} "
                f"{exc.message}",
            )  # fmt: skip
        return secret_ref_check(name, metadata)

    async def _write_status(
        self, res: Resource, body: Mapping[str, Any], status: dict[str, Any],
        warnings: list[Problem],
    ) -> None:  # fmt: skip
        current = current_status(body)
        patch = status_patch(current, status)
        if not patch:
            return
        meta = body.get("metadata", {})
        await write_status(self.kube, res, meta.get("namespace"), meta.get("name"), patch)
        before = {c.get("type"): c.get("status") for c in current.get("conditions", [])}
        for condition in status["conditions"]:
            if before.get(condition["type"]) != condition["status"]:
                kind = "Warning" if condition["status"] == "False" else "Normal"
                text = condition["message"] or f"{condition['type']} is {condition['status']}"
                self.events.post(body, kind, condition["reason"], text)
        for warning in warnings:
            self.events.post(body, "Warning", warning.reason, str(warning))
