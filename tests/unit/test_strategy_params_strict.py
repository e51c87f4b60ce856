"""Whole-number strategy parameters are strict: ``"5"``, ``true`` or ``5.0`` for a period is
reported on its exact field instead of being converted; decimal strings stay strings (an
exact integer is fine too); every sample Strategy still validates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tradebot_contracts.strategies import (
    StrategyParametersError,
    validate_parameters,
)

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted(
    [*(REPO / "manifests" / "samples").rglob("*.yaml"),
     *(REPO / "tools" / "devenv" / "devenv" / "samples").glob("*.yaml")]
)  # fmt: skip

VALID: dict[str, dict[str, Any]] = {
    "sma-crossover": {"fastPeriod": 5, "slowPeriod": 20, "orderSize": "10"},
    "rsi-reversion": {"period": 14, "orderSize": "10"},
    "grid": {"lower": "100", "upper": "120", "levels": 5, "orderSize": "1"},
    "dca": {"interval": "1d", "amount": "25", "maxOrders": 5},
}
# every whole-number field of every built-in model, with a valid value
INT_FIELDS = [
    ("sma-crossover", "fastPeriod", 5),
    ("sma-crossover", "slowPeriod", 20),
    ("rsi-reversion", "period", 14),
    ("grid", "levels", 5),
    ("dca", "maxOrders", 5),
]
NOT_WHOLE_NUMBERS = [
    ("5", "the string '5'"),
    (True, "the boolean true"),
    (False, "the boolean false"),
    (5.0, "the decimal number 5.0"),
]


@pytest.mark.parametrize(("strategy_type", "name", "good"), INT_FIELDS)
@pytest.mark.parametrize(("bad", "told"), NOT_WHOLE_NUMBERS, ids=["str", "true", "false", "float"])
def test_whole_number_fields_refuse_strings_booleans_and_floats(
    strategy_type: str, name: str, good: int, bad: Any, told: str
) -> None:
    params = {**VALID[strategy_type], name: good}
    assert validate_parameters(strategy_type, params)  # the valid value passes
    with pytest.raises(StrategyParametersError) as caught:
        validate_parameters(strategy_type, {**params, name: bad})
    assert [p.field for p in caught.value.problems] == [f"spec.parameters.{name}"]
    assert caught.value.problems[0].message == f"must be a whole number (such as 5), not {told}"


def test_the_parsed_value_is_the_integer_given() -> None:
    parsed = validate_parameters("sma-crossover", VALID["sma-crossover"])
    assert type(parsed.fast_period) is int and parsed.fast_period == 5  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("strategy_type", "name"),
    [("sma-crossover", "orderSize"), ("rsi-reversion", "oversold"), ("grid", "lower"),
     ("dca", "amount")],
)  # fmt: skip
def test_decimal_fields_take_decimal_strings_and_exact_integers_only(
    strategy_type: str, name: str
) -> None:
    base = {**VALID[strategy_type]}
    if strategy_type == "grid":
        base["upper"] = "1000"
    for good in ("5", "5.25", 5):
        validate_parameters(strategy_type, {**base, name: good})
    for bad in (True, 5.5, "1e3"):
        with pytest.raises(StrategyParametersError) as caught:
            validate_parameters(strategy_type, {**base, name: bad})
        assert caught.value.field == f"spec.parameters.{name}"


def test_a_non_integer_interval_is_refused_on_its_field() -> None:
    with pytest.raises(StrategyParametersError) as caught:
        validate_parameters("dca", {"interval": 5, "amount": "1"})
    assert caught.value.field == "spec.parameters.interval"


def test_every_sample_strategy_still_validates() -> None:
    checked = []
    for sample in SAMPLES:
        for doc in yaml.safe_load_all(sample.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Strategy":
                spec = doc["spec"]
                python = spec.get("python")
                validate_parameters(spec["type"], spec.get("parameters"), python=python)
                checked.append(f"{sample.name}:{doc['metadata']['name']}")
    assert len(checked) >= 6, checked  # the four under strategies/ and those beside bots
