"""What one pass over a TradingBot reads: the bot and everything it refers to, parsed and
validated (``resolve``), and the identity of those inputs (``input_fingerprint``) that
tells whether a cached plan still holds."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tradebot_contracts.types import stricter_trading_state
from tradebot_operator.api.exchange_account import ExchangeAccount, ExchangeAccountStatus
from tradebot_operator.api.strategy import Strategy
from tradebot_operator.api.trading_bot import TradingBot
from tradebot_operator.checks import Problem, errors, parse, validate_bot
from tradebot_operator.controllers.tradingbot.status import LeaseObservation
from tradebot_operator.kube.indexes import BodyLookup, IndexView, every
from tradebot_operator.settings import OperatorSettings

# (namespace, bot) -> Lease observations of that bot.
LeaseLookup = Callable[[str, str], Iterable[LeaseObservation]]
# PriorityClass name -> whether it exists.
PriorityClassLookup = Callable[[str], bool]


def lease_lookup(index: IndexView) -> LeaseLookup:
    def lookup(ns: str, bot: str) -> Iterable[LeaseObservation]:
        return every(index, (ns, bot))

    return lookup


def priority_class_lookup(index: IndexView) -> PriorityClassLookup:
    """From the index of PriorityClass names (handlers/indexes.py)."""
    return lambda name: bool(index.get(name))


@dataclass
class ResolvedBot:
    bot: TradingBot | None
    strategy: Strategy | None
    accounts: dict[str, ExchangeAccount | None]
    problems: list[Problem]

    @property
    def halted(self) -> bool:
        """The stricter tradingState of the bot and its accounts is Halted."""
        if self.bot is None:
            return False
        states = [self.bot.spec.trading_state]
        states += [a.spec.trading_state for a in self.accounts.values() if a is not None]
        return stricter_trading_state(*states) == "Halted"


def resolve(
    body: Mapping[str, Any],
    strategies: BodyLookup,
    accounts: BodyLookup,
    settings: OperatorSettings | None = None,
    priority_classes: PriorityClassLookup | None = None,
) -> ResolvedBot:
    """Parse the bot and everything it refers to; collect every problem.
    ``priority_classes`` (None: not checked) tells which PriorityClasses exist."""
    bot, problems = parse(TradingBot, body)
    if bot is None:
        return ResolvedBot(None, None, {}, problems)
    ns = bot.metadata.namespace or ""
    strategy: Strategy | None = None
    raw_strategy = strategies(ns, bot.spec.strategy_ref.name)
    if raw_strategy is not None:
        strategy, strategy_problems = parse(Strategy, raw_strategy)
        problems += [
            Problem("StrategyInvalid", "spec.strategyRef.name", f"Strategy: {p}")
            for p in strategy_problems
        ]
    resolved_accounts: dict[str, ExchangeAccount | None] = {}
    for exchange in bot.spec.exchanges:
        raw = accounts(ns, exchange.account)
        account, account_problems = (None, []) if raw is None else parse(ExchangeAccount, raw)
        if account is not None and raw is not None:  # CredentialsReady feeds validation
            account = account.model_copy(update={"status": _account_status(raw)})
        problems += [
            Problem("ExchangeAccountInvalid", "spec.exchanges", f"{exchange.account}: {p}")
            for p in account_problems
        ]
        resolved_accounts[exchange.account] = account
    if not problems:
        problems = errors(
            validate_bot(
                bot, strategy, resolved_accounts, settings, priority_class_exists=priority_classes
            )
        )
    return ResolvedBot(bot, strategy, resolved_accounts, problems)


def _generation(body: Mapping[str, Any] | None) -> tuple[str, int] | None:
    if body is None:
        return None
    meta = body.get("metadata", {})
    return (str(meta.get("uid", "")), int(meta.get("generation") or 0))


def _account_status(raw: Mapping[str, Any]) -> ExchangeAccountStatus | None:
    """The account's status as we wrote it (parse() drops status); None if unreadable."""
    try:
        return ExchangeAccountStatus.model_validate(raw.get("status") or {})
    except ValidationError:
        return None


def _credentials_ready(body: Mapping[str, Any] | None) -> tuple[Any, ...] | None:
    """An account's CredentialsReady (status, reason): a status change, not a generation."""
    if body is None:
        return None
    for condition in (body.get("status") or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "CredentialsReady":
            return (condition.get("status"), condition.get("reason"))
    return None


def input_fingerprint(
    body: Mapping[str, Any],
    strategies: BodyLookup,
    accounts: BodyLookup,
    priority_classes: PriorityClassLookup | None = None,
) -> tuple[Any, ...]:
    """Identity and generation of the bot and of everything it references (for its
    PriorityClass: whether it exists)."""
    meta, spec = body.get("metadata", {}), body.get("spec") or {}
    ns = meta.get("namespace", "")
    strategy_name = (spec.get("strategyRef") or {}).get("name")
    account_names = [e.get("account") for e in spec.get("exchanges") or [] if isinstance(e, dict)]
    runtime = spec.get("runtime") or {}
    priority_class = runtime.get("priorityClassName") if isinstance(runtime, dict) else None
    priority_class_exists = (
        priority_classes(priority_class)
        if priority_classes is not None and isinstance(priority_class, str) and priority_class
        else None
    )
    return (
        _generation(body),
        strategy_name,
        _generation(strategies(ns, strategy_name) if isinstance(strategy_name, str) else None),
        tuple(
            (name, _generation(raw), _credentials_ready(raw))
            for name, raw in (
                (name, accounts(ns, name) if isinstance(name, str) else None)
                for name in account_names
            )
        ),
        priority_class_exists,
    )
