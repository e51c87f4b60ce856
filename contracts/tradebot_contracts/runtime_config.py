"""The runtime ConfigMap payload: everything one runtime pod (one bot x one exchange
account) needs to trade, and nothing secret.

The operator writes it as JSON under CONFIG_KEY into the ConfigMap it owns; the runtime
reads the mounted file at start and watches the ConfigMap through the API to apply
LIVE_FIELDS (risk, tradingState, rate limits, delete requests) without a restart. Every
other field is roll-relevant: ``config_version`` hashes those, the Deployment's pod
template carries the hash, so changing them rolls the pods.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import Field

from tradebot_contracts.base import CamelModel
from tradebot_contracts.strategies import StrategyType
from tradebot_contracts.types import (
    PercentString,
    PositiveDecimalString,
    TradingState,
)

CONFIG_SCHEMA_VERSION: Final = 1
CONFIG_KEY: Final = "runtime.json"
"""Key of the payload in the ConfigMap (and file name in the mounted directory)."""
CONFIG_DIR: Final = "/etc/tradebot"
CONFIG_PATH: Final = f"{CONFIG_DIR}/{CONFIG_KEY}"
CREDENTIALS_DIR: Final = "/var/run/secrets/tradebot/credentials"
"""Development-only Secret credentials are mounted here, one file per ccxt credential."""
VAULT_TOKEN_DIR: Final = "/var/run/secrets/tradebot/vault"
VAULT_TOKEN_FILE: Final = "token"


MarketType = Literal["spot", "swap", "future"]
BotMode = Literal["paper", "live"]
AccountMode = Literal["paper", "sandbox", "live"]
OnDeleteAction = Literal["cancelOrders", "flatten", "leave"]

LIVE_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "risk",
        "trading_state",
        "bot_trading_state",
        "account_trading_state",
        "rate_limit",
        "on_delete",
        "delete_request",
        "config_version",
    }
)
"""Fields the runtime applies without a restart; all others roll the Deployment."""


class PythonStrategyRef(CamelModel):
    """Where a ``python`` strategy's class lives."""

    module: str
    """``package.module:ClassName``."""
    image: str
    """Image that contains the module."""


class StrategyConfig(CamelModel):
    """The strategy this pod runs."""

    name: str
    """Name of the Strategy object."""
    type: StrategyType
    timeframe: str
    """Candle timeframe, e.g. ``1m``, ``1h``."""
    parameters: dict[str, Any] = Field(default_factory=dict)
    """Validated parameters; parse with tradebot_contracts.strategies.validate_parameters."""
    python: PythonStrategyRef | None = None


class ShardConfig(CamelModel):
    """One shard: a subset of the symbols, traded by whichever pod holds the Lease."""

    index: int
    lease_name: str
    symbols: list[str]


class AllocationConfig(CamelModel):
    """Capital the bot may use on this account."""

    quote: str
    """Quote currency, e.g. USDT."""
    amount: PositiveDecimalString


class RiskConfig(CamelModel):
    """Risk limits checked before every order (applied live)."""

    max_position_notional: PositiveDecimalString
    max_order_notional: PositiveDecimalString
    max_daily_loss: PositiveDecimalString
    max_drawdown_percent: PercentString | None = None
    max_orders_per_minute: int
    price_band_percent: PercentString


class RateLimitConfig(CamelModel):
    """The account-wide budget shared by every pod of every bot using the account."""

    budget_key: str
    """Key of the shared token bucket (one per account), e.g. in Redis."""
    requests_per_minute: int | None = None
    """Unset: use ccxt's own rate limit for the exchange."""
    weight_per_minute: int | None = None
    orders_per_10s: int | None = None


class VaultLogin(CamelModel):
    """How the runtime logs in to Vault/OpenBao: Kubernetes auth with its projected token."""

    address: str
    auth_mount: str
    """Mount path of the Kubernetes auth method, e.g. ``kubernetes``."""
    role: str
    """Vault role bound to this bot's ServiceAccount."""
    token_path: str = f"{VAULT_TOKEN_DIR}/{VAULT_TOKEN_FILE}"
    """Projected ServiceAccount token with the Vault audience."""
    ca_cert: str | None = None
    """PEM CA bundle to verify Vault's TLS certificate with (public, not a secret); unset:
    the system trust store."""


class VaultCredentials(VaultLogin):
    """Fetch the exchange keys from Vault/OpenBao with Kubernetes auth."""

    kv_mount: str
    """Mount of the KV v2 secrets engine, e.g. ``secret``."""
    path: str
    """Secret path inside the KV mount."""
    keys: dict[str, str]
    """ccxt credential name (apiKey, secret, password, uid) -> key inside the Vault secret."""


class DataCredentialsConfig(VaultLogin):
    """The bot's own short-lived journal (PostgreSQL) and Redis logins, issued by Vault's
    database secrets engine (``<database_mount>/creds/<role>``). With it, ``journal_dsn``
    and ``redis_url`` hold only host, port and database: the user name and password come
    from Vault, are renewed with their lease and replaced before it ends."""

    database_mount: str
    """Mount of the database secrets engine, e.g. ``database``."""
    journal_role: str
    """Database role issuing this bot's PostgreSQL login (row-level security confines it
    to the bot's own journal rows)."""
    redis_role: str | None = None
    """Database role issuing this bot's Redis ACL user (only its accounts' budget keys);
    unset: the installation gives Redis no per-bot users."""


