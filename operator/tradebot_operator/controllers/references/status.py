"""Status of Strategy and ExchangeAccount objects: validity and which bots use them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.api.strategy import Strategy
from tradebot_operator.checks import Problem, parse, validate_account, validate_strategy
from tradebot_operator.checks.tenancy import Tenant
from tradebot_operator.kube.conditions import ConditionUpdate, merge_conditions


def _verdict(problems: list[Problem], ok_reason: str) -> tuple[ConditionUpdate, list[Problem]]:
    errors = [p for p in problems if p.severity == "Error"]
    warnings = [p for p in problems if p.severity == "Warning"]
    if errors:
        first = errors[0]
        return ConditionUpdate("", "False", first.reason, "; ".join(map(str, errors))), warnings
    return ConditionUpdate("", "True", ok_reason, ""), warnings


def _with_type(update: ConditionUpdate, type_: str) -> ConditionUpdate:
    return ConditionUpdate(type_, update.status, update.reason, update.message)


def _status(
    body: Mapping[str, Any], used_by: Iterable[str], updates: list[ConditionUpdate],
    now: datetime | None,
) -> dict[str, Any]:  # fmt: skip
    generation = body.get("metadata", {}).get("generation")
    current = body.get("status") or {}
    return {
        "conditions": merge_conditions(
            current.get("conditions", []),
            updates,
            generation=generation,
            now=now or datetime.now(UTC),
        ),
        "usedBy": sorted(set(used_by))[:256],
        "observedGeneration": generation,
    }


def strategy_status(
    body: Mapping[str, Any],
    used_by: Iterable[str],
    now: datetime | None = None,
    tenant: Tenant | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """(status, warnings) for a Strategy: condition Valid names the exact bad field."""
    strategy, problems = parse(Strategy, body)
    if strategy is not None:
        problems = validate_strategy(strategy, tenant)
    valid, warnings = _verdict(problems, "ParametersValid")
    return _status(body, used_by, [_with_type(valid, "Valid")], now), warnings


def account_status(
    body: Mapping[str, Any],
    used_by: Iterable[str],
    now: datetime | None = None,
    vault_check: ConditionUpdate | None = None,
    tenant: Tenant | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """(status, warnings) for an ExchangeAccount: Ready and CredentialsReady.

    ``vault_check`` is the operator's check of the account's Vault secret (key presence
    only, tradebot_operator.services.vault); without it (no Vault configured for the operator) a
    vault account's CredentialsReady stays Unknown."""
    account, problems = parse(ExchangeAccount, body)
    if account is not None:
        problems = validate_account(account, tenant)
    ready, warnings = _verdict(problems, "AccountValid")
    credentials = ConditionUpdate("CredentialsReady", "True", "NotRequired", "paper mode")
    if account is not None:
        creds = account.spec.credentials
        if creds is not None and creds.secret_ref is not None:
            credentials = ConditionUpdate(
                "CredentialsReady", "True", "SecretRefDevelopmentOnly",
                "credentials come from a Kubernetes Secret: for development only, use vault",
            )  # fmt: skip
        elif creds is not None and creds.vault is not None and vault_check is not None:
            credentials = vault_check
        elif creds is not None and creds.vault is not None:
            credentials = ConditionUpdate(
                "CredentialsReady", "Unknown", "VaultNotChecked",
                f"vault path {creds.vault.path} is not verified by this operator version",
            )  # fmt: skip
    updates = [_with_type(ready, "Ready"), credentials]
    return _status(body, used_by, updates, now), warnings
