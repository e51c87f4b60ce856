"""TradingBot: runs one Strategy on one or more ExchangeAccounts under risk limits."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import ConfigDict, Field

from tradebot_contracts.base import CamelModel
from tradebot_contracts.heartbeat import RuntimeState
from tradebot_contracts.runtime_config import BotMode, OnDeleteAction
from tradebot_contracts.types import (
    PercentString,
    PositiveDecimalString,
    SignedDecimalString,
    TradingState,
)
from tradebot_operator.api.common import (
    API_VERSION,
    Condition,
    LocalObjectReference,
    ObjectMeta,
    ObjectName,
    conditions_field,
)
from tradebot_operator.api.schema import PreserveUnknown, Quantity, cel, validations

SYMBOL_PATTERN: Final = r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$"
"""ccxt unified symbol: BASE/QUOTE for spot, BASE/QUOTE:SETTLE for derivatives."""
CURRENCY_PATTERN: Final = r"^[A-Z0-9]{1,20}$"
ENV_NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"
MAX_EXCHANGES: Final = 8
MAX_SYMBOLS: Final = 64
MAX_SHARDS: Final = 64
MAX_REPLICAS: Final = 10
MAX_AUTOSCALING_REPLICAS: Final = 100
RESERVED_ENV_PREFIX: Final = "TRADEBOT_"

Phase = Literal["Pending", "Running", "Degraded", "Halted", "Suspended", "Failed"]
Symbol = Annotated[str, Field(max_length=62, pattern=SYMBOL_PATTERN)]


class Allocation(CamelModel):
    """Capital the bot may use on this account."""

    quote: str = Field(max_length=20, pattern=CURRENCY_PATTERN)
    """Quote currency the amount is in, e.g. USDT."""
    amount: PositiveDecimalString
    """Amount in the quote currency, as a decimal string, e.g. "1000.50"."""


class BotExchange(CamelModel):
    """One exchange account the bot trades on; each gets its own Deployment."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.shards <= size(self.symbols)",
                "shards must not exceed the number of symbols",
                field_path=".shards",
                reason="FieldValueInvalid",
            )
        )
    )

    account: ObjectName
    """Name of an ExchangeAccount in the bot's namespace."""
    symbols: list[Symbol] = Field(
        min_length=1, max_length=MAX_SYMBOLS, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Markets to trade in ccxt notation: BTC/USDT (spot) or BTC/USDT:USDT (perpetual)."""
    shards: int = Field(default=1, ge=1, le=MAX_SHARDS)
    """Number of shards the symbols are split into; each shard has one Lease and is traded
    by exactly one pod at a time. At most the number of symbols."""
    allocation: Allocation
    """Capital for this account."""


class Risk(CamelModel):
    """Limits every order is checked against; applied live without a restart."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "double(self.maxOrderNotional) <= double(self.maxPositionNotional)",
                "maxOrderNotional must not exceed maxPositionNotional",
                field_path=".maxOrderNotional",
                reason="FieldValueInvalid",
            )
        )
    )

    max_position_notional: PositiveDecimalString
    """Largest position per symbol, in the quote currency (decimal string)."""
    max_order_notional: PositiveDecimalString
    """Largest single order, in the quote currency (decimal string)."""
    max_daily_loss: PositiveDecimalString
    """Realized plus unrealized loss per UTC day after which the bot halts (decimal
    string, quote currency)."""
    max_drawdown_percent: PercentString | None = None
    """Drawdown from the equity peak, in percent, after which the bot halts."""
    max_orders_per_minute: int = Field(default=60, ge=1, le=6000)
    """Orders per minute the bot may send on one account."""
    price_band_percent: PercentString = Decimal(5)
    """Limit prices further than this percentage from the last price are rejected."""


class Autoscaling(CamelModel):
    """HorizontalPodAutoscaler for the runtime Deployments; replicas is then ignored.
    Extra pods take over shards, so scaling up only helps with several shards."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.minReplicas <= self.maxReplicas",
                "minReplicas must not exceed maxReplicas",
                field_path=".minReplicas",
                reason="FieldValueInvalid",
            )
        )
    )

    enabled: bool = False
    """Create an HPA for each exchange's Deployment."""
    min_replicas: int = Field(default=1, ge=1, le=MAX_AUTOSCALING_REPLICAS)
    """Lower bound of pods per exchange."""
    max_replicas: int = Field(default=4, ge=1, le=MAX_AUTOSCALING_REPLICAS)
    """Upper bound of pods per exchange."""
    target_cpu_utilization_percentage: int = Field(
        default=80, ge=1, le=100, alias="targetCPUUtilizationPercentage"
    )
    """Average CPU utilization (percent of requests) the HPA aims for."""


