"""The samples (manifests/samples) are valid for the operator, not only for the CRD schema:
each object parses with the API models and passes the operator's own validation, so a sample
never lands in a Failed phase or an invalid condition. (The integration test applies them to a
real API server.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tradebot_operator.api import ExchangeAccount, Strategy, TradingBot
from tradebot_operator.checks import (
    errors,
    validate_account,
    validate_bot,
    validate_strategy,
)
from tradebot_operator.checks.tenancy import tenant_of
from tradebot_operator.installation import TenancyPolicy
from tradebot_operator.settings import OperatorSettings

SAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "samples"
BUILT_INS = {"sma-crossover", "rsi-reversion", "grid", "dca"}
# What an installation with Vault looks like (the chart's vault.address).
SETTINGS = OperatorSettings(
    vault_address="https://vault.vault.svc:8200",
    # what the samples' comments tell an installation to allow
    tenancy=TenancyPolicy(allowed_endpoints=("exchange-sim.tradebot-system.svc",)),
)


def sample_files() -> list[Path]:
    kustomization = yaml.safe_load((SAMPLES / "kustomization.yaml").read_text())
    return [SAMPLES / name for name in kustomization["resources"]]


def all_objects() -> list[dict[str, Any]]:
    return [doc for path in sample_files() for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_kustomization_lists_every_sample_file() -> None:
    on_disk = {p for p in SAMPLES.rglob("*.yaml") if p.name != "kustomization.yaml"}
    assert set(sample_files()) == on_disk


def test_names_are_unique_per_kind() -> None:
    keys = [(o["kind"], o["metadata"]["name"]) for o in all_objects()]
    assert len(keys) == len(set(keys))
    assert all("namespace" not in o["metadata"] for o in all_objects()), "apply with -n"


def test_every_built_in_strategy_has_a_sample() -> None:
    types = {o["spec"]["type"] for o in all_objects() if o["kind"] == "Strategy"}
    assert types >= BUILT_INS


def test_the_promised_bots_exist() -> None:
    bots = {o["metadata"]["name"]: o for o in all_objects() if o["kind"] == "TradingBot"}
    accounts = {o["metadata"]["name"]: o for o in all_objects() if o["kind"] == "ExchangeAccount"}
    modes = {accounts[b["spec"]["exchanges"][0]["account"]]["spec"]["mode"] for b in bots.values()}
    assert {"paper", "sandbox"} <= modes
    assert any(b["spec"].get("autoscaling", {}).get("enabled") for b in bots.values())
    assert any(e.get("shards", 1) > 1 for b in bots.values() for e in b["spec"]["exchanges"])
    sandbox = [a for a in accounts.values() if a["spec"]["mode"] == "sandbox"]
    assert all("vault" in a["spec"]["credentials"] for a in sandbox)


@pytest.mark.parametrize(
    "obj",
    [pytest.param(o, id=f"{o['kind']}-{o['metadata']['name']}") for o in all_objects()],
)
def test_sample_passes_operator_validation(obj: dict[str, Any]) -> None:
    objects = all_objects()
    metadata = {**obj["metadata"], "namespace": "trading"}
    body = {**obj, "metadata": metadata}
    if obj["kind"] == "ExchangeAccount":
        account = ExchangeAccount.model_validate(body)
        tenant = tenant_of("trading", SETTINGS.tenancy, SETTINGS.runtime_image)
        assert errors(validate_account(account, tenant)) == []
    elif obj["kind"] == "Strategy":
        assert errors(validate_strategy(Strategy.model_validate(body))) == []
    else:
        bot = TradingBot.model_validate(body)
        (strategy,) = [
            Strategy.model_validate({**o, "metadata": {**o["metadata"], "namespace": "trading"}})
            for o in objects
            if o["kind"] == "Strategy" and o["metadata"]["name"] == bot.spec.strategy_ref.name
        ]
        accounts = {
            o["metadata"]["name"]: ExchangeAccount.model_validate(
                {**o, "metadata": {**o["metadata"], "namespace": "trading"}}
            )
            for o in objects
            if o["kind"] == "ExchangeAccount"
        }
        assert errors(validate_bot(bot, strategy, accounts, SETTINGS)) == []
