"""Per-kind CRD facts (names, printer columns, models) that crdgen and the operator share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from tradebot_contracts.base import CamelModel
from tradebot_operator.api.common import CATEGORY, GROUP, VERSION
from tradebot_operator.api.exchange_account import (
    ExchangeAccount,
    ExchangeAccountSpec,
    ExchangeAccountStatus,
)
from tradebot_operator.api.strategy import Strategy, StrategySpec, StrategyStatus
from tradebot_operator.api.trading_bot import TradingBot, TradingBotSpec, TradingBotStatus


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str
    priority: int = 0
    format: str | None = None


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    resource_model: type[CamelModel]
    spec_model: type[CamelModel]
    status_model: type[CamelModel]
    printer_columns: tuple[PrinterColumn, ...]
    categories: tuple[str, ...] = field(default=(CATEGORY,))

    @property
    def group(self) -> str:
        return GROUP

    @property
    def version(self) -> str:
        return VERSION

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


def _condition(type_: str, attribute: str = "status") -> str:
    return f'.status.conditions[?(@.type=="{type_}")].{attribute}'


AGE = PrinterColumn(
    "Age",
    "date",
    ".metadata.creationTimestamp",
    "Time since the object was created.",
)

EXCHANGE_ACCOUNT: Final = KindInfo(
    kind="ExchangeAccount",
    plural="exchangeaccounts",
    singular="exchangeaccount",
    short_names=("xa",),
    resource_model=ExchangeAccount,
    spec_model=ExchangeAccountSpec,
    status_model=ExchangeAccountStatus,
    printer_columns=(
        PrinterColumn("Exchange", "string", ".spec.exchange", "ccxt exchange id."),
        PrinterColumn("Market", "string", ".spec.marketType", "spot, swap or future."),
        PrinterColumn("Mode", "string", ".spec.mode", "paper, sandbox or live."),
        PrinterColumn("State", "string", ".spec.tradingState", "Kill switch state."),
        PrinterColumn("Ready", "string", _condition("Ready"), "Ready condition."),
        AGE,
        PrinterColumn(
            "Credentials",
            "string",
            _condition("CredentialsReady"),
            "CredentialsReady condition.",
            priority=1,
        ),
        PrinterColumn(
            "Reason", "string", _condition("Ready", "reason"), "Reason of Ready.", priority=1
        ),
    ),
)

STRATEGY: Final = KindInfo(
    kind="Strategy",
    plural="strategies",
    singular="strategy",
    short_names=("strat",),
    resource_model=Strategy,
    spec_model=StrategySpec,
    status_model=StrategyStatus,
    printer_columns=(
        PrinterColumn("Type", "string", ".spec.type", "Strategy type."),
        PrinterColumn("Timeframe", "string", ".spec.timeframe", "Candle timeframe."),
        PrinterColumn("Valid", "string", _condition("Valid"), "Whether the parameters fit."),
        AGE,
        PrinterColumn(
            "Reason", "string", _condition("Valid", "message"), "Why not valid.", priority=1
        ),
    ),
)

TRADING_BOT: Final = KindInfo(
    kind="TradingBot",
    plural="tradingbots",
    singular="tradingbot",
    short_names=("tb",),
    resource_model=TradingBot,
    spec_model=TradingBotSpec,
    status_model=TradingBotStatus,
    printer_columns=(
        PrinterColumn("Strategy", "string", ".spec.strategyRef.name", "Strategy the bot runs."),
        PrinterColumn("Mode", "string", ".spec.mode", "paper or live."),
        PrinterColumn(
            "Exchanges", "string", ".status.summary.exchangesReady", "Ready / all exchanges."
        ),
        PrinterColumn("Phase", "string", ".status.phase", "Lifecycle phase."),
        PrinterColumn("Ready", "string", _condition("Ready"), "Ready condition."),
        PrinterColumn("PnL", "string", ".status.summary.pnl", "Profit and loss with its currency."),
        AGE,
        PrinterColumn("Leader", "string", ".status.summary.leader", "Leader pod(s).", priority=1),
        PrinterColumn("Reason", "string", ".status.summary.reason", "Reason of Ready.", priority=1),
    ),
)

KINDS: Final[tuple[KindInfo, ...]] = (EXCHANGE_ACCOUNT, STRATEGY, TRADING_BOT)
