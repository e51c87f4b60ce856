"""Trading strategies: the protocol, the built-ins and the plugin loader."""

from tradebot_runtime.strategies.base import BaseStrategy, Strategy, StrategyContext, TagStats
from tradebot_runtime.strategies.dca import Dca
from tradebot_runtime.strategies.grid import Grid
from tradebot_runtime.strategies.registry import (
    BUILTIN_STRATEGIES,
    StrategyLoadError,
    create_strategy,
    load_strategy_class,
)
from tradebot_runtime.strategies.rsi_reversion import RsiReversion
from tradebot_runtime.strategies.sma_crossover import SmaCrossover

__all__ = [
    "BUILTIN_STRATEGIES",
    "BaseStrategy",
    "Dca",
    "Grid",
    "RsiReversion",
    "SmaCrossover",
    "Strategy",
    "StrategyContext",
    "StrategyLoadError",
    "TagStats",
    "create_strategy",
    "load_strategy_class",
]
