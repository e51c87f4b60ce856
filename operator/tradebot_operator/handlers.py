"""kopf registrations: thin handlers that feed the reconcilers.

One reconcile per TradingBot runs in a per-bot daemon loop. Every trigger — the bot's own
spec change, a change of a Strategy or ExchangeAccount it uses, a Lease holder change —
only wakes that loop; a timeout refreshes status from the Lease heartbeats. Indexes hold
everything the loop reads, so steady state costs no API reads.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from tradebot_operator.api.common import GROUP, VERSION
from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.api.heartbeat import Heartbeat, heartbeat_from_annotations
from tradebot_operator.api.names import LABEL_MANAGED_BY, LABEL_SHARD, MANAGED_BY, vault_role_name
from tradebot_operator.api.runtime_config import DeleteRequest
from tradebot_operator.bot_status import LeaseObservation
from tradebot_operator.conditions import ConditionUpdate
from tradebot_operator.inputs import parse
from tradebot_operator.inventory import BotKey, Inventory
from tradebot_operator.kube.client import KubeClient
from tradebot_operator.kube.resources import KNOWN
from tradebot_operator.reconcile_bot import BodyLookup, BotReconciler, LeaseLookup, status_patch
from tradebot_operator.reconcile_refs import account_status, strategy_status
from tradebot_operator.settings import OperatorSettings
from tradebot_operator.vault import VaultAdmin, VaultUnavailable

log = logging.getLogger(__name__)

PREFIX = "tradebot.io"
STATUS_REFRESH_SECONDS = 5.0
DELETE_ACK_TIMEOUT_SECONDS = 60.0
VAULT_CLEANUP_TIMEOUT_SECONDS = 120.0
MANAGED = {LABEL_MANAGED_BY: MANAGED_BY}


# ---- start-up ---------------------------------------------------------------------------


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Our own annotation and finalizer names from day one (never kopf's defaults).
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    # Log lines are not events: we post events for meaningful transitions explicitly.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    # Bot loops exit as soon as kopf signals `stopped`; don't let kopf re-check only after
    # its default 60 s polling, which would hold the finalizer that long.
    settings.background.instant_exit_timeout = 2.0
    settings.background.cancellation_polling = 2.0
    settings.networking.request_timeout = 60
    op = OperatorSettings.from_env()
    # Bounded concurrency: at most this many API requests in flight from the operator.
    concurrency = int(os.environ.get("TRADEBOT_API_CONCURRENCY", "16"))
    kube = await KubeClient.from_environment(max_concurrency=concurrency)
    inventory = Inventory()
    await inventory.load(kube, MANAGED_BY)
    memo.kube = kube
    # Vault policies/roles and credential checks only when the operator has its own auth.
    memo.vault = VaultAdmin(op) if op.vault_managed else None
    memo.reconciler = BotReconciler(kube, op, inventory, vault=memo.vault)
    memo.wakers = {}
    memo.seen_generation = {}
    memo.lease_state = {}


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    await memo.kube.close()


# ---- indexes ----------------------------------------------------------------------------


@kopf.index(GROUP, VERSION, "strategies")
def strategy_bodies(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): dict(body)}


@kopf.index(GROUP, VERSION, "exchangeaccounts")
def account_bodies(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): dict(body)}


@kopf.index(GROUP, VERSION, "tradingbots")
def bots_by_reference(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[Any, Any]:
    """("strategy"|"account", namespace, referenced name) -> bot names."""
    keys: dict[Any, Any] = {}
    strategy = (spec.get("strategyRef") or {}).get("name")
    if isinstance(strategy, str):
        keys[("strategy", namespace, strategy)] = name
    for exchange in spec.get("exchanges") or []:
        if isinstance(exchange, dict) and isinstance(exchange.get("account"), str):
            keys[("account", namespace, exchange["account"])] = name
    return keys


def _owner_bot(meta: Mapping[str, Any]) -> str | None:
    for owner in meta.get("ownerReferences") or []:
        if owner.get("kind") == "TradingBot" and owner.get("controller"):
            return str(owner["name"])
    return None


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def lease_observation(body: Mapping[str, Any]) -> LeaseObservation:
    meta, spec = body.get("metadata", {}), body.get("spec") or {}
    try:
        shard = int((meta.get("labels") or {}).get(LABEL_SHARD, "0"))
    except ValueError:
        shard = 0
    return LeaseObservation(
        name=meta.get("name", ""),
        shard=shard,
        holder=spec.get("holderIdentity") or None,
        renew_time=_time(spec.get("renewTime")),
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        heartbeat=heartbeat_from_annotations(meta.get("annotations")),
    )


@kopf.index("coordination.k8s.io", "v1", "leases", labels=MANAGED)
def bot_leases(namespace: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    bot = _owner_bot(body.get("metadata", {}))
    return {(namespace, bot): lease_observation(body)} if bot else {}


# ---- lookups over indexes ---------------------------------------------------------------


def _first(index: kopf.Index[Any, Any], key: Any) -> Any:
    store = index.get(key)
    return next(iter(store), None) if store is not None else None


def body_lookup(index: kopf.Index[Any, Any]) -> BodyLookup:
    return lambda ns, name: _first(index, (ns, name))


def lease_lookup(index: kopf.Index[Any, Any]) -> LeaseLookup:
    def lookup(ns: str, bot: str) -> Iterable[LeaseObservation]:
        return list(index.get((ns, bot)) or [])

    return lookup


def bots_using(index: kopf.Index[Any, Any], kind: str, namespace: str, name: str) -> list[str]:
    return sorted(set(index.get((kind, namespace, name)) or []))


def wake(memo: kopf.Memo, key: BotKey) -> None:
    waker: asyncio.Event | None = memo.wakers.get(key)
    if waker is not None:
        waker.set()


def post_event(body: kopf.Body) -> Any:
    def sink(type_: str, reason: str, message: str) -> None:
        kopf.event(body, type=type_, reason=reason, message=message)

    return sink


# ---- TradingBot -------------------------------------------------------------------------


@kopf.daemon(GROUP, VERSION, "tradingbots", cancellation_timeout=5.0)
async def bot_loop(
    stopped: kopf.DaemonStopped,
    body: kopf.Body,
    namespace: str,
    name: str,
    memo: kopf.Memo,
    strategy_bodies: kopf.Index[Any, Any],
    account_bodies: kopf.Index[Any, Any],
    bot_leases: kopf.Index[Any, Any],
    **_: Any,
) -> None:
    key: BotKey = (namespace, name)
    waker = memo.wakers.setdefault(key, asyncio.Event())
    reconciler: BotReconciler = memo.reconciler
    try:
        while not stopped:
            waker.clear()
            # Once deletion starts the finalizer owns the children: only kopf stops this loop.
            if not body.get("metadata", {}).get("deletionTimestamp"):
                try:
                    await reconciler.reconcile(
                        body,
                        body_lookup(strategy_bodies),
                        body_lookup(account_bodies),
                        lease_lookup(bot_leases),
                        post_event(body),
                    )
                except Exception:  # never let one bot's failure stop its loop
                    log.exception("reconcile of %s/%s failed; retrying", namespace, name)
            woken = asyncio.ensure_future(waker.wait())
            stopping = asyncio.ensure_future(stopped.wait())
            await asyncio.wait(
                {woken, stopping}, timeout=STATUS_REFRESH_SECONDS, return_when="FIRST_COMPLETED"
            )
            woken.cancel()
            stopping.cancel()
    finally:
        if memo.wakers.get(key) is waker:
            del memo.wakers[key]


@kopf.on.event(GROUP, VERSION, "tradingbots")
def bot_changed(namespace: str, name: str, meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    key = (namespace, name)
    generation = meta.get("generation")
    if memo.seen_generation.get(key) != generation:
        memo.seen_generation[key] = generation
        wake(memo, key)


@kopf.on.event("coordination.k8s.io", "v1", "leases", labels=MANAGED)
def lease_changed(namespace: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Wake the owning bot when a shard's holder or readiness changes (not on every renew)."""
    bot = _owner_bot(body.get("metadata", {}))
    if bot is None:
        return
    obs = lease_observation(body)
    hb: Heartbeat | None = obs.heartbeat
    state = (obs.holder, hb.ready if hb else None, hb.state if hb else None,
             hb.ack_delete_request if hb else None)  # fmt: skip
    lease_key = (namespace, obs.name)
    if memo.lease_state.get(lease_key) != state:
        memo.lease_state[lease_key] = state
        wake(memo, (namespace, bot))