class EnvVar(CamelModel):
    """A plain environment variable. Credentials never go here: they come from the
    account's credentials source."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                f"!self.name.startsWith('{RESERVED_ENV_PREFIX}')",
                f"env names starting with {RESERVED_ENV_PREFIX} are reserved for the operator",
                field_path=".name",
                reason="FieldValueForbidden",
            ),
            cel(
                "!self.name.matches('(?i)(secret|passw|token|api_?key|private_?key)')",
                "env must not carry credentials; use the ExchangeAccount's credentials",
                field_path=".name",
                reason="FieldValueForbidden",
            ),
        )
    )

    name: str = Field(min_length=1, max_length=128, pattern=ENV_NAME_PATTERN)
    """Variable name."""
    value: str = Field(default="", max_length=4096)
    """Variable value."""


class Toleration(CamelModel):
    """A Kubernetes toleration for the runtime pods."""

    key: str | None = Field(default=None, max_length=316)
    """Taint key the toleration applies to; empty matches all keys."""
    operator: Literal["Exists", "Equal"] | None = None
    """Exists or Equal (default Equal)."""
    value: str | None = Field(default=None, max_length=63)
    """Taint value to match with operator Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to match; empty matches all effects."""
    toleration_seconds: int | None = Field(default=None, ge=0)
    """How long a NoExecute taint is tolerated."""


class Resources(CamelModel):
    """Compute resources of the runtime container."""

    limits: dict[str, Quantity] = Field(default_factory=dict, max_length=8)
    """Maximum resources, e.g. cpu: 500m, memory: 256Mi."""
    requests: dict[str, Quantity] = Field(default_factory=dict, max_length=8)
    """Guaranteed resources, e.g. cpu: 100m, memory: 128Mi."""


class RuntimeSpec(CamelModel):
    """How the runtime pods run."""

    image: str | None = Field(default=None, min_length=1, max_length=512)
    """Runtime image; default from the operator settings (or the python strategy's image)."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    """Image pull policy of the runtime container."""
    resources: Resources | None = None
    """Compute resources of the runtime container."""
    node_selector: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, max_length=32
    )
    """Node labels the runtime pods must be scheduled on."""
    tolerations: list[Toleration] = Field(default_factory=list, max_length=16)
    """Taints the runtime pods tolerate."""
    affinity: dict[str, Any] | None = Field(default=None, json_schema_extra=PreserveUnknown)
    """Kubernetes affinity of the runtime pods (replaces the default hostname
    anti-affinity)."""
    priority_class_name: str | None = Field(default=None, max_length=253)
    """PriorityClass of the runtime pods."""
    termination_grace_period_seconds: int | None = Field(default=None, ge=1, le=3600)
    """Seconds a pod gets to stop trading and release its Leases."""
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Extra plain environment variables (no secrets, no valueFrom)."""


class TradingBotSpec(CamelModel):
    """Desired state of a TradingBot."""

    strategy_ref: LocalObjectReference
    """The Strategy (same namespace) the bot runs."""
    mode: BotMode = Field(
        json_schema_extra=validations(
            cel(
                "self == oldSelf",
                "mode is immutable: create a new TradingBot to switch between paper and live",
                reason="FieldValueForbidden",
            )
        )
    )
    """paper (simulated fills on real market data) or live (real orders). Immutable: a
    paper journal and paper positions must never mix with real orders."""
    exchanges: list[BotExchange] = Field(
        min_length=1,
        max_length=MAX_EXCHANGES,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["account"],
            "x-kubernetes-validations": [
                cel(
                    "self.all(x, self.exists_one(y, y.account == x.account))",
                    "each account may appear only once",
                    reason="FieldValueDuplicate",
                )
            ],
        },
    )
    """Exchange accounts to trade on; one runtime Deployment each."""
    risk: Risk
    """Risk limits, applied live."""
    replicas: int = Field(default=2, ge=1, le=MAX_REPLICAS)
    """Pods per exchange: one active per shard plus standbys."""
    autoscaling: Autoscaling | None = None
    """HorizontalPodAutoscaler settings; when enabled, replicas is ignored."""
    trading_state: TradingState = "Active"
    """Kill switch: Active, ReduceOnly (only orders that shrink positions) or Halted (no new
    orders). Applied live; the stricter of this and the account's state wins."""
    suspend: bool = False
    """Scale the runtime to zero pods (open orders stay on the exchange)."""
    on_delete: OnDeleteAction = "cancelOrders"
    """What happens to open orders and positions when the bot is deleted: cancelOrders,
    flatten (cancel and close positions) or leave."""
    runtime: RuntimeSpec | None = None
    """Image, resources and scheduling of the runtime pods."""


