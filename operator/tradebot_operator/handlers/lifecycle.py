"""kopf registrations: thin handlers that feed the reconcilers.

TradingBots are reconciled by the BotController (controller.py): a work queue with a fixed
pool of workers. Every trigger — the bot's own spec change or deletion, a change of a
Strategy or ExchangeAccount it uses, a Lease holder or readiness change — only enqueues the
bot; the worker reads everything from the indexes (no API reads in steady state) and
schedules the bot again when its status could next change on its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import kopf

from tradebot_contracts.heartbeat import Heartbeat, heartbeat_from_annotations
from tradebot_contracts.names import LABEL_MANAGED_BY, LABEL_SHARD, MANAGED_BY
from tradebot_operator.api.common import GROUP, VERSION
from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.bodies import slim_body
from tradebot_operator.bot_status import LeaseObservation
from tradebot_operator.conditions import ConditionUpdate
from tradebot_operator.controller import BotController
from tradebot_operator.inputs import parse
from tradebot_operator.inventory import BotKey, Inventory
from tradebot_operator.kube.client import KubeClient
from tradebot_operator.kube.events import EventPoster
from tradebot_operator.kube.resources import KNOWN
from tradebot_operator.reconcile_bot import BotReconciler, status_patch
from tradebot_operator.reconcile_refs import account_status, strategy_status
from tradebot_operator.settings import OperatorSettings
from tradebot_operator.validation import known_exchange
from tradebot_operator.vault import VaultAdmin, VaultUnavailable
from tradebot_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)

PREFIX = "tradebot.io"
MANAGED = {LABEL_MANAGED_BY: MANAGED_BY}


# ---- start-up ---------------------------------------------------------------------------


@kopf.on.startup()
async def configure(
    settings: kopf.OperatorSettings,
    memo: kopf.Memo,
    bot_bodies: kopf.Index[Any, Any],
    strategy_bodies: kopf.Index[Any, Any],
    account_bodies: kopf.Index[Any, Any],
    bot_leases: kopf.Index[Any, Any],
    **_: Any,
) -> None:
    # Our own annotation and finalizer names from day one (never kopf's defaults). kopf's
    # finalizer is only on Strategies and ExchangeAccounts (their timers); TradingBots
    # carry the controller's own (reconcile_bot.BOT_FINALIZER).
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    # Log lines are not events: we post events for meaningful transitions explicitly.
    settings.posting.level = logging.WARNING
    if not os.environ.get("TRADEBOT_DEBUG"):
        # kopf logs "Handler ... succeeded" for every watch event: thousands of lines a
        # minute with many bots, and measurable CPU. Warnings and errors stay.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    settings.watching.server_timeout = 300
    settings.background.instant_exit_timeout = 2.0
    settings.background.cancellation_polling = 2.0
    settings.networking.request_timeout = 60
    op = OperatorSettings.from_env()
    # Bounded concurrency: at most this many API requests in flight from the operator.
    concurrency = int(os.environ.get("TRADEBOT_API_CONCURRENCY", "16"))
    workers = int(os.environ.get("TRADEBOT_RECONCILE_WORKERS", "16"))
    # Validation looks exchange ids up in ccxt: a multi-second import that would otherwise
    # stall the event loop (every worker) in the first reconcile.
    await asyncio.to_thread(known_exchange, "binance")
    kube = await KubeClient.from_environment(max_concurrency=concurrency)
    inventory = Inventory()
    await inventory.load(kube, MANAGED_BY)
    memo.kube = kube
    # Vault policies/roles and credential checks only when the operator has its own auth.
    memo.vault = VaultAdmin(op) if op.vault_managed else None
    reconciler = BotReconciler(kube, op, inventory, vault=memo.vault)
    # Index objects are live views: the workers always read the newest bodies.
    queue: WorkQueue[BotKey] = WorkQueue()
    memo.controller = BotController(
        reconciler,
        EventPoster(kube, quiet=queue.wait_idle),
        bots=bot_bodies,
        strategies=strategy_bodies,
        accounts=account_bodies,
        leases=bot_leases,
        vault=memo.vault,
        queue=queue,
    )
    memo.controller.start(workers)
    memo.bot_triggers = {}
    memo.lease_state = {}


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    await memo.controller.stop()
    await memo.kube.close()


# ---- indexes ----------------------------------------------------------------------------


# Handlers are coroutines: kopf runs plain functions in a thread pool, one hop per event.


@kopf.index(GROUP, VERSION, "tradingbots")
async def bot_bodies(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): slim_body(body, status=True)}


@kopf.index(GROUP, VERSION, "strategies")
async def strategy_bodies(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): slim_body(body, status=False)}


@kopf.index(GROUP, VERSION, "exchangeaccounts")
async def account_bodies(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    # status: CredentialsReady feeds the bots' validation
    return {(namespace, name): slim_body(body, status=True)}


@kopf.index(GROUP, VERSION, "tradingbots")
async def bots_by_reference(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[Any, Any]:
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
async def bot_leases(namespace: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    bot = _owner_bot(body.get("metadata", {}))
    return {(namespace, bot): lease_observation(body)} if bot else {}


def bots_using(index: kopf.Index[Any, Any], kind: str, namespace: str, name: str) -> list[str]:
    return sorted(set(index.get((kind, namespace, name)) or []))


# ---- TradingBot -------------------------------------------------------------------------


@kopf.on.event(GROUP, VERSION, "tradingbots")
async def bot_changed(
    type: str | None, namespace: str, name: str, meta: kopf.Meta, memo: kopf.Memo, **_: Any
) -> None:
    """Wake the bot on what a pass acts on: a new object, spec (generation) or deletion.
    Status-only updates (our own writes) wake nothing."""
    controller: BotController = memo.controller
    key = (namespace, name)
    if type == "DELETED":
        memo.bot_triggers.pop(key, None)
        controller.gone(key)
        return
    controller.reconciler.observed(key, meta.get("resourceVersion"))
    trigger = (meta.get("uid"), meta.get("generation"), bool(meta.get("deletionTimestamp")))
    if memo.bot_triggers.get(key) != trigger:
        memo.bot_triggers[key] = trigger
        controller.wake(key)


@kopf.on.event("coordination.k8s.io", "v1", "leases", labels=MANAGED)
async def lease_changed(
    type: str | None, namespace: str, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    """Wake the owning bot when a shard's holder or readiness changes (not on every renew)."""
    bot = _owner_bot(body.get("metadata", {}))
    if bot is None:
        return
    obs = lease_observation(body)
    hb: Heartbeat | None = obs.heartbeat
    state = (obs.holder, hb.ready if hb else None, hb.state if hb else None,
             hb.ack_delete_request if hb else None)  # fmt: skip
    lease_key = (namespace, obs.name)
    if type == "DELETED":
        memo.lease_state.pop(lease_key, None)
        memo.controller.wake((namespace, bot))
    elif memo.lease_state.get(lease_key) != state:
        memo.lease_state[lease_key] = state
        memo.controller.wake((namespace, bot))


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
        memo.controller.wake((namespace, bot))
