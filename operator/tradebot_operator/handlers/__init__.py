"""kopf registrations, and nothing else: each handler hands what kopf saw to a controller
through the OperatorContext on kopf's memo (handlers/context.py).

Importing this package registers every handler: ``kopf run -m tradebot_operator.handlers``
(and ``python -m tradebot_operator``, which imports it).

- lifecycle: start-up (kopf settings, the OperatorContext) and clean-up
- indexes: the in-memory indexes the controllers read bodies from
- tradingbot: TradingBot and Lease events -> controllers.tradingbot
- references: Strategy and ExchangeAccount events and timers -> controllers.references
"""

from tradebot_operator.handlers import indexes, lifecycle, references, tradingbot

__all__ = ["indexes", "lifecycle", "references", "tradingbot"]
