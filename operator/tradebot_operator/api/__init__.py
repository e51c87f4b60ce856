"""tradebot.io/v1alpha1 API: the pydantic models are the single source of truth for the
CRDs and for the contracts shared with the runtime. No kopf imports here: the runtime
imports this package."""

from tradebot_contracts.types import TradingState, stricter_trading_state
from tradebot_operator.api.common import (
    API_VERSION,
    CATEGORY,
    GROUP,
    VERSION,
    Condition,
    LocalObjectReference,
    ObjectMeta,
)
from tradebot_operator.api.exchange_account import (
    CredentialKeys,
    Credentials,
    ExchangeAccount,
    ExchangeAccountSpec,
    ExchangeAccountStatus,
    RateLimit,
    SecretRefCredentials,
    VaultCredentials,
)
from tradebot_operator.api.kinds import EXCHANGE_ACCOUNT, KINDS, STRATEGY, TRADING_BOT, KindInfo
from tradebot_operator.api.strategy import (
    PythonStrategySpec,
    Strategy,
    StrategySpec,
    StrategyStatus,
)
from tradebot_operator.api.trading_bot import (
    Allocation,
    Autoscaling,
    BotExchange,
    BotSummary,
    ExchangeStatus,
    Risk,
    RuntimeSpec,
    TradingBot,
    TradingBotSpec,
    TradingBotStatus,
)

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "EXCHANGE_ACCOUNT",
    "GROUP",
    "KINDS",
    "STRATEGY",
    "TRADING_BOT",
    "VERSION",
    "Allocation",
    "Autoscaling",
    "BotExchange",
    "BotSummary",
    "Condition",
    "CredentialKeys",
    "Credentials",
    "ExchangeAccount",
    "ExchangeAccountSpec",
    "ExchangeAccountStatus",
    "ExchangeStatus",
    "KindInfo",
    "LocalObjectReference",
    "ObjectMeta",
    "PythonStrategySpec",
    "RateLimit",
    "Risk",
    "RuntimeSpec",
    "SecretRefCredentials",
    "Strategy",
    "StrategySpec",
    "StrategyStatus",
    "TradingBot",
    "TradingBotSpec",
    "TradingBotStatus",
    "TradingState",
    "VaultCredentials",
    "stricter_trading_state",
]
