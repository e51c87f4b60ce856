"""Parameter models of the built-in strategy types: the contract between a Strategy's
free-form ``spec.parameters`` and the runtime's strategy implementations.

The CRD keeps ``parameters`` free-form (one CRD, many strategy types); the operator
validates it here and reports the exact bad field in the Strategy's ``Valid`` condition,
and the runtime parses the same models, so both sides agree by construction.

Field names are snake_case in Python and camelCase in YAML/JSON. Unknown keys are errors:
the API server cannot prune typos inside a free-form object, so we must catch them. Whole
numbers are strict (``Field(strict=True)``): ``"5"``, ``true`` or ``5.0`` for a period is a
mistake to report, not a value to convert; money and prices are decimal strings (an
integer is exact and accepted too; a float or a bool is refused, see types.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from tradebot_contracts.base import camel
from tradebot_contracts.types import PercentString, PositiveDecimalString

StrategyType = Literal["sma-crossover", "rsi-reversion", "grid", "dca", "python"]
STRATEGY_TYPES: Final[tuple[str, ...]] = ("sma-crossover", "rsi-reversion", "grid", "dca", "python")

PYTHON_MODULE_PATTERN: Final = (
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
)
"""``package.module:ClassName``."""

DURATION_PATTERN: Final = r"^[1-9][0-9]{0,5}(m|h|d|w)$"
"""A whole number of minutes, hours, days or weeks, e.g. ``30m``, ``4h``, ``1d``."""

_DURATION_UNIT_SECONDS: Final = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(duration: str) -> int:
    """Seconds in a DURATION_PATTERN string (``"4h"`` -> 14400)."""
    if not re.match(DURATION_PATTERN, duration):
        raise ValueError(f"not a duration: {duration!r}")
    return int(duration[:-1]) * _DURATION_UNIT_SECONDS[duration[-1]]


class StrategyParams(BaseModel):
    """Base of every parameter model: camelCase aliases, unknown keys forbidden, immutable."""

    model_config = ConfigDict(
        alias_generator=camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


class SmaCrossoverParams(StrategyParams):
    """Buy when the fast simple moving average crosses above the slow one, sell on the
    opposite cross."""

    fast_period: int = Field(strict=True, ge=1, le=1000)
    """Number of candles in the fast moving average."""
    slow_period: int = Field(strict=True, ge=2, le=5000)
    """Number of candles in the slow moving average; greater than fastPeriod."""
    order_size: PositiveDecimalString
    """Notional of each order in the allocation's quote currency (e.g. USDT), as a decimal
    string."""

    @field_validator("slow_period")
    @classmethod
    def _slow_after_fast(cls, slow: int, info: ValidationInfo) -> int:
        fast = info.data.get("fast_period")
        if fast is not None and slow <= fast:
            raise ValueError(f"must be greater than fastPeriod ({fast})")
        return slow


class RsiReversionParams(StrategyParams):
    """Buy when the relative strength index falls below ``oversold``, sell when it rises
    above ``overbought``."""

    period: int = Field(default=14, strict=True, ge=2, le=500)
    """Number of candles in the RSI window."""
    oversold: PercentString = Decimal(30)
    """RSI level (0-100) below which the market counts as oversold (buy signal)."""
    overbought: PercentString = Field(default=Decimal(70), validate_default=True)
    """RSI level (0-100) above which the market counts as overbought (sell signal);
    greater than oversold."""
    order_size: PositiveDecimalString
    """Notional of each order in the allocation's quote currency, as a decimal string."""

    @field_validator("overbought")
    @classmethod
    def _overbought_above_oversold(cls, overbought: Any, info: ValidationInfo) -> Any:
        oversold = info.data.get("oversold")
        if oversold is not None and overbought <= oversold:
            raise ValueError(f"must be greater than oversold ({oversold})")
        return overbought


class GridParams(StrategyParams):
    """Place buy and sell limit orders on evenly spaced price levels between ``lower`` and
    ``upper`` and re-arm each level when it fills."""

    lower: PositiveDecimalString
    """Lowest grid price in the quote currency, as a decimal string."""
    upper: PositiveDecimalString
    """Highest grid price in the quote currency, as a decimal string; greater than lower."""
    levels: int = Field(strict=True, ge=2, le=200)
    """Number of price levels, including lower and upper."""
    order_size: PositiveDecimalString
    """Notional of the order on each level in the quote currency, as a decimal string."""

    @field_validator("upper")
    @classmethod
    def _upper_above_lower(cls, upper: Any, info: ValidationInfo) -> Any:
        lower = info.data.get("lower")
        if lower is not None and upper <= lower:
            raise ValueError(f"must be greater than lower ({lower})")
        return upper


