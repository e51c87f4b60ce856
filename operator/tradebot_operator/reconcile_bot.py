"""Reconcile one TradingBot: resolve its references, validate, apply the desired children
when they changed, prune what is no longer desired, and write status when it changed.

Level-based: every trigger (spec change, referenced object change, Lease change, timer)
runs the same function, which compares the world with the desired state and acts on the
difference only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from tradebot_operator.api.exchange_account import ExchangeAccount, ExchangeAccountStatus
from tradebot_operator.api.runtime_config import DeleteRequest
from tradebot_operator.api.strategy import Strategy
from tradebot_operator.api.trading_bot import TradingBot
from tradebot_operator.api.types import stricter_trading_state
from tradebot_operator.bot_status import (
    ExchangeObservation,
    LeaseObservation,
    Observation,
    compute_status,
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
    """What a reconcile concluded from the inputs: reused while they do not change."""

    fingerprint: tuple[Any, ...]
    resolved: ResolvedBot
    shards: list[tuple[str, list[tuple[str, int]]]] = field(default_factory=list)
    apply_error: str | None = None
    created: float = field(default_factory=time.monotonic)


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
        self.inventory.forget(key)

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
        plan = Plan(fingerprint, resolved)
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
                resolved.problems.append(Problem("BuildFailed", "spec", str(exc)))
            except Exception as exc:  # API errors: report, retry on the next pass
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
    ) -> dict[str, Any]:
        """One pass; returns the status that is now on the object."""
        now = now or datetime.now(UTC)
        meta = body.get("metadata", {})
        key: BotKey = (meta.get("namespace", ""), meta.get("name", ""))
        plan = await self._plan(key, body, strategies, accounts, event)
        resolved, apply_error = plan.resolved, plan.apply_error
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

        current = dict(body.get("status") or {})
        current.pop("kopf", None)
        observation = Observation(
            generation=meta.get("generation"),
            suspended=bool(resolved.bot and resolved.bot.spec.suspend),
            halted=self.effective_halted(resolved),
            problems=resolved.problems,
            apply_error=apply_error,
            exchanges=exchanges,
            stale_after=timedelta(seconds=3 * self.settings.lease_duration_seconds),
            ever_running=current.get("phase") in ("Running", "Degraded", "Halted"),
        )
        new = compute_status(observation, current, now)
        patch = status_patch(current, new)
        if patch:
            await self.kube.patch_merge(
                BOT_RESOURCE, key[0], key[1], {"status": patch}, subresource="status"
            )
            old_phase, new_phase = current.get("phase"), new["phase"]
            if old_phase != new_phase:
                warn = new_phase in ("Failed", "Degraded")
                ready = next(c for c in new["conditions"] if c["type"] == "Ready")
                event(
                    "Warning" if warn else "Normal",
                    ready["reason"],
                    f"phase {old_phase or 'None'} -> {new_phase}: {ready['message']}"[:1000],
                )
        return new

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
        accounts_ok = {k: v for k, v in resolved.accounts.items() if v is not None}
        children = desired(
            resolved.bot, resolved.strategy, accounts_ok, self.settings, delete_request=request
        )
        config_maps = [c for c in children if c["kind"] == "ConfigMap"]
        await asyncio.gather(*(self.kube.apply(cm) for cm in config_maps))
        return True
