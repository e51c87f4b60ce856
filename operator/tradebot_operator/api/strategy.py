"""Strategy: what a bot trades on (type, timeframe, parameters); reusable by many bots."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import ConfigDict, Field

from tradebot_contracts.base import CamelModel
from tradebot_contracts.strategies import PYTHON_MODULE_PATTERN, StrategyType
from tradebot_operator.api.common import (
    API_VERSION,
    Condition,
    ObjectMeta,
    UsedByName,
    conditions_field,
    used_by_field,
)
from tradebot_operator.api.schema import cel, validations

TIMEFRAME_PATTERN: Final = r"^[1-9][0-9]{0,2}(s|m|h|d|w|M)$"
"""ccxt timeframe notation: 1m, 5m, 15m, 1h, 4h, 1d, 1w, 1M."""
MAX_PARAMETERS: Final = 64


class PythonStrategySpec(CamelModel):
    """A user-supplied strategy class."""

    module: str = Field(max_length=256, pattern=PYTHON_MODULE_PATTERN)
    """Import path and class name: package.module:ClassName."""
    image: str = Field(min_length=1, max_length=512)
    """Container image that holds the module and the tradebot runtime; used as the runtime
    image of every bot with this strategy."""


class StrategySpec(CamelModel):
    """Desired state of a Strategy."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.type != 'python' || has(self.python)",
                "python is required when type is python",
                field_path=".python",
                reason="FieldValueRequired",
            ),
            cel(
                "self.type == 'python' || !has(self.python)",
                "python is only allowed when type is python",
                field_path=".python",
                reason="FieldValueForbidden",
            ),
        )
    )

    type: StrategyType
    """Strategy type: sma-crossover, rsi-reversion, grid, dca, or python (a user class)."""
    timeframe: str = Field(default="1m", max_length=5, pattern=TIMEFRAME_PATTERN)
    """Candle timeframe in ccxt notation: 1m, 5m, 15m, 1h, 4h, 1d, ..."""
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        json_schema_extra={
            "type": "object",
            "maxProperties": MAX_PARAMETERS,
            "x-kubernetes-preserve-unknown-fields": True,
        },
    )
    """Parameters of the type; validated by the operator (condition Valid names the bad
    field). sma-crossover: fastPeriod, slowPeriod, orderSize. rsi-reversion: period,
    oversold, overbought, orderSize. grid: lower, upper, levels, orderSize. dca: interval,
    amount, maxOrders. python: anything the class accepts."""
    python: PythonStrategySpec | None = None
    """Module and image of a python strategy; required iff type is python."""


class StrategyStatus(CamelModel):
    """Observed state of a Strategy."""

    observed_generation: int | None = Field(default=None, ge=0)
    """metadata.generation the status was computed from."""
    conditions: list[Condition] = conditions_field(
        "Valid: whether the parameters fit the type; the message names the exact field. "
        "Deletable (while a deletion waits): False, reason InUse, while TradingBots use it."
    )
    used_by: list[UsedByName] = used_by_field()


class Strategy(CamelModel):
    """A trading strategy (built-in type or user python class) with its parameters; any
    number of TradingBots may use it."""

    api_version: str = API_VERSION
    kind: Literal["Strategy"] = "Strategy"
    metadata: ObjectMeta
    spec: StrategySpec
    status: StrategyStatus | None = None