class FileCredentials(CamelModel):
    """Read the exchange keys from files named after the ccxt credential (apiKey, secret,
    password, uid) in ``directory``."""

    directory: str


class CredentialsConfig(CamelModel):
    """Where the runtime gets exchange credentials; never the credentials themselves."""

    source: Literal["none", "vault", "file"]
    vault: VaultCredentials | None = None
    file: FileCredentials | None = None


class DeleteRequest(CamelModel):
    """Set by the operator's finalizer: stop trading, apply ``action``, then acknowledge
    ``id`` in the Lease heartbeat (``ackDeleteRequest``)."""

    id: str
    action: OnDeleteAction


class RuntimeConfig(CamelModel):
    """Payload of the runtime ConfigMap (key CONFIG_KEY)."""

    schema_version: int = CONFIG_SCHEMA_VERSION
    bot: str
    namespace: str
    bot_generation: int = 0
    """The TradingBot's creation time (ms since the epoch): the journal fences with
    (generation, epoch), so a bot created again under the same name (whose Leases count
    epochs from the beginning) can take its shards."""
    account: str
    """Name of the ExchangeAccount."""
    exchange: str
    """ccxt exchange id, e.g. ``binance``."""
    market_type: MarketType
    mode: BotMode
    """paper: simulate fills locally against real market data; live: send orders."""
    account_mode: AccountMode
    """sandbox: call the exchange's test network (ccxt set_sandbox_mode)."""
    endpoint: str | None = None
    """Base URL override for the exchange API (e.g. the local simulator)."""
    credentials: CredentialsConfig
    strategy: StrategyConfig
    symbols: list[str]
    """All symbols of this account, in shard order."""
    shards: list[ShardConfig]
    allocation: AllocationConfig
    risk: RiskConfig
    trading_state: TradingState
    """Effective state: the stricter of the bot's and the account's."""
    bot_trading_state: TradingState
    account_trading_state: TradingState
    rate_limit: RateLimitConfig
    on_delete: OnDeleteAction
    delete_request: DeleteRequest | None = None
    lease_duration_seconds: int
    metrics_port: int
    journal_dsn: str | None = None
    """PostgreSQL DSN without a password (the password, if any, is a credential); with
    ``data_credentials`` host, port and database only."""
    redis_url: str | None = None
    """Redis URL without a password; with ``data_credentials`` host, port and db only."""
    data_credentials: DataCredentialsConfig | None = None
    """Where the bot's own journal and Redis logins come from (Vault); unset: the DSN's
    and URL's login (a development setting, one login for every tenant)."""
    config_version: str = ""
    """Hash of the roll-relevant fields (see compute_config_version)."""

    def dumps(self) -> str:
        """Sorted, indented JSON (readable in ``kubectl get configmap -o yaml``): identical
        configs give identical ConfigMaps."""
        payload = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return json.dumps(payload, sort_keys=True, indent=2, ensure_ascii=True) + "\n"

    @classmethod
    def loads(cls, text: str | bytes) -> RuntimeConfig:
        return cls.model_validate_json(text)

    @classmethod
    def load(cls, path: str | Path = CONFIG_PATH) -> RuntimeConfig:
        return cls.loads(Path(path).read_bytes())

    def with_config_version(self) -> RuntimeConfig:
        """A copy whose ``config_version`` is set from the roll-relevant fields."""
        return self.model_copy(update={"config_version": compute_config_version(self)})

    def budget_share(self, pods: int) -> Decimal:
        """Conservative local requests-per-minute share when the shared bucket is
        unreachable (``pods`` is how many pods use the account)."""
        budget = self.rate_limit.requests_per_minute or 0
        return Decimal(budget) / Decimal(max(pods, 1))


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def compute_config_version(config: RuntimeConfig) -> str:
    """16 hex chars of SHA-256 over everything except LIVE_FIELDS."""
    rolled = config.model_dump(
        mode="json", by_alias=True, exclude=set(LIVE_FIELDS), exclude_none=True
    )
    return hashlib.sha256(canonical_json(rolled).encode()).hexdigest()[:16]


__all__ = [
    "CONFIG_DIR",
    "CONFIG_KEY",
    "CONFIG_PATH",
    "CONFIG_SCHEMA_VERSION",
    "CREDENTIALS_DIR",
    "LIVE_FIELDS",
    "VAULT_TOKEN_DIR",
    "VAULT_TOKEN_FILE",
    "AllocationConfig",
    "CredentialsConfig",
    "DataCredentialsConfig",
    "DeleteRequest",
    "FileCredentials",
    "PythonStrategyRef",
    "RateLimitConfig",
    "RiskConfig",
    "RuntimeConfig",
    "ShardConfig",
    "StrategyConfig",
    "VaultCredentials",
    "VaultLogin",
    "canonical_json",
    "compute_config_version",
]
