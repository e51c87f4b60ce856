"""validate_parameters: built-in parameter models and exact field paths in errors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tradebot_contracts.strategies import (
    PARAMETER_MODELS,
    DcaParams,
    GridParams,
    PythonStrategyParams,
    RsiReversionParams,
    SmaCrossoverParams,
    StrategyParametersError,
    duration_seconds,
    validate_parameters,
)

PY = {"module": "desk.momentum:Momentum", "image": "registry.example.com/desk:1"}


def test_every_strategy_type_has_a_model() -> None:
    assert set(PARAMETER_MODELS) == {"sma-crossover", "rsi-reversion", "grid", "dca", "python"}


@pytest.mark.parametrize(
    ("strategy_type", "params", "model"),
    [
        (
            "sma-crossover",
            {"fastPeriod": 5, "slowPeriod": 20, "orderSize": "10.5"},
            SmaCrossoverParams,
        ),
        ("rsi-reversion", {"orderSize": "5"}, RsiReversionParams),
        ("grid", {"lower": "100", "upper": "120", "levels": 5, "orderSize": "1"}, GridParams),
        ("dca", {"interval": "4h", "amount": "25"}, DcaParams),
    ],
)
def test_valid_parameters_parse(strategy_type: str, params: dict[str, Any], model: type) -> None:
    assert isinstance(validate_parameters(strategy_type, params), model)


def test_decimals_are_decimal_and_round_trip_as_strings() -> None:
    parsed = validate_parameters(
        "sma-crossover", {"fastPeriod": 5, "slowPeriod": 20, "orderSize": "0.10"}
    )
    assert isinstance(parsed, SmaCrossoverParams)
    assert parsed.order_size == Decimal("0.10")
    assert parsed.model_dump(mode="json")["orderSize"] == "0.10"


def test_rsi_defaults() -> None:
    parsed = validate_parameters("rsi-reversion", {"orderSize": "5"})
    assert isinstance(parsed, RsiReversionParams)
    assert (parsed.period, parsed.oversold, parsed.overbought) == (14, Decimal(30), Decimal(70))


def test_dca_interval_seconds() -> None:
    parsed = validate_parameters("dca", {"interval": "1w", "amount": "10"})
    assert isinstance(parsed, DcaParams)
    assert parsed.interval_seconds == 7 * 86400
    assert duration_seconds("30m") == 1800


@pytest.mark.parametrize(
    ("strategy_type", "params", "field", "message"),
    [
        (
            "sma-crossover",
            {"fastPeriod": 20, "slowPeriod": 10, "orderSize": "1"},
            "spec.parameters.slowPeriod",
            "must be greater than fastPeriod (20)",
        ),
        (
            "sma-crossover",
            {"fastPeriod": 5, "slowPeriod": 10},
            "spec.parameters.orderSize",
            "required field is missing",
        ),
        (
            "sma-crossover",
            {"fastPeriod": 5, "slowPeriod": 10, "orderSize": 0.1},
            "spec.parameters.orderSize",
            "not a floating-point number",
        ),
        (
            "sma-crossover",
            {"fastPeriod": 5, "slowPeriod": 10, "orderSize": "0"},
            "spec.parameters.orderSize",
            "must be greater than 0",
        ),
        (
            "sma-crossover",
            {"fastPeriod": 5, "slowPeriod": 10, "orderSize": "1", "fast": 3},
            "spec.parameters.fast",
            "unknown field",
        ),
        (
            "sma-crossover",
            {"fastPeriod": 0, "slowPeriod": 10, "orderSize": "1"},
            "spec.parameters.fastPeriod",
            "greater than or equal to 1",
        ),
        (
            "rsi-reversion",
            {"orderSize": "1", "oversold": "80"},
            "spec.parameters.overbought",
            "must be greater than oversold (80)",
        ),
        (
            "rsi-reversion",
            {"orderSize": "1", "overbought": "101"},
            "spec.parameters.overbought",
            "must be at most 100",
        ),
        (
            "grid",
            {"lower": "100", "upper": "90", "levels": 5, "orderSize": "1"},
            "spec.parameters.upper",
            "must be greater than lower (100)",
        ),
        (
            "grid",
            {"lower": "90", "upper": "100", "levels": 1, "orderSize": "1"},
            "spec.parameters.levels",
            "greater than or equal to 2",
        ),
        ("dca", {"interval": "soon", "amount": "1"}, "spec.parameters.interval", "should match"),
        ("dca", {"interval": "1d", "amount": "1e3"}, "spec.parameters.amount", "decimal string"),
        ("unknown", {}, "spec.type", "unknown strategy type 'unknown'"),
        ("python", {}, "spec.python", "required when type is python"),
    ],
)
def test_errors_name_the_exact_field(
    strategy_type: str, params: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(StrategyParametersError) as caught:
        validate_parameters(strategy_type, params)
    fields = [problem.field for problem in caught.value.problems]
    assert field in fields
    problem = caught.value.problems[fields.index(field)]
    assert message in problem.message
    assert f"{field}: " in str(caught.value)


def test_every_bad_field_is_reported() -> None:
    with pytest.raises(StrategyParametersError) as caught:
        validate_parameters("grid", {"lower": "x", "levels": 500, "orderSize": "1"})
    assert {p.field for p in caught.value.problems} == {
        "spec.parameters.lower",
        "spec.parameters.upper",
        "spec.parameters.levels",
    }


def test_python_strategy_keeps_free_form_parameters() -> None:
    parsed = validate_parameters("python", {"lookback": 20, "nested": {"a": [1]}}, python=PY)
    assert isinstance(parsed, PythonStrategyParams)
    assert parsed.module == PY["module"]
    assert parsed.parameters == {"lookback": 20, "nested": {"a": [1]}}


@pytest.mark.parametrize(
    ("python", "field"),
    [
        ({"module": "no_class", "image": "img"}, "spec.python.module"),
        ({"module": "a.b:C", "image": ""}, "spec.python.image"),
        ({"module": "a.b:C"}, "spec.python.image"),
    ],
)
def test_python_block_errors_point_into_spec_python(python: dict[str, str], field: str) -> None:
    with pytest.raises(StrategyParametersError) as caught:
        validate_parameters("python", {}, python=python)
    assert caught.value.field == field


def test_custom_path_prefix() -> None:
    with pytest.raises(StrategyParametersError) as caught:
        validate_parameters("dca", {"amount": "1"}, path="strategy.parameters")
    assert caught.value.field == "strategy.parameters.interval"


def test_models_are_frozen() -> None:
    parsed = validate_parameters("dca", {"interval": "1d", "amount": "1"})
    with pytest.raises(ValueError):
        parsed.amount = Decimal(2)  # type: ignore[misc]
