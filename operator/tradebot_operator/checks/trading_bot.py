"""Semantic validation the API server cannot do: facts outside one object (does the
exchange exist in ccxt, does the referenced account exist, is it paper), and a second line
of defence for the CRD's CEL rules (objects created before a CRD upgrade).

Pure functions: they return problems, they never raise and never call the API. The
handlers turn problems into conditions (reason, message naming the field) and events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from tradebot_contracts.strategies import StrategyParametersError, validate_parameters
from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.api.strategy import Strategy
from tradebot_operator.api.trading_bot import TradingBot
from tradebot_operator.settings import OperatorSettings

Severity = Literal["Error", "Warning"]


@dataclass(frozen=True)
class Problem:
    """One reason an object cannot (or should not) be used as it is."""

    reason: str
    """CamelCase, usable as a condition reason."""
    field: str
    """Path from the object root, e.g. ``spec.exchanges[0].account``."""
    message: str
    severity: Severity = "Error"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def errors(problems: list[Problem]) -> list[Problem]:
    return [problem for problem in problems if problem.severity == "Error"]


ModelT = TypeVar("ModelT", bound=BaseModel)


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def parse_resource(
    model: type[ModelT], body: Mapping[str, Any]
) -> tuple[ModelT | None, list[Problem]]:
    """Parse an object from the API into its model. An object the model refuses (a field
    the CRD schema cannot express, or an object stored before a CRD upgrade) becomes
    problems with the field path instead of an exception."""
    try:
        return model.model_validate(body), []
    except ValidationError as exc:
        problems = [
            Problem(
                "InvalidSpec",
                _path(tuple(error["loc"])),
                str(error["msg"]).removeprefix("Value error, "),
            )
            for error in exc.errors()
        ]
        return None, problems


# ccxt facts ------------------------------------------------------------------------------


@cache
def _ccxt_exchange_ids() -> frozenset[str]:
    import ccxt  # heavy import: only when first needed

    return frozenset(ccxt.exchanges)


@cache
def _ccxt_capabilities(exchange_id: str) -> tuple[dict[str, Any], bool]:
    """(``has`` map, whether the exchange has a sandbox URL)."""
    import ccxt

    exchange = getattr(ccxt, exchange_id)()
    has: dict[str, Any] = dict(exchange.has)
    return has, bool(exchange.urls.get("test"))


def known_exchange(exchange_id: str) -> bool:
    return exchange_id in _ccxt_exchange_ids()


# ExchangeAccount ---------------------------------------------------------------------------


def validate_account(account: ExchangeAccount) -> list[Problem]:
    spec = account.spec
    problems: list[Problem] = []
    if not known_exchange(spec.exchange):
        problems.append(
            Problem(
                "UnknownExchange",
                "spec.exchange",
                f"{spec.exchange!r} is not a ccxt exchange id (e.g. binance, kraken, okx)",
            )
        )
        return problems
    has, has_sandbox = _ccxt_capabilities(spec.exchange)
    if has.get(spec.market_type) is False:
        problems.append(
            Problem(
                "MarketTypeUnsupported",
                "spec.marketType",
                f"{spec.exchange} does not support {spec.market_type} markets in ccxt",
            )
        )
    if spec.mode == "sandbox" and not has_sandbox and spec.endpoint is None:
        problems.append(
            Problem(
                "SandboxUnsupported",
                "spec.mode",
                f"{spec.exchange} has no sandbox in ccxt; set spec.endpoint or use paper",
            )
        )
    credentials = spec.credentials
    if spec.mode != "paper" and credentials is None:
        problems.append(
            Problem(
                "CredentialsMissing",
                "spec.credentials",
                f"a {spec.mode} account needs credentials (vault or secretRef)",
            )
        )
    if credentials is not None:
        if (credentials.vault is None) == (credentials.secret_ref is None):
            problems.append(
                Problem(
                    "CredentialsAmbiguous",
                    "spec.credentials",
                    "exactly one of vault or secretRef must be set",
                )
            )
        elif credentials.secret_ref is not None:
            problems.append(
                Problem(
                    "DevelopmentCredentials",
                    "spec.credentials.secretRef",
                    "credentials from a Kubernetes Secret are for development; use vault",
                    severity="Warning",
                )
            )
    if (
        spec.mode == "live"
        and spec.endpoint is not None
        and not spec.endpoint.startswith(("https://", "wss://"))
    ):
        problems.append(
            Problem(
                "InsecureEndpoint",
                "spec.endpoint",
                "endpoint of a live account must use TLS (https:// or wss://)",
            )
        )
    return problems


# Strategy --------------------------------------------------------------------------------


def validate_strategy(strategy: Strategy) -> list[Problem]:
    spec = strategy.spec
    python = spec.python.model_dump(by_alias=True) if spec.python is not None else None
    if spec.type != "python" and python is not None:
        return [Problem("PythonNotAllowed", "spec.python", "only allowed when type is python")]
    try:
        validate_parameters(spec.type, spec.parameters, python=python)
    except StrategyParametersError as exc:
        return [
            Problem("InvalidParameters", problem.field, problem.message) for problem in exc.problems
        ]
    return []


# TradingBot ------------------------------------------------------------------------------


def _quote_of(symbol: str) -> str:
    return symbol.split("/", 1)[1].split(":", 1)[0]


def _bot_exchange_problems(
    bot: TradingBot,
    strategy: Strategy | None,
    accounts: Mapping[str, ExchangeAccount | None],
    settings: OperatorSettings | None,
) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, exchange in enumerate(bot.spec.exchanges):
        path = f"spec.exchanges[{index}]"
        if exchange.account in seen:
            problems.append(
                Problem(
                    "DuplicateAccount",
                    f"{path}.account",
                    f"account {exchange.account!r} is listed more than once",
                )
            )
        seen.add(exchange.account)
        if exchange.shards > len(exchange.symbols):
            problems.append(
                Problem(
                    "TooManyShards",
                    f"{path}.shards",
                    f"{exchange.shards} shards for {len(exchange.symbols)} symbols",
                )
            )
        for position, symbol in enumerate(exchange.symbols):
            if _quote_of(symbol) != exchange.allocation.quote:
                problems.append(
                    Problem(
                        "QuoteMismatch",
                        f"{path}.symbols[{position}]",
                        f"{symbol} is not quoted in allocation.quote {exchange.allocation.quote}",
                    )
                )
        if strategy is not None and strategy.spec.type == "grid" and len(exchange.symbols) > 1:
            problems.append(
                Problem(
                    "GridNeedsOneSymbol",
                    f"{path}.symbols",
                    "a grid strategy has one price range, so it trades exactly one symbol",
                )
            )
        account = accounts.get(exchange.account)
        if account is None:
            problems.append(
                Problem(
                    "AccountNotFound",
                    f"{path}.account",
                    f"ExchangeAccount {exchange.account!r} not found in the namespace",
                )
            )
            continue
        for problem in errors(validate_account(account)):
            problems.append(
                Problem(
                    "AccountInvalid",
                    f"{path}.account",
                    f"ExchangeAccount {exchange.account!r} is invalid: {problem}",
                )
            )
        problems.extend(_account_fit(bot, account, index, settings))
    return problems


def _account_fit(
    bot: TradingBot, account: ExchangeAccount, index: int, settings: OperatorSettings | None
) -> list[Problem]:
    path = f"spec.exchanges[{index}]"
    name = account.metadata.name
    problems: list[Problem] = []
    if bot.spec.mode == "live" and account.spec.mode == "paper":
        problems.append(
            Problem(
                "PaperAccountForLiveBot",
                f"{path}.account",
                f"a live bot cannot trade on paper account {name!r}",
            )
        )
    if bot.spec.mode == "live" and account.spec.mode != "paper" and not account.spec.credentials:
        problems.append(
            Problem(
                "AccountCredentialsMissing",
                f"{path}.account",
                f"ExchangeAccount {name!r} has no credentials",
            )
        )
    derivative = account.spec.market_type != "spot"
    for position, symbol in enumerate(bot.spec.exchanges[index].symbols):
        if (":" in symbol) != derivative:
            expected = "BASE/QUOTE:SETTLE" if derivative else "BASE/QUOTE"
            problems.append(
                Problem(
                    "SymbolMarketTypeMismatch",
                    f"{path}.symbols[{position}]",
                    f"{symbol} does not fit {account.spec.market_type} account {name!r}; "
                    f"expected {expected}",
                )
            )
    credentials = account.spec.credentials
    if (
        settings is not None
        and bot.spec.mode == "live"
        and credentials is not None
        and credentials.vault is not None
        and settings.credentials_delivery == "vault"
        and settings.vault_address is None
    ):
        problems.append(
            Problem(
                "VaultNotConfigured",
                f"{path}.account",
                f"ExchangeAccount {name!r} uses vault but the operator has no vault address",
            )
        )
    problems.extend(_credentials_readiness(account, path, settings))
    return problems


def _credentials_readiness(
    account: ExchangeAccount, path: str, settings: OperatorSettings | None
) -> list[Problem]:
    """A sandbox/live account whose Vault secret is not ready keeps the bot out of Running:
    False always; Unknown too when the operator checks Vault itself (not checked yet,
    Vault unreachable). Without operator-side Vault the condition is always Unknown and
    the runtime is the judge."""
    credentials = account.spec.credentials
    if account.spec.mode == "paper" or credentials is None or credentials.vault is None:
        return []
    status = account.status
    condition = next(
        (c for c in (status.conditions if status else []) if c.type == "CredentialsReady"), None
    )
    managed = settings is not None and settings.vault_managed
    blocking = {"False", "Unknown"} if managed else {"False"}
    if condition is not None and condition.status not in blocking:
        return []
    if condition is None and not managed:
        return []
    detail = (
        f"{condition.reason}: {condition.message}" if condition is not None else "not checked yet"
    )
    return [
        Problem(
            "CredentialsNotReady",
            f"{path}.account",
            f"ExchangeAccount {account.metadata.name!r} credentials not ready ({detail})",
        )
    ]


def validate_bot(
    bot: TradingBot,
    strategy: Strategy | None,
    accounts: Mapping[str, ExchangeAccount | None],
    settings: OperatorSettings | None = None,
) -> list[Problem]:
    """Everything wrong with ``bot`` given its Strategy (None: not found) and the accounts
    it references (missing or None: not found). Strategy and account problems are reported
    on the bot's referencing field."""
    problems: list[Problem] = []
    if strategy is None:
        problems.append(
            Problem(
                "StrategyNotFound",
                "spec.strategyRef.name",
                f"Strategy {bot.spec.strategy_ref.name!r} not found in the namespace",
            )
        )
    else:
        for problem in errors(validate_strategy(strategy)):
            problems.append(
                Problem(
                    "StrategyInvalid",
                    "spec.strategyRef.name",
                    f"Strategy {strategy.metadata.name!r} is invalid: {problem}",
                )
            )
    risk = bot.spec.risk
    if risk.max_order_notional > risk.max_position_notional:
        problems.append(
            Problem(
                "RiskInconsistent",
                "spec.risk.maxOrderNotional",
                "maxOrderNotional must not exceed maxPositionNotional",
            )
        )
    autoscaling = bot.spec.autoscaling
    if autoscaling is not None and autoscaling.min_replicas > autoscaling.max_replicas:
        problems.append(
            Problem(
                "AutoscalingInconsistent",
                "spec.autoscaling.minReplicas",
                "minReplicas must not exceed maxReplicas",
            )
        )
    problems.extend(_bot_exchange_problems(bot, strategy, accounts, settings))
    return problems
