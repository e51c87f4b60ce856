"""Strategy type -> implementation, and the loader for ``python`` plugin strategies.

Built-ins are constructed as ``Class(params_model, symbols)``; a plugin class named by
``module: pkg.mod:Class`` is constructed as ``Class(parameters_dict, symbols)`` and must
provide the Strategy methods (subclassing BaseStrategy is the easy way).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from tradebot_contracts.runtime_config import StrategyConfig
from tradebot_contracts.strategies import (
    PYTHON_MODULE_PATTERN,
    PythonStrategyParams,
    validate_parameters,
)
from tradebot_runtime.strategies.base import REQUIRED_METHODS, Strategy
from tradebot_runtime.strategies.dca import Dca
from tradebot_runtime.strategies.grid import Grid
from tradebot_runtime.strategies.rsi_reversion import RsiReversion
from tradebot_runtime.strategies.sma_crossover import SmaCrossover

StrategyFactory = Callable[[Any, Sequence[str]], Strategy]

BUILTIN_STRATEGIES: Final[Mapping[str, StrategyFactory]] = {
    "sma-crossover": SmaCrossover,
    "rsi-reversion": RsiReversion,
    "grid": Grid,
    "dca": Dca,
}


class StrategyLoadError(ImportError):
    """A plugin strategy could not be loaded; the message says exactly why."""


def load_strategy_class(reference: str) -> type[Any]:
    """Import ``pkg.mod:Class`` and check that it implements the Strategy protocol."""
    if not re.fullmatch(PYTHON_MODULE_PATTERN, reference):
        raise StrategyLoadError(
            f"strategy module {reference!r} must look like package.module:ClassName"
        )
    module_name, class_name = reference.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StrategyLoadError(
            f"cannot import module {module_name!r} for strategy {reference!r}: {exc}"
        ) from exc
    except Exception as exc:  # the plugin's own import-time code failed
        raise StrategyLoadError(
            f"importing module {module_name!r} for strategy {reference!r} raised "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    candidate = getattr(module, class_name, None)
    if candidate is None:
        raise StrategyLoadError(f"module {module_name!r} has no attribute {class_name!r}")
    if not inspect.isclass(candidate):
        raise StrategyLoadError(f"{reference!r} is a {type(candidate).__name__}, not a class")
    missing = [name for name in REQUIRED_METHODS if not callable(getattr(candidate, name, None))]
    if missing:
        raise StrategyLoadError(
            f"class {reference!r} does not implement the Strategy protocol: missing "
            + ", ".join(missing)
            + " (subclass tradebot_runtime.strategies.BaseStrategy to get defaults)"
        )
    return candidate


def create_strategy(config: StrategyConfig, symbols: Sequence[str]) -> Strategy:
    """Build the strategy a runtime ConfigMap describes (parameters validated with the
    shared models; raises StrategyParametersError or StrategyLoadError)."""
    python = config.python.model_dump() if config.python is not None else None
    params = validate_parameters(config.type, config.parameters, python=python)
    if isinstance(params, PythonStrategyParams):
        strategy_class = load_strategy_class(params.module)
        try:
            instance = strategy_class(dict(params.parameters), tuple(symbols))
        except Exception as exc:
            raise StrategyLoadError(
                f"constructing {params.module!r} raised {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(instance, Strategy):
            raise StrategyLoadError(f"{params.module!r} instance does not implement Strategy")
        return instance
    factory = BUILTIN_STRATEGIES.get(config.type)
    if factory is None:  # pragma: no cover - validate_parameters rejects unknown types first
        raise StrategyLoadError(f"no implementation for strategy type {config.type!r}")
    return factory(params, tuple(symbols))
