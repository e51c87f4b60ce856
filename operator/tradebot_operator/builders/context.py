"""Everything the per-exchange builders need, computed once per bot x account."""

from __future__ import annotations

from dataclasses import dataclass

from tradebot_contracts.names import exchange_object_name, runtime_labels, runtime_selector
from tradebot_contracts.runtime_config import RuntimeConfig
from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.api.strategy import Strategy
from tradebot_operator.api.trading_bot import BotExchange, TradingBot
from tradebot_operator.settings import OperatorSettings


@dataclass(frozen=True)
class ExchangeContext:
    bot: TradingBot
    strategy: Strategy
    account: ExchangeAccount
    exchange: BotExchange
    settings: OperatorSettings
    config: RuntimeConfig

    @property
    def name(self) -> str:
        """Name of the Deployment, ConfigMap, PDB and HPA."""
        return exchange_object_name(self.bot.metadata.name, self.account.metadata.name)

    @property
    def labels(self) -> dict[str, str]:
        return runtime_labels(self.bot.metadata.name, self.account.metadata.name)

    @property
    def selector(self) -> dict[str, str]:
        return runtime_selector(self.bot.metadata.name, self.account.metadata.name)

    @property
    def suspended(self) -> bool:
        return self.bot.spec.suspend

    @property
    def autoscaled(self) -> bool:
        autoscaling = self.bot.spec.autoscaling
        return autoscaling is not None and autoscaling.enabled and not self.suspended

    @property
    def min_pods(self) -> int:
        """Fewest pods the Deployment runs while not suspended."""
        autoscaling = self.bot.spec.autoscaling
        if self.autoscaled and autoscaling is not None:
            return autoscaling.min_replicas
        return self.bot.spec.replicas
