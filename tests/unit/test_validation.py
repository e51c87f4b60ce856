"""Semantic validation (what the API server cannot check), table-driven: each case breaks
one thing and expects exactly that reason on exactly that field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tradebot_operator.api import ExchangeAccount, Strategy, TradingBot
from tradebot_operator.checks import (
    Problem,
    errors,
    parse_resource,
    validate_account,
    validate_bot,
    validate_strategy,
)
from tradebot_operator.settings import OperatorSettings

ACCOUNT: dict[str, Any] = {
    "metadata": {"name": "acct", "namespace": "ns"},
    "spec": {"exchange": "binance", "marketType": "spot", "mode": "paper"},
}
LIVE_ACCOUNT: dict[str, Any] = {
    "metadata": {"name": "live", "namespace": "ns"},
    "spec": {
        "exchange": "binance",
        "mode": "live",
        "credentials": {"vault": {"path": "tradebot/ns/binance"}},
    },
}
STRATEGY: dict[str, Any] = {
    "metadata": {"name": "strat", "namespace": "ns"},
    "spec": {
        "type": "sma-crossover",
        "parameters": {"fastPeriod": 5, "slowPeriod": 20, "orderSize": "10"},
    },
}
BOT: dict[str, Any] = {
    "metadata": {"name": "bot", "namespace": "ns", "uid": "u"},
    "spec": {
        "strategyRef": {"name": "strat"},
        "mode": "paper",
        "exchanges": [
            {
                "account": "acct",
                "symbols": ["BTC/USDT", "ETH/USDT"],
                "allocation": {"quote": "USDT", "amount": "1000"},
            }
        ],
        "risk": {"maxPositionNotional": "500", "maxOrderNotional": "50", "maxDailyLoss": "100"},
    },
}
SETTINGS = OperatorSettings(vault_address="https://vault:8200")


def patch(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    result = copy.deepcopy(raw)
    *parents, last = path.split(".")
    node: Any = result
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return result


def reasons(problems: list[Problem]) -> set[tuple[str, str]]:
    return {(p.reason, p.field) for p in problems}


def test_valid_inputs_have_no_problems() -> None:
    assert validate_account(ExchangeAccount.model_validate(ACCOUNT)) == []
    assert validate_account(ExchangeAccount.model_validate(LIVE_ACCOUNT)) == []
    assert validate_strategy(Strategy.model_validate(STRATEGY)) == []
    bot = TradingBot.model_validate(BOT)
    accounts = {"acct": ExchangeAccount.model_validate(ACCOUNT)}
    assert validate_bot(bot, Strategy.model_validate(STRATEGY), accounts, SETTINGS) == []


ACCOUNT_CASES = [
    (
        "unknown-exchange",
        ACCOUNT,
        "spec.exchange",
        "notanexchange",
        "UnknownExchange",
        "spec.exchange",
    ),
    ("market-type-unsupported", ACCOUNT, "spec.exchange", "kraken", None, None),
    (
        "sandbox-without-credentials",
        ACCOUNT,
        "spec.mode",
        "sandbox",
        "CredentialsMissing",
        "spec.credentials",
    ),
    (
        "live-without-credentials",
        LIVE_ACCOUNT,
        "spec.credentials",
        None,
        "CredentialsMissing",
        "spec.credentials",
    ),
    (
        "both-credential-sources",
        LIVE_ACCOUNT,
        "spec.credentials.secretRef",
        {"name": "s"},
        "CredentialsAmbiguous",
        "spec.credentials",
    ),
    (
        "no-credential-source",
        LIVE_ACCOUNT,
        "spec.credentials",
        {},
        "CredentialsAmbiguous",
        "spec.credentials",
    ),
    (
        "live-plain-http",
        LIVE_ACCOUNT,
        "spec.endpoint",
        "http://10.0.0.1",
        "InsecureEndpoint",
        "spec.endpoint",
    ),
    ("sandbox-unsupported", LIVE_ACCOUNT, "spec.exchange", "kraken", None, None),
]


@pytest.mark.parametrize(
    ("base", "path", "value", "reason", "field"),
    [case[1:] for case in ACCOUNT_CASES],
    ids=[case[0] for case in ACCOUNT_CASES],
)
def test_account_problems(
    base: dict[str, Any], path: str, value: Any, reason: str | None, field: str | None
) -> None:
    account = ExchangeAccount.model_validate(patch(base, path, value))
    problems = validate_account(account)
    if reason is None:  # a valid variation: must stay clean
        assert errors(problems) == []
    else:
        assert (reason, field) in reasons(problems)


def test_market_type_unsupported() -> None:
    raw = patch(patch(ACCOUNT, "spec.exchange", "kraken"), "spec.marketType", "swap")
    assert ("MarketTypeUnsupported", "spec.marketType") in reasons(
        validate_account(ExchangeAccount.model_validate(raw))
    )


def test_sandbox_unsupported_without_endpoint() -> None:
    raw = patch(patch(LIVE_ACCOUNT, "spec.exchange", "kraken"), "spec.mode", "sandbox")
    account = ExchangeAccount.model_validate(raw)
    assert ("SandboxUnsupported", "spec.mode") in reasons(validate_account(account))
    with_endpoint = ExchangeAccount.model_validate(patch(raw, "spec.endpoint", "http://sim:1"))
    assert ("SandboxUnsupported", "spec.mode") not in reasons(validate_account(with_endpoint))


def test_secret_ref_is_only_a_warning() -> None:
    raw = patch(LIVE_ACCOUNT, "spec.credentials", {"secretRef": {"name": "keys"}})
    problems = validate_account(ExchangeAccount.model_validate(raw))
    assert [(p.reason, p.severity) for p in problems] == [("DevelopmentCredentials", "Warning")]
    assert errors(problems) == []


STRATEGY_CASES = [
    (
        "bad-parameter",
        "spec.parameters.slowPeriod",
        2,
        "InvalidParameters",
        "spec.parameters.slowPeriod",
    ),
    (
        "missing-parameter",
        "spec.parameters",
        {"fastPeriod": 5, "slowPeriod": 20},
        "InvalidParameters",
        "spec.parameters.orderSize",
    ),
    (
        "python-without-module-and-image",
        "spec",
        {"type": "python"},
        "InvalidParameters",
        "spec.python",
    ),
    (
        "python-block-on-builtin",
        "spec.python",
        {"module": "a.b:C", "image": "i"},
        "PythonNotAllowed",
        "spec.python",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "reason", "field"),
    [case[1:] for case in STRATEGY_CASES],
    ids=[case[0] for case in STRATEGY_CASES],
)
def test_strategy_problems(path: str, value: Any, reason: str, field: str) -> None:
    strategy = Strategy.model_validate(patch(STRATEGY, path, value))
    assert (reason, field) in reasons(validate_strategy(strategy))


EX = "spec.exchanges.0"
BOT_CASES: list[tuple[str, str, Any, str, str]] = [
    (
        "live-bot-on-paper-account",
        "spec.mode",
        "live",
        "PaperAccountForLiveBot",
        "spec.exchanges[0].account",
    ),
    ("missing-account", f"{EX}.account", "ghost", "AccountNotFound", "spec.exchanges[0].account"),
    ("shards-above-symbols", f"{EX}.shards", 3, "TooManyShards", "spec.exchanges[0].shards"),
    (
        "quote-mismatch",
        f"{EX}.symbols",
        ["BTC/EUR"],
        "QuoteMismatch",
        "spec.exchanges[0].symbols[0]",
    ),
    (
        "derivative-symbol-on-spot",
        f"{EX}.symbols",
        ["BTC/USDT:USDT"],
        "SymbolMarketTypeMismatch",
        "spec.exchanges[0].symbols[0]",
    ),
    (
        "order-above-position",
        "spec.risk.maxOrderNotional",
        "600",
        "RiskInconsistent",
        "spec.risk.maxOrderNotional",
    ),
    (
        "autoscaling-min-above-max",
        "spec.autoscaling",
        {"enabled": True, "minReplicas": 3, "maxReplicas": 2},
        "AutoscalingInconsistent",
        "spec.autoscaling.minReplicas",
    ),
    (
        "duplicate-account",
        "spec.exchanges.1",
        {
            "account": "acct",
            "symbols": ["SOL/USDT"],
            "allocation": {"quote": "USDT", "amount": "1"},
        },
        "DuplicateAccount",
        "spec.exchanges[1].account",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "reason", "field"),
    [case[1:] for case in BOT_CASES],
    ids=[case[0] for case in BOT_CASES],
)
def test_bot_problems(path: str, value: Any, reason: str, field: str) -> None:
    raw = patch(BOT, path, value) if not path.endswith(".1") else _append_exchange(value)
    bot = TradingBot.model_validate(raw)
    accounts = {"acct": ExchangeAccount.model_validate(ACCOUNT)}
    assert (reason, field) in reasons(
        validate_bot(bot, Strategy.model_validate(STRATEGY), accounts, SETTINGS)
    )


def _append_exchange(exchange: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(BOT)
    raw["spec"]["exchanges"].append(exchange)
    return raw


def test_missing_strategy() -> None:
    bot = TradingBot.model_validate(BOT)
    accounts = {"acct": ExchangeAccount.model_validate(ACCOUNT)}
    assert reasons(validate_bot(bot, None, accounts)) == {
        ("StrategyNotFound", "spec.strategyRef.name")
    }


def test_invalid_strategy_is_reported_on_the_bot_with_the_exact_field() -> None:
    strategy = Strategy.model_validate(patch(STRATEGY, "spec.parameters.slowPeriod", 1))
    bot = TradingBot.model_validate(BOT)
    problems = validate_bot(bot, strategy, {"acct": ExchangeAccount.model_validate(ACCOUNT)})
    (problem,) = problems
    assert problem.reason == "StrategyInvalid"
    assert "spec.parameters.slowPeriod" in problem.message


def test_invalid_account_is_reported_on_the_bot() -> None:
    account = ExchangeAccount.model_validate(patch(ACCOUNT, "spec.exchange", "nope"))
    bot = TradingBot.model_validate(BOT)
    problems = validate_bot(bot, Strategy.model_validate(STRATEGY), {"acct": account})
    assert ("AccountInvalid", "spec.exchanges[0].account") in reasons(problems)


def test_live_bot_with_vault_needs_a_vault_address() -> None:
    bot = TradingBot.model_validate(patch(patch(BOT, "spec.mode", "live"), f"{EX}.account", "live"))
    accounts = {"live": ExchangeAccount.model_validate(LIVE_ACCOUNT)}
    strategy = Strategy.model_validate(STRATEGY)
    assert validate_bot(bot, strategy, accounts, SETTINGS) == []
    assert ("VaultNotConfigured", "spec.exchanges[0].account") in reasons(
        validate_bot(bot, strategy, accounts, OperatorSettings())
    )


def test_grid_strategy_trades_one_symbol() -> None:
    grid = patch(
        patch(STRATEGY, "spec.type", "grid"),
        "spec.parameters",
        {"lower": "1", "upper": "2", "levels": 3, "orderSize": "1"},
    )
    bot = TradingBot.model_validate(BOT)
    problems = validate_bot(
        bot, Strategy.model_validate(grid), {"acct": ExchangeAccount.model_validate(ACCOUNT)}
    )
    assert ("GridNeedsOneSymbol", "spec.exchanges[0].symbols") in reasons(problems)


def test_parse_resource_turns_model_errors_into_problems() -> None:
    bad = patch(BOT, f"{EX}.allocation.amount", 1.5)
    bot, problems = parse_resource(TradingBot, bad)
    assert bot is None
    assert reasons(problems) == {("InvalidSpec", "spec.exchanges[0].allocation.amount")}
    good, none = parse_resource(TradingBot, BOT)
    assert isinstance(good, TradingBot) and none == []


def test_problem_reasons_are_camel_case() -> None:
    import re

    bot = TradingBot.model_validate(patch(BOT, "spec.mode", "live"))
    problems = validate_bot(bot, None, {})
    assert problems
    for problem in problems:
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", problem.reason)
        assert str(problem).startswith(problem.field + ": ")
