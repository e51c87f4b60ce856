"""ExchangeAccount: one account on one exchange, its credentials source and its shared
rate-limit budget."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import ConfigDict, Field

from tradebot_contracts.base import CamelModel
from tradebot_contracts.runtime_config import AccountMode, MarketType
from tradebot_contracts.types import TradingState
from tradebot_operator.api.common import (
    API_VERSION,
    Condition,
    ObjectMeta,
    ObjectName,
    UsedByName,
    conditions_field,
    used_by_field,
)
from tradebot_operator.api.schema import cel, immutable, validations

EXCHANGE_ID_PATTERN: Final = r"^[a-z0-9]+$"
ENDPOINT_PATTERN: Final = r"^(https?|wss?)://[^\s/$.?#@\\][^\s@\\]*$"
"""A URL without user info (``http://127.0.0.1@169.254.169.254/`` reaches the second host)."""
SECRET_KEY_PATTERN: Final = r"^[-._a-zA-Z0-9]+$"
VAULT_PATH_PATTERN: Final = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$"
"""Segments separated by single ``/``; a segment starts with a letter, digit or ``_``, so
``.``, ``..`` and empty segments (which leave the prefix or the mount) never match."""

SecretKey = Annotated[str, Field(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)]


class CredentialKeys(CamelModel):
    """Which key of the secret holds each ccxt credential."""

    api_key: SecretKey = "apiKey"
    """Key holding the API key."""
    secret: SecretKey = "secret"
    """Key holding the API secret."""
    password: SecretKey | None = None
    """Key holding the API passphrase (exchanges such as OKX, KuCoin)."""
    uid: SecretKey | None = None
    """Key holding the user id (exchanges that need one)."""


class VaultCredentials(CamelModel):
    """Read the credentials from a Vault/OpenBao KV v2 secret with Kubernetes auth."""

    path: str = Field(min_length=1, max_length=512, pattern=VAULT_PATH_PATTERN)
    """Secret path inside the KV mount. It must lie under the namespace's prefix that the
    installation sets (default tradebot/<namespace>/, e.g. tradebot/trading/binance-main);
    the operator refuses any other path."""
    mount: str = Field(default="secret", min_length=1, max_length=128, pattern=VAULT_PATH_PATTERN)
    """Mount path of the KV v2 secrets engine; only the installation's mount is accepted."""
    keys: CredentialKeys = Field(default_factory=CredentialKeys)
    """Which key of the Vault secret holds each credential."""


class SecretRefCredentials(CamelModel):
    """Development only: read the credentials from a Kubernetes Secret mounted as files.
    The account reports a Warning; use vault in production."""

    name: ObjectName
    """Name of the Secret in the account's namespace. The Secret must carry the label
    tradebot.io/credentials=true; paper and sandbox accounts only."""
    keys: CredentialKeys = Field(default_factory=CredentialKeys)
    """Which key of the Secret holds each credential."""


class Credentials(CamelModel):
    """Where the runtime gets the exchange API keys; exactly one source."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.vault) != has(self.secretRef)",
                "exactly one of vault or secretRef must be set",
            )
        )
    )

    vault: VaultCredentials | None = None
    """Vault/OpenBao KV v2 secret (production)."""
    secret_ref: SecretRefCredentials | None = None
    """Kubernetes Secret (development only)."""


class RateLimit(CamelModel):
    """Request budget for the whole account, shared by every pod of every bot that uses
    it. Unset: ccxt's built-in limit for the exchange."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.requestsPerMinute) || has(self.weightPerMinute)",
                "set requestsPerMinute or weightPerMinute",
            )
        )
    )

    requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    """Requests per minute for the account."""
    weight_per_minute: int | None = Field(default=None, ge=1, le=10_000_000)
    """Request weight per minute, for exchanges that weigh endpoints (Binance)."""
    orders_per_10s: int | None = Field(default=None, ge=1, le=100_000)
    """Orders per 10 seconds for the account."""


class ExchangeAccountSpec(CamelModel):
    """Desired state of an ExchangeAccount."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.mode == 'paper' || has(self.credentials)",
                "credentials are required when mode is sandbox or live",
                field_path=".credentials",
                reason="FieldValueRequired",
            ),
            cel(
                "self.mode != 'live' || !has(self.credentials) || !has(self.credentials.secretRef)",
                "secretRef is for paper and sandbox accounts only: a live account's keys "
                "come from vault",
                field_path=".credentials.secretRef",
                reason="FieldValueForbidden",
            ),
            cel(
                "self.mode != 'live' || !has(self.endpoint) "
                "|| self.endpoint.startsWith('https://') || self.endpoint.startsWith('wss://')",
                "endpoint of a live account must use TLS (https:// or wss://)",
                field_path=".endpoint",
                reason="FieldValueInvalid",
            ),
        )
    )

    exchange: str = Field(
        min_length=1,
        max_length=64,
        pattern=EXCHANGE_ID_PATTERN,
        json_schema_extra=validations(immutable("exchange")),
    )
    """ccxt exchange id, e.g. binance, kraken, okx. Immutable."""
    market_type: MarketType = Field(
        default="spot", json_schema_extra=validations(immutable("marketType"))
    )
    """spot, swap (perpetual futures) or future (dated futures). Immutable."""
    mode: AccountMode = Field(json_schema_extra=validations(immutable("mode")))
    """paper (market data only, no credentials), sandbox (the exchange's test network) or
    live. Immutable: journals and positions belong to one venue; create a new account
    instead."""
    endpoint: str | None = Field(default=None, max_length=2048, pattern=ENDPOINT_PATTERN)
    """Base URL that replaces the exchange's API URL, e.g. http://127.0.0.1:8080 for the
    local simulator."""
    credentials: Credentials | None = None
    """Credentials source; required unless mode is paper."""
    rate_limit: RateLimit | None = None
    """Request budget shared by every bot using the account."""
    trading_state: TradingState = "Active"
    """Kill switch for every bot on this account: Active, ReduceOnly (only orders that
    shrink positions) or Halted (no new orders). Applied live."""


class ExchangeAccountStatus(CamelModel):
    """Observed state of an ExchangeAccount."""

    observed_generation: int | None = Field(default=None, ge=0)
    """metadata.generation the status was computed from."""
    conditions: list[Condition] = conditions_field(
        "Ready and CredentialsReady; Deletable (while a deletion waits): False, reason InUse, "
        "while TradingBots still use the account."
    )
    used_by: list[UsedByName] = used_by_field()


class ExchangeAccount(CamelModel):
    """An account on a crypto exchange: exchange id, market type, mode, where its
    credentials live and the rate-limit budget shared by every bot using it."""

    api_version: str = API_VERSION
    kind: Literal["ExchangeAccount"] = "ExchangeAccount"
    metadata: ObjectMeta
    spec: ExchangeAccountSpec
    status: ExchangeAccountStatus | None = None
