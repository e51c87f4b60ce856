"""Vault CA bundle: the operator's setting is rendered into the runtime config (public PEM
text, no secret) and the runtime hands it to hvac as ``verify``; and the operator's own
Vault policy documented in the README is the one the code (and the demo) uses."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest

from tradebot_contracts.runtime_config import VaultCredentials
from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.api.trading_bot import TradingBot
from tradebot_operator.builders.runtime_config import credentials_config
from tradebot_operator.builders.vault_policy import operator_policy_hcl
from tradebot_operator.settings import OperatorSettings
from tradebot_runtime.credentials import vault_verify

CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
README = Path(__file__).resolve().parents[2] / "README.md"

ACCOUNT = ExchangeAccount.model_validate({
    "metadata": {"name": "xa", "namespace": "prod", "generation": 1},
    "spec": {"exchange": "binance", "mode": "live",
             "credentials": {"vault": {"path": "tradebot/xa"}}},
})  # fmt: skip
BOT = TradingBot.model_validate({
    "metadata": {"name": "alpha", "namespace": "prod"},
    "spec": {
        "strategyRef": {"name": "sma"}, "mode": "live",
        "exchanges": [{"account": "xa", "symbols": ["BTC/USDT"],
                       "allocation": {"quote": "USDT", "amount": "100"}}],
        "risk": {"maxPositionNotional": "500", "maxOrderNotional": "50", "maxDailyLoss": "20",
                 "maxOrdersPerMinute": 10, "priceBandPercent": "5"},
    },
})  # fmt: skip


def test_ca_bundle_is_rendered_into_the_runtime_config(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text(CA_PEM)
    settings = OperatorSettings.from_env({
        "TRADEBOT_VAULT_ADDRESS": "https://vault.vault.svc:8200",
        "TRADEBOT_VAULT_CA_CERT": str(ca),
    })  # fmt: skip
    config = credentials_config(BOT, ACCOUNT, settings)
    assert config.vault is not None and config.vault.ca_cert == CA_PEM
    rendered = json.loads(config.model_dump_json(by_alias=True, exclude_none=True))
    assert rendered["vault"]["caCert"] == CA_PEM
    assert rendered["vault"]["address"] == "https://vault.vault.svc:8200"

    # Without a CA setting nothing changes (no key; existing pods are not rolled).
    plain = credentials_config(BOT, ACCOUNT, OperatorSettings(vault_address="https://v:8200"))
    assert "caCert" not in plain.model_dump_json(by_alias=True, exclude_none=True)


def test_runtime_verifies_with_the_rendered_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR (the pod's /tmp)
    vault = VaultCredentials(
        address="https://v:8200", auth_mount="kubernetes", role="r", kv_mount="secret",
        path="p", keys={"apiKey": "a", "secret": "s"},
    )  # fmt: skip
    assert vault_verify(vault) is True
    with_ca = vault.model_copy(update={"ca_cert": CA_PEM})
    path = vault_verify(with_ca)
    assert isinstance(path, str) and Path(path).parent == tmp_path
    assert Path(path).read_text() == CA_PEM
    assert vault_verify(with_ca) == path  # reused


def test_readme_documents_the_operators_exact_policy() -> None:
    text = README.read_text()
    blocks = re.findall(r"```hcl\n(.*?)```", text, flags=re.S)
    assert operator_policy_hcl() in blocks, blocks
