"""ServiceAccount of a bot's runtime pods."""

from __future__ import annotations

from tradebot_contracts.names import runtime_labels, runtime_service_account_name
from tradebot_operator.api.trading_bot import TradingBot
from tradebot_operator.builders.meta import Manifest, object_meta


def service_account(bot: TradingBot) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": object_meta(
            bot, runtime_service_account_name(bot.metadata.name), runtime_labels(bot.metadata.name)
        ),
    }
