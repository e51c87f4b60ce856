"""Pure Vault builders and credentials readiness (no server): per-bot policy and role,
CredentialsReady on accounts, CredentialsNotReady on bots, settings from env."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tradebot_contracts import names
from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.api.trading_bot import TradingBot
from tradebot_operator.builders.vault_policy import (
    bot_grant,
    grant_owner,
    mapped_keys,
    policy_hcl,
)
from tradebot_operator.checks import validate_bot
from tradebot_operator.controllers.references.status import account_status
from tradebot_operator.kube.conditions import ConditionUpdate
from tradebot_operator.settings import OperatorSettings

SETTINGS = OperatorSettings(vault_address="https://vault:8200", vault_token_file="/t")
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB...test...\n-----END CERTIFICATE-----\n"


def _account(name: str, path: str, status: str | None = None, **keys: str) -> ExchangeAccount:
    body: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "prod", "generation": 1},
        "spec": {"exchange": "binance", "mode": "live",
                 "credentials": {"vault": {"path": path, "keys": keys}}},
    }  # fmt: skip
    if status is not None:
        body["status"] = {"conditions": [{
            "type": "CredentialsReady", "status": status, "reason": "VaultKeysMissing",
            "message": "lacks secret", "lastTransitionTime": "2024-01-01T00:00:00Z",
        }]}  # fmt: skip
    return ExchangeAccount.model_validate(body)


def _bot(*accounts: str, mode: str = "live") -> TradingBot:
    return TradingBot.model_validate({
        "metadata": {"name": "alpha", "namespace": "prod"},
        "spec": {
            "strategyRef": {"name": "sma"}, "mode": mode,
            "exchanges": [{"account": a, "symbols": ["BTC/USDT"],
                           "allocation": {"quote": "USDT", "amount": "100"}} for a in accounts],
            "risk": {"maxPositionNotional": "500", "maxOrderNotional": "50",
                     "maxDailyLoss": "100"},
        },
    })  # fmt: skip


def test_policy_reads_exactly_the_bots_accounts_data_and_metadata() -> None:
    accounts = {
        "a": _account("a", "tradebot/a"),
        "b": _account("b", "tradebot/b"),
        "other": _account("other", "tradebot/other"),
    }
    grant = bot_grant(_bot("a", "b"), accounts, SETTINGS)
    assert grant.name == names.vault_role_name("prod", "alpha")
    assert grant.service_account == "alpha-runtime"
    policy = grant.policy
    for path in ("secret/data/tradebot/a", "secret/metadata/tradebot/a",
                 "secret/data/tradebot/b", "secret/metadata/tradebot/b"):  # fmt: skip
        assert f'path "{path}" {{\n  capabilities = ["read"]\n}}' in policy
    assert "other" not in policy
    assert policy.count("capabilities") == 4
    assert "*" not in policy and "+" not in policy  # no globs
    assert policy == policy_hcl(tuple(reversed(grant.secrets)), owner=("prod", "alpha"))  # stable
    # The owner comment names the bot: the grant sweep checks that bot before a removal.
    assert "# tradebot: namespace=prod bot=alpha\n" in policy
    assert grant_owner(policy) == ("prod", "alpha")


def test_role_binds_service_account_namespace_audience_and_short_ttl() -> None:
    role = bot_grant(_bot("a"), {"a": _account("a", "x")}, SETTINGS).role()
    assert role == {
        "name": names.vault_role_name("prod", "alpha"),
        "bound_service_account_names": ["alpha-runtime"],
        "bound_service_account_namespaces": ["prod"],
        "policies": [names.vault_role_name("prod", "alpha")],
        "ttl": "15m",
        "max_ttl": "24h",
        "audience": "vault",
    }
    injector = SETTINGS.model_copy(update={"credentials_delivery": "injector"})
    assert "audience" not in bot_grant(_bot("a"), {"a": _account("a", "x")}, injector).role()


def test_bot_without_vault_accounts_gets_an_empty_grant() -> None:
    paper = ExchangeAccount.model_validate(
        {"metadata": {"name": "p"}, "spec": {"exchange": "binance", "mode": "paper"}}
    )
    assert bot_grant(_bot("p", mode="paper"), {"p": paper}, SETTINGS).secrets == ()


def test_mapped_keys_include_optional_ones() -> None:
    account = _account("a", "x", apiKey="k", secret="s", password="pw")
    assert mapped_keys(account) == ["k", "pw", "s"]


def test_account_credentials_ready_comes_from_the_vault_check() -> None:
    body = _account("a", "x").model_dump(by_alias=True, mode="json", exclude_none=True)
    status, _ = account_status(body, [])
    assert _cond(status)["reason"] == "VaultNotChecked"
    check = ConditionUpdate("CredentialsReady", "False", "VaultKeysMissing", "lacks ['secret']")
    status, _ = account_status(body, [], vault_check=check)
    assert _cond(status)["status"] == "False" and _cond(status)["reason"] == "VaultKeysMissing"


def _cond(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "CredentialsReady")


def test_bot_is_blocked_by_credentials_not_ready_naming_the_account() -> None:
    bad = {"xa": _account("xa", "x", status="False")}
    problems = [p for p in validate_bot(_bot("xa"), None, bad, SETTINGS)
                if p.reason == "CredentialsNotReady"]  # fmt: skip
    assert len(problems) == 1 and "'xa'" in problems[0].message
    assert "VaultKeysMissing" in problems[0].message
    # Unknown (not checked yet) blocks only when the operator checks Vault itself.
    unknown = {"xa": _account("xa", "x", status="Unknown")}
    unmanaged = OperatorSettings(vault_address="https://vault:8200")
    assert not [p for p in validate_bot(_bot("xa"), None, unknown, unmanaged)
                if p.reason == "CredentialsNotReady"]  # fmt: skip
    assert [p for p in validate_bot(_bot("xa"), None, unknown, SETTINGS)
            if p.reason == "CredentialsNotReady"]  # fmt: skip


def test_operator_vault_auth_settings_from_env(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text(CA_PEM)
    settings = OperatorSettings.from_env({
        "TRADEBOT_VAULT_ADDRESS": "https://vault:8200",
        "TRADEBOT_VAULT_OPERATOR_ROLE": "tradebot-operator",
        "TRADEBOT_VAULT_CA_CERT": str(ca),
        "TRADEBOT_VAULT_ROLE_TOKEN_TTL": "5m",
    })  # fmt: skip
    assert settings.vault_managed and settings.vault_role_token_ttl == "5m"
    assert settings.vault_ca_cert == str(ca) and settings.vault_ca_pem == CA_PEM
    with pytest.raises(ValueError, match=r"TRADEBOT_VAULT_CA_CERT=/nonexistent/ca\.crt"):
        OperatorSettings.from_env({"TRADEBOT_VAULT_CA_CERT": "/nonexistent/ca.crt"})
    assert not OperatorSettings(vault_address="https://v:8200").vault_managed
    assert not OperatorSettings(vault_token_file="/t").vault_managed
