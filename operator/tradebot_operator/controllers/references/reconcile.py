"""One pass over a Strategy or ExchangeAccount: compute its status (the timer refreshes
usedBy), write it when it changed, post an Event for each condition that flipped and for
each warning, then wake the bots that use the object so that a change reaches them at
once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.checks import Problem, errors, parse, validate_account
from tradebot_operator.checks.tenancy import Tenant, tenant_of
from tradebot_operator.controllers.references.status import account_status, strategy_status
from tradebot_operator.kube.client import KubeClient
from tradebot_operator.kube.conditions import ConditionUpdate
from tradebot_operator.kube.events import EventPoster
from tradebot_operator.kube.indexes import Indexes, IndexView
from tradebot_operator.kube.inventory import BotKey
from tradebot_operator.kube.resources import KNOWN, Resource
from tradebot_operator.kube.status import current_status, status_patch, write_status
from tradebot_operator.services.vault import VaultAdmin, VaultUnavailable
from tradebot_operator.settings import OperatorSettings

STRATEGY = KNOWN[("tradebot.io/v1alpha1", "Strategy")]
ACCOUNT = KNOWN[("tradebot.io/v1alpha1", "ExchangeAccount")]

# plural -> (reference kind in the bots_by_reference index, resource)
REFERENCED: dict[str, tuple[str, Resource]] = {
    "strategies": ("strategy", STRATEGY),
    "exchangeaccounts": ("account", ACCOUNT),
}


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

    def tenant(self, namespace: str) -> Tenant:
        return tenant_of(namespace, self.settings.tenancy, self.settings.runtime_image)

    async def reconcile(
        self, plural: str, body: Mapping[str, Any], namespace: str, name: str,
        type_: str | None = None,
    ) -> None:  # fmt: skip
        ref_kind, res = REFERENCED[plural]
        users = bots_using(self.indexes.bots_by_reference, ref_kind, namespace, name)
        tenant = self.tenant(namespace)
        if type_ != "DELETED":
            if ref_kind == "account":
                check = await self._vault_check(body, tenant)
                status, warnings = account_status(body, users, vault_check=check, tenant=tenant)
            else:
                status, warnings = strategy_status(body, users, tenant=tenant)
            await self._write_status(res, body, status, warnings)
        for bot in users:
            self.wake((namespace, bot))

    async def _vault_check(self, body: Mapping[str, Any], tenant: Tenant) -> ConditionUpdate | None:
        """Vault is asked only about an account that passed every check: a path outside
        the namespace's prefix is never looked up, so nobody learns whether it exists."""
        vault = self.vault
        account, _ = parse(ExchangeAccount, body)
        if vault is None or account is None or errors(validate_account(account, tenant)):
            return None
        try:
            return await vault.check_account(account)
        except VaultUnavailable as exc:
            return ConditionUpdate("CredentialsReady", "Unknown", "VaultUnavailable", str(exc))

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
