"""Checks of one TradingBot given what it refers to: facts outside one object (does the
referenced Strategy or account exist and is it valid, does the account fit the bot's mode
and symbols, are its credentials ready), and a second line of defence for the CRD's CEL
rules (objects created before a CRD upgrade).

Pure functions: they return problems, they never raise and never call the API. Strategy
and account problems are reported on the bot's referencing field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.api.strategy import Strategy
from tradebot_operator.api.trading_bot import BotExchange, TradingBot
from tradebot_operator.checks.chain import Problem, check, errors, gate, run_all, run_checks
from tradebot_operator.checks.exchange_account import validate_account
from tradebot_operator.checks.strategy import validate_strategy
from tradebot_operator.checks.tenancy import Tenant, bot_tenancy_problems, tenant_of
from tradebot_operator.settings import OperatorSettings


@dataclass(frozen=True)
class BotInputs:
    """A bot and everything it refers to (None: not found)."""

    bot: TradingBot
    strategy: Strategy | None
    accounts: Mapping[str, ExchangeAccount | None]
    settings: OperatorSettings | None
    priority_class_exists: Callable[[str], bool] | None = None
    """Whether a PriorityClass of that name exists (None: not checked)."""

    @property
    def tenant(self) -> Tenant | None:
        """The bot's namespace under the installation's policy (None: no settings given)."""
        if self.settings is None:
            return None
        return tenant_of(
            self.bot.metadata.namespace, self.settings.tenancy, self.settings.runtime_image
        )


@dataclass(frozen=True)
class ExchangeEntry:
    """One entry of ``spec.exchanges`` with its account (None: not found)."""

    inputs: BotInputs
    index: int

    @property
    def exchange(self) -> BotExchange:
        return self.inputs.bot.spec.exchanges[self.index]

    @property
    def path(self) -> str:
        return f"spec.exchanges[{self.index}]"

    @property
    def account(self) -> ExchangeAccount | None:
        return self.inputs.accounts.get(self.exchange.account)


@dataclass(frozen=True)
class AccountFit:
    """An entry whose account exists: does the account fit the bot?"""

    entry: ExchangeEntry
    account: ExchangeAccount

    @property
    def bot(self) -> TradingBot:
        return self.entry.inputs.bot

    @property
    def path(self) -> str:
        return self.entry.path

    @property
    def name(self) -> str:
        return self.account.metadata.name


def _quote_of(symbol: str) -> str:
    return symbol.split("/", 1)[1].split(":", 1)[0]


# the bot as a whole ----------------------------------------------------------------------


@check
def strategy_usable(inputs: BotInputs) -> Iterator[Problem]:
    strategy = inputs.strategy
    if strategy is None:
        yield Problem(
            "StrategyNotFound",
            "spec.strategyRef.name",
            f"Strategy {inputs.bot.spec.strategy_ref.name!r} not found in the namespace",
        )
        return
    for problem in errors(validate_strategy(strategy, inputs.tenant)):
        yield Problem(
            "StrategyInvalid",
            "spec.strategyRef.name",
            f"Strategy {strategy.metadata.name!r} is invalid: {problem}",
        )


@check
def pod_surface_allowed(inputs: BotInputs) -> Iterator[Problem]:
    """Image, env and placement only within the installation's policy."""
    tenant = inputs.tenant
    if tenant is not None:
        yield from bot_tenancy_problems(inputs.bot, tenant)


@check
def priority_class_exists(inputs: BotInputs) -> Iterator[Problem]:
    """Without its PriorityClass no runtime pod can be created (the ReplicaSet's errors
    are not on the bot): the bot waits for it, and says so."""
    runtime = inputs.bot.spec.runtime
    name = runtime.priority_class_name if runtime is not None else None
    exists = inputs.priority_class_exists
    if name and exists is not None and not exists(name):
        yield Problem(
            "PriorityClassNotFound",
            "spec.runtime.priorityClassName",
            f"PriorityClass {name!r} does not exist: no runtime pod can be created until it does",
        )


@check
def risk_consistent(inputs: BotInputs) -> Iterator[Problem]:
    risk = inputs.bot.spec.risk
    if risk.max_order_notional > risk.max_position_notional:
        yield Problem(
            "RiskInconsistent",
            "spec.risk.maxOrderNotional",
            "maxOrderNotional must not exceed maxPositionNotional",
        )


