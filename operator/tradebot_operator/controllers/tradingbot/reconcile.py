"""Reconcile one TradingBot: resolve its references, validate, apply the desired children
when they changed, prune what is no longer desired, and write status when it changed.

Level-based: every trigger (spec change, referenced object change, Lease change, the
bot's own next deadline) runs the same function, which compares the world with the
desired state and acts on the difference only. A pass returns when the bot's status could
next change without any event (a Lease expiring, a heartbeat going stale, the periodic
resync), so that a bot with nothing pending costs nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from tradebot_contracts.runtime_config import DeleteRequest
from tradebot_contracts.types import stricter_trading_state
from tradebot_operator.api.exchange_account import ExchangeAccount, ExchangeAccountStatus
from tradebot_operator.api.strategy import Strategy
from tradebot_operator.api.trading_bot import TradingBot
from tradebot_operator.bot_status import (
    ExchangeObservation,
    LeaseObservation,
    Observation,
    compute_status,
    startup_deadline,
)
from tradebot_operator.builders.desired import desired, exchange_contexts
from tradebot_operator.builders.meta import BuildError
from tradebot_operator.inputs import parse
from tradebot_operator.inventory import BotKey, ChildRef, Inventory
from tradebot_operator.kube.client import KubeClient, Manifest
from tradebot_operator.kube.resources import KNOWN
from tradebot_operator.settings import OperatorSettings
from tradebot_operator.validation import Problem, errors, validate_bot
from tradebot_operator.vault import VaultAdmin
from tradebot_operator.vault_policy import bot_grant

log = logging.getLogger(__name__)

# (namespace, name) -> raw body; filled from kopf indexes.
BodyLookup = Callable[[str, str], Mapping[str, Any] | None]
# (namespace, bot) -> Lease observations of that bot.
LeaseLookup = Callable[[str, str], Iterable[LeaseObservation]]
# Posts a Kubernetes Event on the bot: (type, reason, message).
EventSink = Callable[[str, str, str], None]

BOT_RESOURCE = KNOWN[("tradebot.io/v1alpha1", "TradingBot")]
# Even with unchanged inputs, re-apply children this often to undo edits made by others.
RESYNC_SECONDS = 600.0
# A pass that could not apply the children (API error, Vault down) is retried after this.
RETRY_SECONDS = 5.0
# Re-check a little after a Lease or heartbeat deadline, not exactly on it (clock rounding).
DEADLINE_MARGIN_SECONDS = 0.5
# A status change that only moves lastHeartbeat is written at most this often: the
# heartbeat time alone tells nothing new, and writing it on every pass of every running
# bot would be most of the operator's writes.
HEARTBEAT_STATUS_SECONDS = 30.0
# Our finalizer on a TradingBot: applies spec.onDelete through the runtime and removes
# the bot's Vault grant before the children go (kopf's finalizer name stays on the other
# kinds, whose timers hold it).
BOT_FINALIZER = "tradebot.io/on-delete"


@dataclass
class ResolvedBot:
    bot: TradingBot | None
    strategy: Strategy | None
    accounts: dict[str, ExchangeAccount | None]
    problems: list[Problem]


def resolve(
    body: Mapping[str, Any],
    strategies: BodyLookup,
    accounts: BodyLookup,
    settings: OperatorSettings | None = None,
) -> ResolvedBot:
    """Parse the bot and everything it refers to; collect every problem."""
    bot, problems = parse(TradingBot, body)
    if bot is None:
        return ResolvedBot(None, None, {}, problems)
    ns = bot.metadata.namespace or ""
    strategy: Strategy | None = None
    raw_strategy = strategies(ns, bot.spec.strategy_ref.name)
    if raw_strategy is not None:
        strategy, strategy_problems = parse(Strategy, raw_strategy)
        problems += [
            Problem("StrategyInvalid", "spec.strategyRef.name", f"Strategy: {p}")
            for p in strategy_problems
        ]
    resolved_accounts: dict[str, ExchangeAccount | None] = {}
    for exchange in bot.spec.exchanges:
        raw = accounts(ns, exchange.account)
        account, account_problems = (None, []) if raw is None else parse(ExchangeAccount, raw)
        if account is not None and raw is not None:  # CredentialsReady feeds validation
            account = account.model_copy(update={"status": _account_status(raw)})
        problems += [
            Problem("ExchangeAccountInvalid", "spec.exchanges", f"{exchange.account}: {p}")
            for p in account_problems
        ]
        resolved_accounts[exchange.account] = account
    if not problems:
        problems = errors(validate_bot(bot, strategy, resolved_accounts, settings))
    return ResolvedBot(bot, strategy, resolved_accounts, problems)


def _generation(body: Mapping[str, Any] | None) -> tuple[str, int] | None:
    if body is None:
        return None
    meta = body.get("metadata", {})
    return (str(meta.get("uid", "")), int(meta.get("generation") or 0))


def _account_status(raw: Mapping[str, Any]) -> ExchangeAccountStatus | None:
    """The account's status as we wrote it (parse() drops status); None if unreadable."""
    try:
        return ExchangeAccountStatus.model_validate(raw.get("status") or {})
    except ValidationError:
        return None