@kopf.on.delete(GROUP, VERSION, "tradingbots")
async def bot_deleted(
    body: kopf.Body,
    spec: kopf.Spec,
    namespace: str,
    name: str,
    uid: str,
    memo: kopf.Memo,
    runtime: Any,
    strategy_bodies: kopf.Index[Any, Any],
    account_bodies: kopf.Index[Any, Any],
    bot_leases: kopf.Index[Any, Any],
    **_: Any,
) -> None:
    """Finalizer: make the runtime apply onDelete, wait (bounded) for its acknowledgement,
    then let garbage collection remove the children."""
    reconciler: BotReconciler = memo.reconciler
    key = (namespace, name)
    action = spec.get("onDelete", "cancelOrders")
    if action != "leave" and not spec.get("suspend"):
        request = DeleteRequest(id=uid[:36], action=action)
        rendered = await reconciler.request_delete_action(
            body, body_lookup(strategy_bodies), body_lookup(account_bodies), request
        )
        if rendered:
            now = datetime.now(UTC)
            held = [lease for lease in lease_lookup(bot_leases)(*key) if lease.held(now)]
            pending = [
                lease.name for lease in held
                if lease.heartbeat is None or lease.heartbeat.ack_delete_request != request.id
            ]  # fmt: skip
            elapsed = runtime.total_seconds()
            if pending and elapsed < DELETE_ACK_TIMEOUT_SECONDS:
                raise kopf.TemporaryError(f"waiting for {action} on {pending}", delay=1)
            if pending:
                limit = f"{DELETE_ACK_TIMEOUT_SECONDS:.0f}s"
                message = f"{action} not acknowledged by {pending} within {limit}; deleting"
                kopf.event(body, type="Warning", reason="DeleteAckTimeout", message=message)
            else:
                done = f"runtime completed {action}"
                kopf.event(body, type="Normal", reason="DeleteActionDone", message=done)
    await _remove_vault_grant(memo, body, namespace, name, runtime.total_seconds())
    reconciler.forget(key)
    memo.seen_generation.pop(key, None)