class DcaParams(StrategyParams):
    """Dollar-cost averaging: buy a fixed quote amount every ``interval``."""

    interval: str = Field(pattern=DURATION_PATTERN, max_length=8)
    """Time between buys: a whole number of minutes, hours, days or weeks (``30m``,
    ``4h``, ``1d``, ``1w``)."""
    amount: PositiveDecimalString
    """Quote-currency amount spent on each buy, as a decimal string."""
    max_orders: int | None = Field(default=None, strict=True, ge=1, le=100_000)
    """Stop after this many buys; unset means no limit."""

    @property
    def interval_seconds(self) -> int:
        return duration_seconds(self.interval)


class PythonStrategyParams(StrategyParams):
    """A user strategy class loaded from ``module`` (in ``image``); ``parameters`` is passed
    to it unchanged and validated by the class itself."""

    module: str = Field(pattern=PYTHON_MODULE_PATTERN, max_length=256)
    """Import path and class name: ``package.module:ClassName``."""
    image: str = Field(min_length=1, max_length=512)
    """Container image that contains the module (and the tradebot runtime)."""
    parameters: dict[str, Any] = Field(default_factory=dict)
    """Free-form parameters handed to the class."""


PARAMETER_MODELS: Final[dict[str, type[StrategyParams]]] = {
    "sma-crossover": SmaCrossoverParams,
    "rsi-reversion": RsiReversionParams,
    "grid": GridParams,
    "dca": DcaParams,
    "python": PythonStrategyParams,
}


@dataclass(frozen=True)
class ParameterProblem:
    """One bad field: the full path from the object root (``spec.parameters.slowPeriod``)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class StrategyParametersError(ValueError):
    """Strategy parameters do not fit the type's model; ``problems`` names every bad field."""

    def __init__(self, problems: list[ParameterProblem]) -> None:
        self.problems: tuple[ParameterProblem, ...] = tuple(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))

    @property
    def field(self) -> str:
        """Path of the first bad field."""
        return self.problems[0].field


def _join_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _json_kind(value: Any) -> str:
    """How a value was written in YAML/JSON, for an error message."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, float):
        return f"the decimal number {value!r}"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] == "missing":
        return "required field is missing"
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "int_type":
        return f"must be a whole number (such as 5), not {_json_kind(error.get('input'))}"
    message = str(error["msg"])
    # pydantic prefixes the text of a ValueError raised by a validator.
    return message.removeprefix("Value error, ")


def _problems(
    exc: ValidationError, prefix_for: Mapping[str, str], default_prefix: str
) -> list[ParameterProblem]:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        head = str(loc[0]) if loc else ""
        if head in prefix_for:
            path = _join_path(prefix_for[head], loc[1:])
        else:
            path = _join_path(default_prefix, loc)
        problems.append(ParameterProblem(path, _message(error)))
    return problems


def validate_parameters(
    strategy_type: str,
    parameters: Mapping[str, Any] | None,
    *,
    python: Mapping[str, Any] | None = None,
    path: str = "spec.parameters",
    python_path: str = "spec.python",
) -> StrategyParams:
    """Parse ``parameters`` with the model of ``strategy_type``.

    ``python`` is the Strategy's ``spec.python`` block (``module``, ``image``), used only for
    type ``python``. Raises StrategyParametersError whose problems carry exact field paths,
    e.g. ``spec.parameters.slowPeriod: must be greater than fastPeriod (10)``.
    """
    model = PARAMETER_MODELS.get(strategy_type)
    if model is None:
        raise StrategyParametersError(
            [
                ParameterProblem(
                    "spec.type",
                    f"unknown strategy type {strategy_type!r}; expected one of "
                    + ", ".join(STRATEGY_TYPES),
                )
            ]
        )
    if parameters is not None and not isinstance(parameters, Mapping):
        raise StrategyParametersError([ParameterProblem(path, "must be an object")])
    params = dict(parameters or {})
    try:
        if model is PythonStrategyParams:
            if python is None:
                raise StrategyParametersError(
                    [ParameterProblem(python_path, "required when type is python")]
                )
            return model.model_validate({**dict(python), "parameters": params})
        return model.model_validate(params)
    except ValidationError as exc:
        if model is PythonStrategyParams:
            problems = _problems(exc, {"parameters": path}, python_path)
        else:
            problems = _problems(exc, {}, path)
        raise StrategyParametersError(problems) from exc