def _credentials_ready(body: Mapping[str, Any] | None) -> tuple[Any, ...] | None:
    """An account's CredentialsReady (status, reason): a status change, not a generation."""
    if body is None:
        return None
    for condition in (body.get("status") or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "CredentialsReady":
            return (condition.get("status"), condition.get("reason"))
    return None


def input_fingerprint(
    body: Mapping[str, Any], strategies: BodyLookup, accounts: BodyLookup
) -> tuple[Any, ...]:
    """Identity and generation of the bot and of everything it references."""
    meta, spec = body.get("metadata", {}), body.get("spec") or {}
    ns = meta.get("namespace", "")
    strategy_name = (spec.get("strategyRef") or {}).get("name")
    account_names = [e.get("account") for e in spec.get("exchanges") or [] if isinstance(e, dict)]
    return (
        _generation(body),
        strategy_name,
        _generation(strategies(ns, strategy_name) if isinstance(strategy_name, str) else None),
        tuple(
            (name, _generation(raw), _credentials_ready(raw))
            for name, raw in (
                (name, accounts(ns, name) if isinstance(name, str) else None)
                for name in account_names
            )
        ),
    )


@dataclass
class Plan:
    """What a reconcile concluded from the inputs: reused while they do not change.

    Only what status needs is kept (not the parsed models): one Plan per bot stays in
    memory for the operator's lifetime.
    """

    fingerprint: tuple[Any, ...]
    problems: list[Problem]
    suspended: bool = False
    halted: bool = False
    shards: list[tuple[str, list[tuple[str, int]]]] = field(default_factory=list)
    apply_error: str | None = None
    created: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class PassResult:
    status: dict[str, Any]
    requeue_after: float | None
    """Seconds until this bot wants another pass without any event (None: never)."""


def needs_finalizer(body: Mapping[str, Any], vault_managed: bool) -> bool:
    """Whether deleting the bot has work to do: the runtime's onDelete (only while it may
    run, i.e. not suspended) or the Vault grant. Without work, no finalizer (no write)."""
    spec = body.get("spec") or {}
    runs = not spec.get("suspend") and spec.get("onDelete", "cancelOrders") != "leave"
    return vault_managed or runs


def next_status_change(
    exchanges: Sequence[ExchangeObservation], now: datetime, stale_after: timedelta
) -> float | None:
    """Seconds until the status could change with no event: the earliest expiry of a held
    Lease or staleness of a fresh heartbeat. None when nothing can change on its own."""
    deadlines: list[datetime] = []
    for exchange in exchanges:
        for lease in exchange.leases:
            if not lease.held(now) or lease.renew_time is None:
                continue
            deadlines.append(lease.renew_time + timedelta(seconds=lease.duration_seconds))
            hb = lease.heartbeat
            if hb is not None and now - hb.ts <= stale_after:
                deadlines.append(hb.ts + stale_after)
    if not deadlines:
        return None
    return max(0.0, (min(deadlines) - now).total_seconds()) + DEADLINE_MARGIN_SECONDS


def _heartbeat_only(patch: Mapping[str, Any]) -> bool:
    """True when a status patch changes nothing but exchanges.*.lastHeartbeat."""
    exchanges = patch.get("exchanges")
    if set(patch) != {"exchanges"} or not isinstance(exchanges, dict):
        return False
    return all(
        isinstance(sub, dict) and set(sub) == {"lastHeartbeat"} for sub in exchanges.values()
    )


def _heartbeat_age(status: Mapping[str, Any], now: datetime) -> float:
    """Seconds since the oldest lastHeartbeat written in `status` (inf if unreadable)."""
    ages = []
    for exchange in (status.get("exchanges") or {}).values():
        try:
            ts = datetime.fromisoformat(str(exchange["lastHeartbeat"]).replace("Z", "+00:00"))
        except (KeyError, TypeError, ValueError):
            return float("inf")
        ages.append((now - ts).total_seconds())
    return max(ages, default=float("inf"))


def manifests_hash(manifests: list[Manifest]) -> str:
    return hashlib.sha256(json.dumps(manifests, sort_keys=True).encode()).hexdigest()


def status_patch(current: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning `current` into `new` (removed map keys become null)."""
    patch: dict[str, Any] = {}
    for key in set(current) | set(new):
        if key not in new:
            patch[key] = None
        elif isinstance(new[key], dict) and isinstance(current.get(key), dict):
            sub = status_patch(current[key], new[key])
            if sub:
                patch[key] = sub
        elif current.get(key) != new[key]:
            patch[key] = new[key]
    return patch


@dataclass
class BotReconciler:
    kube: KubeClient
    settings: OperatorSettings
    inventory: Inventory
    applied: dict[BotKey, str] = field(default_factory=dict)
    plans: dict[BotKey, Plan] = field(default_factory=dict)
    vault: VaultAdmin | None = None
    """Writes the bot's Vault policy and role (None: the operator does not manage Vault)."""
    written: dict[BotKey, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    """(resourceVersion our last status write produced, that status): until the watch
    delivers that version, the cached body is older than what is on the object."""
    delete_requests: dict[BotKey, str] = field(default_factory=dict)
    """Delete request id already rendered into the bot's ConfigMaps."""

    def effective_halted(self, resolved: ResolvedBot) -> bool:
        if resolved.bot is None:
            return False
        states = [resolved.bot.spec.trading_state]
        states += [a.spec.trading_state for a in resolved.accounts.values() if a is not None]
        return stricter_trading_state(*states) == "Halted"

    async def apply_children(
        self, key: BotKey, children: list[Manifest], *, prune: bool = True
    ) -> bool:
        """Apply when the desired set changed since the last apply; prune leftovers.

        Returns True when something was written.
        """
        digest = manifests_hash(children)
        if self.applied.get(key) == digest:
            return False
        await asyncio.gather(*(self.kube.apply(child) for child in children))
        wanted = {ChildRef.of(child) for child in children}
        if prune:
            for ref in sorted(self.inventory.children(key) - wanted):
                await self.kube.delete(ref.resource, key[0], ref.name)
                log.info("pruned %s %s/%s", ref.kind, key[0], ref.name)
            self.inventory.replace(key, wanted)
        self.applied[key] = digest
        return True

    def forget(self, key: BotKey) -> None:
        self.applied.pop(key, None)
        self.plans.pop(key, None)
        self.written.pop(key, None)
        self.delete_requests.pop(key, None)
        self.inventory.forget(key)

    def observed(self, key: BotKey, resource_version: str | None) -> None:
        """The watch delivered this version of the bot: once it is our last status write,
        the cached body has caught up."""
        written = self.written.get(key)
        if written is not None and written[0] == resource_version:
            del self.written[key]

    async def ensure_finalizer(self, key: BotKey, body: Mapping[str, Any]) -> None:
        if not needs_finalizer(body, self.vault is not None):
            return
        await self._set_finalizer(key, body, present=True)

    async def remove_finalizer(self, key: BotKey, body: Mapping[str, Any]) -> None:
        await self._set_finalizer(key, body, present=False)

    async def _set_finalizer(self, key: BotKey, body: Mapping[str, Any], *, present: bool) -> None:
        """Add or remove BOT_FINALIZER, guarded by resourceVersion so that a concurrent
        change of the list is never overwritten. The cached body can be a version behind
        our own last write; then (rarely) one GET gives the current list."""
        for attempt in range(2):
            meta = body.get("metadata", {})
            finalizers = list(meta.get("finalizers") or [])
            if (BOT_FINALIZER in finalizers) == present:
                return
            if present and meta.get("deletionTimestamp"):
                return  # too late (the API server refuses it); its runtime was never applied
            wanted = [*finalizers, BOT_FINALIZER] if present else [
                f for f in finalizers if f != BOT_FINALIZER
            ]  # fmt: skip
            ops: list[dict[str, Any]] = [
                {"op": "test", "path": "/metadata/resourceVersion",
                 "value": meta.get("resourceVersion")},
                {"op": "add", "path": "/metadata/finalizers", "value": wanted},
            ]  # fmt: skip
            try:
                await self.kube.patch_json(BOT_RESOURCE, key[0], key[1], ops)
                return
            except ApiException as err:
                if err.status == 404:
                    return  # gone: nothing to hold or release
                if err.status not in (409, 422) or attempt:
                    raise
            fresh = await self.kube.get(BOT_RESOURCE, key[0], key[1])
            if fresh is None:
                return
            body = fresh

    async def _plan(
        self, key: BotKey, body: Mapping[str, Any], strategies: BodyLookup,
        accounts: BodyLookup, event: EventSink,
    ) -> Plan:  # fmt: skip
        """Resolve, validate and apply when the inputs changed; otherwise the cached plan.

        Inputs are fingerprinted by uid and generation (status writes do not bump a
        generation), so a steady bot costs no parsing, building or API call here.
        """
        fingerprint = input_fingerprint(body, strategies, accounts)
        cached = self.plans.get(key)
        if cached is not None and cached.fingerprint == fingerprint:
            if time.monotonic() - cached.created < RESYNC_SECONDS:
                return cached
            self.applied.pop(key, None)  # periodic resync: re-apply to undo drift by others
        resolved = resolve(body, strategies, accounts, self.settings)
        plan = Plan(
            fingerprint,
            resolved.problems,
            suspended=bool(resolved.bot and resolved.bot.spec.suspend),
            halted=self.effective_halted(resolved),
        )
        if not resolved.problems and resolved.bot and resolved.strategy:
            accounts_ok = {k: v for k, v in resolved.accounts.items() if v is not None}
            try:
                children = desired(resolved.bot, resolved.strategy, accounts_ok, self.settings)
                first_apply = key not in self.applied
                if await self.apply_children(key, children) and not first_apply:
                    # Creation is already told by the phase event; changes are worth one.
                    event("Normal", "ChildrenUpdated", f"applied {len(children)} objects")
                if self.vault is not None:  # policy + role follow the bot's accounts
                    await self.vault.sync_bot(bot_grant(resolved.bot, accounts_ok, self.settings))
                plan.shards = [
                    (
                        ctx.account.metadata.name,
                        [(s.lease_name, s.index) for s in ctx.config.shards],
                    )
                    for ctx in exchange_contexts(
                        resolved.bot, resolved.strategy, accounts_ok, self.settings
                    )
                ]
            except BuildError as exc:
                plan.problems.append(Problem("BuildFailed", "spec", str(exc)))
            except Exception as exc:  # API errors: report, retry after RETRY_SECONDS
                self.applied.pop(key, None)
                plan.apply_error = f"{type(exc).__name__}: {str(exc)[:500]}"
                log.warning("applying children of %s/%s failed: %s", *key, plan.apply_error)
                return plan  # not cached: the next pass retries
        self.plans[key] = plan
        return plan

    async def reconcile(
        self,
        body: Mapping[str, Any],
        strategies: BodyLookup,
        accounts: BodyLookup,
        leases: LeaseLookup,
        event: EventSink,
        now: datetime | None = None,
    ) -> PassResult:
        """One pass: the status now on the object and when the next pass is due."""
        now = now or datetime.now(UTC)
        meta = body.get("metadata", {})
        key: BotKey = (meta.get("namespace", ""), meta.get("name", ""))
        await self.ensure_finalizer(key, body)
        plan = await self._plan(key, body, strategies, accounts, event)
        observed = {lease.name: lease for lease in leases(*key)} if plan.shards else {}
        exchanges = [
            ExchangeObservation(
                account,
                len(shards),
                [
                    observed.get(name) or LeaseObservation(name, index, None, None, 0, None)
                    for name, index in shards
                ],
            )
            for account, shards in plan.shards
        ]

        written = self.written.get(key)
        if written is not None and written[0] != meta.get("resourceVersion"):
            current = dict(written[1])  # the cached body predates our last status write
        else:
            self.written.pop(key, None)
            current = dict(body.get("status") or {})
            current.pop("kopf", None)
        stale_after = timedelta(seconds=3 * self.settings.lease_duration_seconds)
        observation = Observation(
            generation=meta.get("generation"),
            suspended=plan.suspended,
            halted=plan.halted,
            problems=plan.problems,
            apply_error=plan.apply_error,
            exchanges=exchanges,
            stale_after=stale_after,
            ever_running=current.get("phase") in ("Running", "Degraded", "Halted"),
        )
        new = compute_status(observation, current, now)
        patch = status_patch(current, new)
        if (
            patch
            and _heartbeat_only(patch)
            and _heartbeat_age(current, now) < (HEARTBEAT_STATUS_SECONDS)
        ):
            patch = {}
            new = current
        if patch:
            result = await self.kube.patch_merge(
                BOT_RESOURCE, key[0], key[1], {"status": patch}, subresource="status"
            )
            version = (result.get("metadata") or {}).get("resourceVersion")
            if version:
                self.written[key] = (str(version), new)
            old_phase, new_phase = current.get("phase"), new["phase"]
            if old_phase != new_phase:
                warn = new_phase in ("Failed", "Degraded")
                ready = next(c for c in new["conditions"] if c["type"] == "Ready")
                event(
                    "Warning" if warn else "Normal",
                    ready["reason"],
                    f"phase {old_phase or 'None'} -> {new_phase}: {ready['message']}"[:1000],
                )

        waits = [next_status_change(exchanges, now, stale_after)]
        ready_condition: dict[str, Any] = next(
            (c for c in new.get("conditions", []) if c.get("type") == "Ready"), {}
        )
        deadline = startup_deadline(observation, new)
        if ready_condition.get("reason") == "WaitingForRuntime" and deadline is not None:
            # a runtime stuck while starting turns the bot Degraded at this time
            waits.append(max(0.0, (deadline - now).total_seconds()) + DEADLINE_MARGIN_SECONDS)
        if plan.apply_error:
            waits.append(RETRY_SECONDS)
        else:
            waits.append(max(0.0, plan.created + RESYNC_SECONDS - time.monotonic()))
        return PassResult(new, min((w for w in waits if w is not None), default=None))

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
