"""RuntimeConfig of one bot x account: the payload of the runtime ConfigMap."""

from __future__ import annotations

from tradebot_contracts.names import rate_limit_budget_key, vault_role_name
from tradebot_contracts.runtime_config import (
    CREDENTIALS_DIR,
    AllocationConfig,
    CredentialsConfig,
    DeleteRequest,
    FileCredentials,
    PythonStrategyRef,
    RateLimitConfig,
    RiskConfig,
    RuntimeConfig,
    StrategyConfig,
    VaultCredentials,
)
from tradebot_contracts.types import stricter_trading_state
from tradebot_operator.api.exchange_account import CredentialKeys, ExchangeAccount
from tradebot_operator.api.strategy import Strategy
from tradebot_operator.api.trading_bot import BotExchange, TradingBot
from tradebot_operator.builders.data_access import data_credentials_config, without_login
from tradebot_operator.builders.meta import BuildError, namespace_of
from tradebot_operator.builders.shards import shard_configs
from tradebot_operator.settings import OperatorSettings

INJECTOR_SECRETS_DIR = "/vault/secrets"


def credential_files(keys: CredentialKeys) -> dict[str, str]:
    """ccxt credential name -> key in the secret, for the credentials that are set."""
    mapping = {"apiKey": keys.api_key, "secret": keys.secret}
    if keys.password is not None:
        mapping["password"] = keys.password
    if keys.uid is not None:
        mapping["uid"] = keys.uid
    return mapping


def credentials_config(
    bot: TradingBot, account: ExchangeAccount, settings: OperatorSettings
) -> CredentialsConfig:
    """Where this pod reads exchange keys. A paper bot gets the account's credentials like a
    live one when the account declares them (it trades against the account's endpoint, e.g.
    a simulator or testnet); without credentials it gets none and the runtime fills its
    orders with the in-process paper broker against public market data."""
    credentials = account.spec.credentials
    if credentials is None:
        return CredentialsConfig(source="none")
    if credentials.secret_ref is not None:
        return CredentialsConfig(source="file", file=FileCredentials(directory=CREDENTIALS_DIR))
    if credentials.vault is None:  # pragma: no cover - excluded by the CRD's CEL rule
        raise BuildError(f"ExchangeAccount {account.metadata.name} has no credentials source")
    if settings.credentials_delivery == "injector":
        return CredentialsConfig(
            source="file", file=FileCredentials(directory=INJECTOR_SECRETS_DIR)
        )
    if settings.vault_address is None:
        raise BuildError("vault credentials need OperatorSettings.vault_address")
    vault = credentials.vault
    return CredentialsConfig(
        source="vault",
        vault=VaultCredentials(
            address=settings.vault_address,
            auth_mount=settings.vault_auth_mount,
            role=vault_role_name(namespace_of(bot), bot.metadata.name),
            kv_mount=vault.mount,
            path=vault.path,
            keys=credential_files(vault.keys),
            ca_cert=settings.vault_ca_pem,
        ),
    )


def strategy_config(strategy: Strategy) -> StrategyConfig:
    python = strategy.spec.python
    return StrategyConfig(
        name=strategy.metadata.name,
        type=strategy.spec.type,
        timeframe=strategy.spec.timeframe,
        parameters=dict(strategy.spec.parameters),
        python=PythonStrategyRef(module=python.module, image=python.image) if python else None,
    )


def build_runtime_config(
    bot: TradingBot,
    strategy: Strategy,
    account: ExchangeAccount,
    exchange: BotExchange,
    settings: OperatorSettings,
    delete_request: DeleteRequest | None = None,
) -> RuntimeConfig:
    namespace = namespace_of(bot)
    rate_limit = account.spec.rate_limit
    logins = data_credentials_config(namespace, bot.metadata.name, settings)
    risk = bot.spec.risk
    created = bot.metadata.creation_timestamp
    config = RuntimeConfig(
        bot=bot.metadata.name,
        namespace=namespace,
        bot_generation=int(created.timestamp() * 1000) if created is not None else 0,
        account=account.metadata.name,
        exchange=account.spec.exchange,
        market_type=account.spec.market_type,
        mode=bot.spec.mode,
        account_mode=account.spec.mode,
        endpoint=account.spec.endpoint,
        credentials=credentials_config(bot, account, settings),
        strategy=strategy_config(strategy),
        symbols=sorted(set(exchange.symbols)),
        shards=shard_configs(
            bot.metadata.name, account.metadata.name, exchange.symbols, exchange.shards
        ),
        allocation=AllocationConfig(
            quote=exchange.allocation.quote, amount=exchange.allocation.amount
        ),
        risk=RiskConfig(
            max_position_notional=risk.max_position_notional,
            max_order_notional=risk.max_order_notional,
            max_daily_loss=risk.max_daily_loss,
            max_drawdown_percent=risk.max_drawdown_percent,
            max_orders_per_minute=risk.max_orders_per_minute,
            price_band_percent=risk.price_band_percent,
        ),
        trading_state=stricter_trading_state(bot.spec.trading_state, account.spec.trading_state),
        bot_trading_state=bot.spec.trading_state,
        account_trading_state=account.spec.trading_state,
        rate_limit=RateLimitConfig(
            budget_key=rate_limit_budget_key(namespace, account.metadata.name),
            requests_per_minute=rate_limit.requests_per_minute if rate_limit else None,
            weight_per_minute=rate_limit.weight_per_minute if rate_limit else None,
            orders_per_10s=rate_limit.orders_per_10s if rate_limit else None,
        ),
        on_delete=bot.spec.on_delete,
        delete_request=delete_request,
        lease_duration_seconds=settings.lease_duration_seconds,
        metrics_port=settings.metrics_port,
        journal_dsn=without_login(settings.journal_dsn) if logins else settings.journal_dsn,
        redis_url=without_login(settings.redis_url) if logins else settings.redis_url,
        data_credentials=logins,
    )
    return config.with_config_version()