async def _remove_vault_grant(
    memo: kopf.Memo, body: kopf.Body, namespace: str, name: str, elapsed: float
) -> None:
    """Remove the bot's Vault role and policy; retried while Vault is unreachable, then
    given up with a Warning event so that Vault cannot block deletion forever."""
    vault: VaultAdmin | None = memo.vault
    if vault is None:
        return
    role = vault_role_name(namespace, name)
    try:
        await vault.remove_bot(role)
    except Exception as exc:
        if elapsed < VAULT_CLEANUP_TIMEOUT_SECONDS:
            raise kopf.TemporaryError(f"removing vault role {role}: {exc}", delay=5) from None
        message = f"vault policy and role {role} not removed: {str(exc)[:200]}"
        kopf.event(body, type="Warning", reason="VaultCleanupFailed", message=message)


async def _vault_check(memo: kopf.Memo, body: kopf.Body) -> ConditionUpdate | None:
    vault: VaultAdmin | None = memo.vault
    if vault is None:
        return None
    account, _ = parse(ExchangeAccount, body)
    if account is None:
        return None
    try:
        return await vault.check_account(account)
    except VaultUnavailable as exc:
        return ConditionUpdate("CredentialsReady", "Unknown", "VaultUnavailable", str(exc))


# ---- Strategy and ExchangeAccount ------------------------------------------------------


STRATEGY = KNOWN[("tradebot.io/v1alpha1", "Strategy")]
ACCOUNT = KNOWN[("tradebot.io/v1alpha1", "ExchangeAccount")]


async def _write_status(
    memo: kopf.Memo, res: Any, body: kopf.Body, status: dict[str, Any], warnings: list[Any]
) -> None:
    current = dict(body.get("status") or {})
    current.pop("kopf", None)
    patch = status_patch(current, status)
    if not patch:
        return
    meta = body.get("metadata", {})
    await memo.kube.patch_merge(
        res, meta.get("namespace"), meta.get("name"), {"status": patch}, subresource="status"
    )
    before = {c.get("type"): c.get("status") for c in current.get("conditions", [])}
    for condition in status["conditions"]:
        if before.get(condition["type"]) != condition["status"]:
            kind = "Warning" if condition["status"] == "False" else "Normal"
            text = condition["message"] or f"{condition['type']} is {condition['status']}"
            kopf.event(body, type=kind, reason=condition["reason"], message=text)
    for warning in warnings:
        kopf.event(body, type="Warning", reason=warning.reason, message=str(warning))


# plural -> (reference kind in bots_by_reference, resource, status function)
REFERENCED = {
    "strategies": ("strategy", STRATEGY, strategy_status),
    "exchangeaccounts": ("account", ACCOUNT, account_status),
}


@kopf.on.event(GROUP, VERSION, "strategies")
@kopf.timer(GROUP, VERSION, "strategies", interval=30, sharp=False)
@kopf.on.event(GROUP, VERSION, "exchangeaccounts")
@kopf.timer(GROUP, VERSION, "exchangeaccounts", interval=30, sharp=False)
async def referenced_reconcile(
    resource: kopf.Resource,
    body: kopf.Body,
    namespace: str,
    name: str,
    memo: kopf.Memo,
    bots_by_reference: kopf.Index[Any, Any],
    type: str | None = None,
    **_: Any,
) -> None:
    """Status of a Strategy or ExchangeAccount (the timer refreshes usedBy), then wake the
    bots that use it so a change reaches them at once."""
    ref_kind, res, compute = REFERENCED[resource.plural]
    users = bots_using(bots_by_reference, ref_kind, namespace, name)
    if type != "DELETED":
        if ref_kind == "account" and memo.vault is not None:
            check = await _vault_check(memo, body)
            status, warnings = account_status(body, users, vault_check=check)
        else:
            status, warnings = compute(body, users)
        await _write_status(memo, res, body, status, warnings)
    for bot in users:
        wake(memo, (namespace, bot))
