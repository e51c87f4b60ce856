"""Pure builders: TradingBot (+ Strategy, ExchangeAccounts, settings) -> child manifests.

No API calls and no kopf here: the controllers compute ``desired(...)`` and a separate apply
step sends it with server-side apply.
"""

from tradebot_operator.builders.desired import KIND_ORDER, desired, exchange_contexts
from tradebot_operator.builders.meta import BuildError, Manifest, owner_reference
from tradebot_operator.builders.runtime_config import build_runtime_config

__all__ = [
    "KIND_ORDER",
    "BuildError",
    "Manifest",
    "build_runtime_config",
    "desired",
    "exchange_contexts",
    "owner_reference",
]
