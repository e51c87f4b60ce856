"""Status of Strategy and ExchangeAccount objects: validity, which bots use them, and
whether a deletion waits for them (condition Deletable, reason InUse: the operator's
finalizer IN_USE_FINALIZER holds the object while a bot uses it, reconcile.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from tradebot_contracts.names import CREDENTIALS_SECRET_LABEL
from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.api.strategy import Strategy
from tradebot_operator.checks import Problem, parse, validate_account, validate_strategy
from tradebot_operator.checks.tenancy import Tenant
from tradebot_operator.kube.conditions import ConditionUpdate, merge_conditions

IN_USE_FINALIZER = "tradebot.io/in-use"
"""Held on a Strategy or ExchangeAccount while at least one TradingBot uses it, so that
deleting it waits until none does (like Kubernetes' PVC protection)."""
DELETABLE = "Deletable"
IN_USE_NAMES = 20
"""At most this many bot names in the Deletable message (usedBy lists them all)."""


def in_use_condition(kind: str, users: list[str]) -> ConditionUpdate:
    """Deletable False, reason InUse: the object is being deleted and bots still use it."""
    names = ", ".join(users[:IN_USE_NAMES])
    if len(users) > IN_USE_NAMES:
        names += f" and {len(users) - IN_USE_NAMES} more"
    return ConditionUpdate(
        DELETABLE, "False", "InUse",
        f"deletion waits until no TradingBot uses this {kind} (finalizer {IN_USE_FINALIZER});"
        f" used by {names}",
    )  # fmt: skip


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
    kind: str, body: Mapping[str, Any], used_by: Iterable[str], updates: list[ConditionUpdate],
    now: datetime | None,
) -> dict[str, Any]:  # fmt: skip
    generation = body.get("metadata", {}).get("generation")
    current = body.get("status") or {}
    users = sorted(set(used_by))
    if body.get("metadata", {}).get("deletionTimestamp"):
        if users:
            updates = [*updates, in_use_condition(kind, users)]
        elif any(c.get("type") == DELETABLE for c in current.get("conditions", [])):
            updates = [*updates, ConditionUpdate(
                DELETABLE, "True", "NotInUse",
                f"no TradingBot uses this {kind} any more: its deletion proceeds",
            )]  # fmt: skip
    return {
        "conditions": merge_conditions(
            current.get("conditions", []),
            updates,
            generation=generation,
            now=now or datetime.now(UTC),
        ),
        "usedBy": users[:256],
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
    return _status("Strategy", body, used_by, [_with_type(valid, "Valid")], now), warnings


def secret_ref_check(name: str, metadata: Mapping[str, Any] | None) -> ConditionUpdate:
    """CredentialsReady of a ``secretRef`` account from its Secret's metadata (None: no such
    Secret). Only a Secret labelled for tradebot may become an account's keys."""
    if metadata is None:
        return ConditionUpdate(
            "CredentialsReady", "False", "SecretNotFound", f"no Secret {name!r} in this namespace"
        )
    labels = (metadata.get("metadata") or {}).get("labels") or {}
    if labels.get(CREDENTIALS_SECRET_LABEL) != "true":
        return ConditionUpdate(
            "CredentialsReady", "False", "SecretNotLabelled",
            f"Secret {name!r} lacks the label {CREDENTIALS_SECRET_LABEL}=true (only Secrets "
            "meant for tradebot can hold an account's keys)",
        )  # fmt: skip
    return ConditionUpdate(
        "CredentialsReady", "True", "SecretRefDevelopmentOnly",
        "credentials come from a Kubernetes Secret: for development only, use vault",
    )  # fmt: skip


def account_status(
    body: Mapping[str, Any],
    used_by: Iterable[str],
    now: datetime | None = None,
    vault_check: ConditionUpdate | None = None,
    tenant: Tenant | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """(status, warnings) for an ExchangeAccount: Ready and CredentialsReady.

    ``vault_check`` is the operator's check of the account's credentials: its Vault secret
    (key presence only, tradebot_operator.services.vault) or its Kubernetes Secret
    (``secret_ref_check``); without it a vault account's CredentialsReady stays Unknown (no
    Vault configured for the operator), a secretRef account's too (not valid yet)."""
    account, problems = parse(ExchangeAccount, body)
    if account is not None:
        problems = validate_account(account, tenant)
    ready, warnings = _verdict(problems, "AccountValid")
    credentials = ConditionUpdate("CredentialsReady", "True", "NotRequired", "paper mode")
    if account is not None:
        creds = account.spec.credentials
        if creds is not None and creds.secret_ref is not None:
            credentials = vault_check or ConditionUpdate(
                "CredentialsReady", "Unknown", "SecretNotChecked",
                f"Secret {creds.secret_ref.name!r} is checked once the account is valid",
            )  # fmt: skip
        elif creds is not None and creds.vault is not None and vault_check is not None:
            credentials = vault_check
        elif creds is not None and creds.vault is not None:
            credentials = ConditionUpdate(
                "CredentialsReady", "Unknown", "VaultNotChecked",
                f"vault path {creds.vault.path} is not verified by this operator version",
            )  # fmt: skip
    updates = [_with_type(ready, "Ready"), credentials]
    return _status("ExchangeAccount", body, used_by, updates, now), warnings