@check
def autoscaling_consistent(inputs: BotInputs) -> Iterator[Problem]:
    autoscaling = inputs.bot.spec.autoscaling
    if autoscaling is not None and autoscaling.min_replicas > autoscaling.max_replicas:
        yield Problem(
            "AutoscalingInconsistent",
            "spec.autoscaling.minReplicas",
            "minReplicas must not exceed maxReplicas",
        )


@check
def exchanges_usable(inputs: BotInputs) -> Iterator[Problem]:
    """Every entry of spec.exchanges in turn, all of one entry's problems together."""
    entries = [ExchangeEntry(inputs, i) for i in range(len(inputs.bot.spec.exchanges))]
    yield from run_all(EXCHANGE_CHECKS, entries)


# one entry of spec.exchanges -------------------------------------------------------------


@check
def account_listed_once(entry: ExchangeEntry) -> Iterator[Problem]:
    earlier = {e.account for e in entry.inputs.bot.spec.exchanges[: entry.index]}
    if entry.exchange.account in earlier:
        yield Problem(
            "DuplicateAccount",
            f"{entry.path}.account",
            f"account {entry.exchange.account!r} is listed more than once",
        )


@check
def shards_fit_symbols(entry: ExchangeEntry) -> Iterator[Problem]:
    exchange = entry.exchange
    if exchange.shards > len(exchange.symbols):
        yield Problem(
            "TooManyShards",
            f"{entry.path}.shards",
            f"{exchange.shards} shards for {len(exchange.symbols)} symbols",
        )


@check
def symbols_in_allocation_quote(entry: ExchangeEntry) -> Iterator[Problem]:
    exchange = entry.exchange
    for position, symbol in enumerate(exchange.symbols):
        if _quote_of(symbol) != exchange.allocation.quote:
            yield Problem(
                "QuoteMismatch",
                f"{entry.path}.symbols[{position}]",
                f"{symbol} is not quoted in allocation.quote {exchange.allocation.quote}",
            )


@check
def grid_trades_one_symbol(entry: ExchangeEntry) -> Iterator[Problem]:
    strategy = entry.inputs.strategy
    if strategy is not None and strategy.spec.type == "grid" and len(entry.exchange.symbols) > 1:
        yield Problem(
            "GridNeedsOneSymbol",
            f"{entry.path}.symbols",
            "a grid strategy has one price range, so it trades exactly one symbol",
        )


@gate  # the fit checks need the account
def account_exists(entry: ExchangeEntry) -> Iterator[Problem]:
    if entry.account is None:
        yield Problem(
            "AccountNotFound",
            f"{entry.path}.account",
            f"ExchangeAccount {entry.exchange.account!r} not found in the namespace",
        )


@check
def account_fits(entry: ExchangeEntry) -> Iterator[Problem]:
    account = entry.account
    if account is not None:
        yield from run_checks(FIT_CHECKS, AccountFit(entry, account))


# the entry's account against the bot -----------------------------------------------------


@check
def account_valid(fit: AccountFit) -> Iterator[Problem]:
    for problem in errors(validate_account(fit.account, fit.entry.inputs.tenant)):
        yield Problem(
            "AccountInvalid",
            f"{fit.path}.account",
            f"ExchangeAccount {fit.entry.exchange.account!r} is invalid: {problem}",
        )


@check
def live_bot_not_on_paper(fit: AccountFit) -> Iterator[Problem]:
    if fit.bot.spec.mode == "live" and fit.account.spec.mode == "paper":
        yield Problem(
            "PaperAccountForLiveBot",
            f"{fit.path}.account",
            f"a live bot cannot trade on paper account {fit.name!r}",
        )


@check
def paper_bot_not_on_keyed_account(fit: AccountFit) -> Iterator[Problem]:
    """A paper bot never receives the keys of a sandbox or live account: with them it
    would place real orders (tenancy review, finding 4)."""
    if fit.bot.spec.mode == "paper" and fit.account.spec.mode != "paper":
        yield Problem(
            "AccountModeForPaperBot",
            f"{fit.path}.account",
            f"a paper bot cannot use {fit.account.spec.mode} account {fit.name!r}: it would "
            "receive the account's keys; use a paper account",
        )


