"""Operator API models of one paper bot, its sma Strategy and its paper ExchangeAccount, for
tests that call the builders and services directly (no API server)."""

from __future__ import annotations

from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.api.strategy import Strategy
from tradebot_operator.api.trading_bot import TradingBot


def paper_models(
    ns: str = "prod", bot: str = "alpha", account: str = "paper"
) -> tuple[TradingBot, Strategy, ExchangeAccount]:
    exchange_account = ExchangeAccount.model_validate({
        "metadata": {"name": account, "namespace": ns, "generation": 1},
        "spec": {"exchange": "binance", "mode": "paper"},
    })  # fmt: skip
    strategy = Strategy.model_validate({
        "metadata": {"name": "sma", "namespace": ns},
        "spec": {"type": "sma-crossover", "timeframe": "1m",
                 "parameters": {"fast": 5, "slow": 20}},
    })  # fmt: skip
    trading_bot = TradingBot.model_validate({
        "metadata": {"name": bot, "namespace": ns},
        "spec": {
            "strategyRef": {"name": "sma"}, "mode": "paper",
            "exchanges": [{"account": account, "symbols": ["BTC/USDT"],
                           "allocation": {"quote": "USDT", "amount": "100"}}],
            "risk": {"maxPositionNotional": "500", "maxOrderNotional": "50",
                     "maxDailyLoss": "20", "maxOrdersPerMinute": 10, "priceBandPercent": "5"},
        },
    })  # fmt: skip
    return trading_bot, strategy, exchange_account