class ExchangeStatus(CamelModel):
    """What the runtime pods of one account report (through their Lease heartbeats)."""

    leader: str | None = Field(default=None, max_length=253)
    """Pod holding shard 0."""
    shards_held: int = Field(default=0, ge=0)
    """Shards whose Lease is held by a live pod."""
    shards_total: int = Field(default=0, ge=0)
    """Shards of this account."""
    ready_shards: int = Field(default=0, ge=0)
    """Shards whose holder reconciled and may trade."""
    last_heartbeat: datetime | None = None
    """Newest heartbeat of any shard."""
    open_orders: int = Field(default=0, ge=0)
    """Open orders on the exchange."""
    quote_currency: str | None = Field(default=None, max_length=32)
    """Currency of this account's money figures (the runtime's quote currency)."""
    position_notional: SignedDecimalString | None = None
    """Sum of position notionals, quote currency."""
    realized_pnl: SignedDecimalString | None = None
    """Realized profit and loss, quote currency."""
    unrealized_pnl: SignedDecimalString | None = None
    """Unrealized profit and loss, quote currency."""
    state: RuntimeState | Literal["Unknown"] = "Unknown"
    """Runtime state of the leader: Starting, Reconciling, Trading, ReduceOnly, Halted,
    Draining, Error or Unknown."""
    breaker: str | None = Field(default=None, max_length=64)
    """Tripped risk breaker, if any."""
    message: str | None = Field(default=None, max_length=1024)
    """Last error or notice from the runtime."""


class BotSummary(CamelModel):
    """Short strings for the kubectl printer columns."""

    exchanges_ready: str | None = Field(default=None, max_length=16)
    """Ready exchanges / all exchanges, e.g. 1/2."""
    leader: str | None = Field(default=None, max_length=253)
    """Leader pod(s), comma-separated."""
    reason: str | None = Field(default=None, max_length=1024)
    """Reason of the Ready condition."""
    pnl: str | None = Field(default=None, max_length=256)
    """Profit and loss with its currency, quantized to the currency's precision, e.g.
    -0.00598129 USDT; one figure per currency when the accounts' currencies differ."""


class TradingBotStatus(CamelModel):
    """Observed state of a TradingBot."""

    phase: Phase | None = None
    """Pending, Running, Degraded, Halted, Suspended or Failed."""
    observed_generation: int | None = Field(default=None, ge=0)
    """metadata.generation the status was computed from."""
    conditions: list[Condition] = conditions_field("Ready, Progressing, Degraded, Reconciled.")
    exchanges: dict[str, ExchangeStatus] = Field(default_factory=dict, max_length=MAX_EXCHANGES)
    """Per account name: leader, shards, heartbeat, orders, positions and PnL."""
    pnl: SignedDecimalString | None = None
    """Realized plus unrealized profit and loss over all accounts, when they share one
    quote currency (summary.pnl names it)."""
    summary: BotSummary | None = None
    """Short strings for kubectl printer columns."""


class TradingBot(CamelModel):
    """A trading bot: runs a Strategy on one or more ExchangeAccounts under risk limits,
    with one active and standby pods per shard."""

    api_version: str = API_VERSION
    kind: Literal["TradingBot"] = "TradingBot"
    metadata: ObjectMeta
    spec: TradingBotSpec
    status: TradingBotStatus | None = None


__all__ = [
    "Allocation",
    "Autoscaling",
    "BotExchange",
    "BotSummary",
    "EnvVar",
    "ExchangeStatus",
    "Phase",
    "Resources",
    "Risk",
    "RuntimeSpec",
    "Toleration",
    "TradingBot",
    "TradingBotSpec",
    "TradingBotStatus",
]
