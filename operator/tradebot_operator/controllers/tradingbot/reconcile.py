"""Reconcile one TradingBot: resolve its references, validate, apply the desired children
when they changed, prune what is no longer desired, and write status when it changed.

Level-based: every trigger (spec change, referenced object change, Lease change, the
bot's own next deadline) runs the same function, which compares the world with the
desired state and acts on the difference only. A pass returns when the bot's status could
next change without any event (a Lease expiring, a heartbeat going stale, the periodic
resync), so that a bot with nothing pending costs nothing.

A bot being deleted is not reconciled: finalize.py handles it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tradebot_operator.builders.desired import desired, exchange_contexts
from tradebot_operator.builders.meta import BuildError
from tradebot_operator.builders.vault_policy import bot_grant
from tradebot_operator.checks import Problem
from tradebot_operator.controllers.tradingbot.inputs import (
    LeaseLookup,
    PriorityClassLookup,
    input_fingerprint,
    resolve,
)
from tradebot_operator.controllers.tradingbot.status import (
    DEADLINE_MARGIN_SECONDS,
    ExchangeObservation,
    LeaseObservation,
    Observation,
    compute_status,
    next_status_change,
    startup_deadline,
    transition_event,
    worth_writing,
)
from tradebot_operator.kube.client import KubeClient, Manifest, error_message
from tradebot_operator.kube.events import EventSink
from tradebot_operator.kube.indexes import BodyLookup
from tradebot_operator.kube.inventory import BotKey, ChildRef, Inventory
from tradebot_operator.kube.resources import KNOWN
from tradebot_operator.kube.status import current_status, status_patch, write_status
from tradebot_operator.kube.workqueue import backoff_delay
from tradebot_operator.services.vault import VaultAdmin
from tradebot_operator.settings import OperatorSettings

log = logging.getLogger(__name__)

BOT_RESOURCE = KNOWN[("tradebot.io/v1alpha1", "TradingBot")]
# Even with unchanged inputs, re-apply children this often to undo edits made by others.
RESYNC_SECONDS = 600.0
# A pass that could not apply the children (API error, Vault down) is retried after
# RETRY_SECONDS, then twice as long after each further failure of the same inputs, at most
# RETRY_MAX_SECONDS; new inputs (a spec change, a referenced object changing) retry at once.
RETRY_SECONDS = 5.0
RETRY_MAX_SECONDS = 300.0
APPLY_ERROR_MAX = 2000


def retry_delay(failures: int) -> float:
    """Seconds before the next apply after ``failures`` consecutive failed ones with the
    same inputs: 5, 10, 20, 40, ... never more than 300."""
    return backoff_delay(failures, RETRY_SECONDS, RETRY_MAX_SECONDS)


class ChildrenNotApplied(Exception):
    """The API server refused one or more children; the message names each, with the
    server's own reason."""


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
    failures: int = 0
    """Consecutive failed applies with these inputs (0: applied)."""
    retry_at: float = 0.0
    """The clock reading before which a failed apply is not retried (backoff)."""


@dataclass(frozen=True)
class PassResult:
    status: dict[str, Any]
    requeue_after: float | None
    """Seconds until this bot wants another pass without any event (None: never)."""


