"""RuntimeConfig contract: round trip, config_version covers exactly the roll-relevant
fields, effective trading state."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from builder_inputs import load_case

from tradebot_contracts.runtime_config import (
    CONFIG_KEY,
    LIVE_FIELDS,
    DeleteRequest,
    RuntimeConfig,
    compute_config_version,
)
from tradebot_contracts.types import stricter_trading_state
from tradebot_operator.builders import exchange_contexts


def config(case: str = "sharded-two-exchanges-hpa", index: int = 0) -> RuntimeConfig:
    c = load_case(case)
    return exchange_contexts(c.bot, c.strategy, c.accounts, c.settings)[index].config


def test_config_key_is_a_json_file_name() -> None:
    assert CONFIG_KEY == "runtime.json"


def test_round_trip_through_json() -> None:
    original = config()
    text = original.dumps()
    assert json.loads(text)["schemaVersion"] == 1
    assert RuntimeConfig.loads(text) == original


def test_load_from_file(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "runtime.json"  # type: ignore[operator]
    path.write_text(config().dumps())
    assert RuntimeConfig.load(path) == config()


def test_decimals_are_strings_on_the_wire() -> None:
    payload = json.loads(config().dumps())
    assert payload["risk"]["maxDrawdownPercent"] == "12.5"
    assert payload["allocation"]["amount"] == "25000.50"
    assert RuntimeConfig.loads(config().dumps()).allocation.amount == Decimal("25000.50")


def test_live_fields_do_not_change_the_version() -> None:
    base = config()
    changed = base.model_copy(
        update={
            "risk": base.risk.model_copy(update={"max_daily_loss": Decimal(1)}),
            "trading_state": "Halted",
            "bot_trading_state": "Halted",
            "delete_request": DeleteRequest(id="d1", action="flatten"),
            "on_delete": "leave",
        }
    )
    assert compute_config_version(changed) == base.config_version


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("symbols", ["BTC/USDT"]),
        ("endpoint", "https://example.com"),
        ("exchange", "kraken"),
        ("lease_duration_seconds", 10),
    ],
)
def test_roll_fields_change_the_version(field: str, value: object) -> None:
    base = config()
    assert compute_config_version(base.model_copy(update={field: value})) != base.config_version


def test_strategy_parameters_change_the_version() -> None:
    base = config()
    strategy = base.strategy.model_copy(update={"parameters": {"period": 21}})
    assert (
        compute_config_version(base.model_copy(update={"strategy": strategy}))
        != base.config_version
    )


def test_live_fields_name_real_fields() -> None:
    assert set(LIVE_FIELDS) <= set(RuntimeConfig.model_fields)


def test_effective_state_is_the_stricter_one() -> None:
    binance = config(index=0)  # account ReduceOnly, bot Active
    assert (binance.bot_trading_state, binance.account_trading_state) == ("Active", "ReduceOnly")
    assert binance.trading_state == "ReduceOnly"
    assert stricter_trading_state("Halted", "ReduceOnly") == "Halted"
    assert stricter_trading_state("Active", "Active") == "Active"
    assert stricter_trading_state() == "Active"


def test_no_secret_values_in_config() -> None:
    text = config().dumps()
    # the config says where credentials are, never what they are
    assert "api_key" in text  # the key *name* inside the Vault secret
    for forbidden in ('password":"', 'token":"'):
        assert forbidden not in text


def test_paper_bot_gets_no_credentials() -> None:
    assert config("paper-two-symbols").credentials.source == "none"


def test_unknown_fields_from_a_newer_operator_are_ignored() -> None:
    payload = json.loads(config().dumps())
    payload["someFutureField"] = {"x": 1}
    assert RuntimeConfig.model_validate(payload).bot == "majors"


def test_budget_share() -> None:
    assert config().budget_share(4) == Decimal(300)
    assert config().budget_share(0) == Decimal(1200)