@check
def live_account_has_credentials(fit: AccountFit) -> Iterator[Problem]:
    spec = fit.account.spec
    if fit.bot.spec.mode == "live" and spec.mode != "paper" and not spec.credentials:
        yield Problem(
            "AccountCredentialsMissing",
            f"{fit.path}.account",
            f"ExchangeAccount {fit.name!r} has no credentials",
        )


@check
def symbols_fit_market_type(fit: AccountFit) -> Iterator[Problem]:
    market_type = fit.account.spec.market_type
    derivative = market_type != "spot"
    for position, symbol in enumerate(fit.entry.exchange.symbols):
        if (":" in symbol) != derivative:
            expected = "BASE/QUOTE:SETTLE" if derivative else "BASE/QUOTE"
            yield Problem(
                "SymbolMarketTypeMismatch",
                f"{fit.path}.symbols[{position}]",
                f"{symbol} does not fit {market_type} account {fit.name!r}; expected {expected}",
            )


@check
def vault_configured(fit: AccountFit) -> Iterator[Problem]:
    settings = fit.entry.inputs.settings
    credentials = fit.account.spec.credentials
    if (
        settings is not None
        and fit.bot.spec.mode == "live"
        and credentials is not None
        and credentials.vault is not None
        and settings.credentials_delivery == "vault"
        and settings.vault_address is None
    ):
        yield Problem(
            "VaultNotConfigured",
            f"{fit.path}.account",
            f"ExchangeAccount {fit.name!r} uses vault but the operator has no vault address",
        )


@check
def credentials_ready(fit: AccountFit) -> Iterator[Problem]:
    """A sandbox/live account whose Vault secret is not ready keeps the bot out of Running:
    False always; Unknown too when the operator checks Vault itself (not checked yet,
    Vault unreachable). Without operator-side Vault the condition is always Unknown and
    the runtime is the judge. A secretRef account (any mode) must be True: its Secret
    exists and carries the tradebot label."""
    account, settings = fit.account, fit.entry.inputs.settings
    credentials = account.spec.credentials
    if credentials is None:
        return
    # A secretRef Secret is mounted into the pod whatever the mode: the operator always
    # checks it (present, labelled for tradebot) and nothing runs until it has.
    secret_ref = credentials.secret_ref is not None
    if not secret_ref and (account.spec.mode == "paper" or credentials.vault is None):
        return
    status = account.status
    condition = next(
        (c for c in (status.conditions if status else []) if c.type == "CredentialsReady"), None
    )
    managed = secret_ref or (settings is not None and settings.vault_managed)
    blocking = {"False", "Unknown"} if managed else {"False"}
    if condition is not None and condition.status not in blocking:
        return
    if condition is None and not managed:
        return
    detail = (
        f"{condition.reason}: {condition.message}" if condition is not None else "not checked yet"
    )
    yield Problem(
        "CredentialsNotReady",
        f"{fit.path}.account",
        f"ExchangeAccount {account.metadata.name!r} credentials not ready ({detail})",
    )


BOT_CHECKS = (
    strategy_usable,
    pod_surface_allowed,
    priority_class_exists,
    risk_consistent,
    autoscaling_consistent,
    exchanges_usable,
)
EXCHANGE_CHECKS = (
    account_listed_once,
    shards_fit_symbols,
    symbols_in_allocation_quote,
    grid_trades_one_symbol,
    account_exists,
    account_fits,
)
FIT_CHECKS = (
    account_valid,
    live_bot_not_on_paper,
    paper_bot_not_on_keyed_account,
    live_account_has_credentials,
    symbols_fit_market_type,
    vault_configured,
    credentials_ready,
)


def validate_bot(
    bot: TradingBot,
    strategy: Strategy | None,
    accounts: Mapping[str, ExchangeAccount | None],
    settings: OperatorSettings | None = None,
    *,
    priority_class_exists: Callable[[str], bool] | None = None,
) -> list[Problem]:
    """Everything wrong with ``bot`` given its Strategy (None: not found) and the accounts
    it references (missing or None: not found). Strategy and account problems are reported
    on the bot's referencing field. ``priority_class_exists`` tells whether a PriorityClass
    exists (None: not checked)."""
    inputs = BotInputs(bot, strategy, accounts, settings, priority_class_exists)
    return run_checks(BOT_CHECKS, inputs)
