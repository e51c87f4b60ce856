"""exchange_sim: a local fake Binance spot exchange for tests and the demo.

Speaks Binance's REST and WebSocket wire format so that stock ccxt classes work against
it; see README.md for the CLI, the admin API and the ccxt override convention.
"""

from .config import AccountSpec, Limits, SimConfig, SymbolSpec
from .server import Simulator

__all__ = ["AccountSpec", "Limits", "SimConfig", "Simulator", "SymbolSpec"]