def manifests_hash(manifests: list[Manifest]) -> str:
    return hashlib.sha256(json.dumps(manifests, sort_keys=True).encode()).hexdigest()


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
    clock: Callable[[], float] = time.monotonic
    """Seconds, monotonic: when plans were made and when a failed apply is retried."""

    async def apply_children(
        self, key: BotKey, children: list[Manifest], *, prune: bool = True
    ) -> bool:
        """Apply when the desired set changed since the last apply; prune leftovers.

        Returns True when something was written.
        """
        digest = manifests_hash(children)
        if self.applied.get(key) == digest:
            return False
        # No take-over of another bot's object: names are unique by construction, and were
        # one taken anyway, the API server refuses a second controller owner reference (the
        # error names both owners). Objects that are not tradebot's are fenced by the
        # chart's ValidatingAdmissionPolicy (managed-by label), without a read per child.
        results = await asyncio.gather(
            *(self.kube.apply(child) for child in children), return_exceptions=True
        )
        refused = []
        for child, result in zip(children, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result  # cancellation
                meta = child.get("metadata", {})
                refused.append(f"{child.get('kind')} {meta.get('name')}: {error_message(result)}")
        if refused:
            raise ChildrenNotApplied("; ".join(refused))
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
        self.inventory.forget(key)

    def observed(self, key: BotKey, resource_version: str | None) -> None:
        """The watch delivered this version of the bot: once it is our last status write,
        the cached body has caught up."""
        written = self.written.get(key)
        if written is not None and written[0] == resource_version:
            del self.written[key]

    async def _plan(
        self, key: BotKey, body: Mapping[str, Any], strategies: BodyLookup,
        accounts: BodyLookup, event: EventSink,
        priority_classes: PriorityClassLookup | None = None,
    ) -> Plan:  # fmt: skip
        """Resolve, validate and apply when the inputs changed; otherwise the cached plan.

        Inputs are fingerprinted by uid and generation (status writes do not bump a
        generation), so a steady bot costs no parsing, building or API call here. A plan
        whose apply failed is kept too: with the same inputs the apply is retried only once
        its backoff (``retry_delay``) is over, whatever wakes the bot meanwhile.
        """
        fingerprint = input_fingerprint(body, strategies, accounts, priority_classes)
        cached = self.plans.get(key)
        failures, resync = 0, False
        if cached is not None and cached.fingerprint == fingerprint:
            now = self.clock()
            if cached.apply_error is not None:
                if now < cached.retry_at:
                    return cached
                failures = cached.failures
            elif now - cached.created < RESYNC_SECONDS:
                return cached
            else:
                resync = True
                self.applied.pop(key, None)  # periodic resync: re-apply to undo drift by others
        resolved = resolve(body, strategies, accounts, self.settings, priority_classes)
        plan = Plan(
            fingerprint,
            resolved.problems,
            suspended=bool(resolved.bot and resolved.bot.spec.suspend),
            halted=resolved.halted,
            created=self.clock(),
        )
        if not resolved.problems and resolved.bot and resolved.strategy:
            accounts_ok = {k: v for k, v in resolved.accounts.items() if v is not None}
            try:
                children = desired(resolved.bot, resolved.strategy, accounts_ok, self.settings)
                first_apply = key not in self.applied
                if await self.apply_children(key, children) and not (first_apply or resync):
                    # Creation is already told by the phase event, and a resync changes
                    # nothing of ours; a changed desired set is worth one.
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
            except Exception as exc:  # API errors, Vault: report, retry with backoff
                self.applied.pop(key, None)
                plan.apply_error = (
                    str(exc) if isinstance(exc, ChildrenNotApplied) else error_message(exc)
                )[:APPLY_ERROR_MAX]
                plan.failures = failures + 1
                delay = retry_delay(plan.failures)
                plan.retry_at = self.clock() + delay
                log.warning(
                    "applying children of %s/%s failed (attempt %d, next in %.0fs): %s",
                    *key, plan.failures, delay, plan.apply_error,
                )  # fmt: skip
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
        priority_classes: PriorityClassLookup | None = None,
    ) -> PassResult:
        """One pass: the status now on the object and when the next pass is due.
        ``priority_classes`` tells which PriorityClasses exist (None: not checked)."""
        now = now or datetime.now(UTC)
        meta = body.get("metadata", {})
        key: BotKey = (meta.get("namespace", ""), meta.get("name", ""))
        plan = await self._plan(key, body, strategies, accounts, event, priority_classes)
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
            current = current_status(body)
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
        if patch and not worth_writing(patch, current, now):
            patch = {}
            new = current
        if patch:
            version = await write_status(self.kube, BOT_RESOURCE, key[0], key[1], patch)
            if version:
                self.written[key] = (version, new)
            told = transition_event(current, new, problems=bool(plan.problems))
            if told is not None:
                event(*told)

        waits = [next_status_change(exchanges, now, stale_after)]
        ready_condition: dict[str, Any] = next(
            (c for c in new.get("conditions", []) if c.get("type") == "Ready"), {}
        )
        deadline = startup_deadline(observation, new)
        if ready_condition.get("reason") == "WaitingForRuntime" and deadline is not None:
            # a runtime stuck while starting turns the bot Degraded at this time
            waits.append(max(0.0, (deadline - now).total_seconds()) + DEADLINE_MARGIN_SECONDS)
        if plan.apply_error:
            waits.append(max(0.0, plan.retry_at - self.clock()))
        else:
            waits.append(max(0.0, plan.created + RESYNC_SECONDS - self.clock()))
        return PassResult(new, min((w for w in waits if w is not None), default=None))
