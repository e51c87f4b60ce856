"""Which status changes of a bot are worth an Event (one per transition, Warning when a
problem of its inputs causes it), and a missing PriorityClass as a named waiting problem
instead of a bot Pending without a reason."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tradebot_operator.api import ExchangeAccount, Strategy, TradingBot
from tradebot_operator.checks import validate_bot
from tradebot_operator.controllers.tradingbot.inputs import input_fingerprint, resolve
from tradebot_operator.controllers.tradingbot.status import (
    WAITING_REASONS,
    Observation,
    compute_status,
    transition_event,
)
from tradebot_operator.installation import TenancyPolicy
from tradebot_operator.kube.conditions import find
from tradebot_operator.settings import OperatorSettings

NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
SETTINGS = OperatorSettings(tenancy=TenancyPolicy(allowed_priority_classes=("*",)))
STRATEGY: dict[str, Any] = {
    "metadata": {"name": "sma", "namespace": "ns", "uid": "s-1", "generation": 1},
    "spec": {"type": "sma-crossover",
             "parameters": {"fastPeriod": 5, "slowPeriod": 20, "orderSize": "25"}},
}  # fmt: skip
ACCOUNT: dict[str, Any] = {
    "metadata": {"name": "paper", "namespace": "ns", "uid": "a-1", "generation": 1},
    "spec": {"exchange": "binance", "marketType": "spot", "mode": "paper"},
}
BOT: dict[str, Any] = {
    "metadata": {"name": "btc", "namespace": "ns", "uid": "b-1", "generation": 1},
    "spec": {
        "strategyRef": {"name": "sma"},
        "mode": "paper",
        "exchanges": [{"account": "paper", "symbols": ["BTC/USDT"],
                       "allocation": {"quote": "USDT", "amount": "1000"}}],
        "risk": {"maxPositionNotional": "500", "maxOrderNotional": "50", "maxDailyLoss": "100"},
        "runtime": {"priorityClassName": "trading-high"},
    },
}  # fmt: skip


def strategies(ns: str, name: str) -> Mapping[str, Any] | None:
    return STRATEGY if name == "sma" else None


def accounts(ns: str, name: str) -> Mapping[str, Any] | None:
    return ACCOUNT if name == "paper" else None


def status(phase: str, reason: str, message: str = "m") -> dict[str, Any]:
    return {"phase": phase, "conditions": [{"type": "Ready", "reason": reason, "message": message}]}


def test_a_transition_caused_by_a_problem_is_one_warning() -> None:
    pending = status("Pending", "StrategyNotFound", "spec.strategyRef.name: not found")
    assert transition_event({}, pending, problems=True) == (
        "Warning", "StrategyNotFound", "phase None -> Pending: spec.strategyRef.name: not found"
    )  # fmt: skip
    assert transition_event(pending, pending, problems=True) is None  # nothing new
    # a new problem in the same phase is a transition too
    no_class = status("Pending", "PriorityClassNotFound", "spec.runtime.priorityClassName: x")
    assert transition_event(pending, no_class, problems=True) == (
        "Warning", "PriorityClassNotFound", "spec.runtime.priorityClassName: x"
    )  # fmt: skip


def test_the_runtimes_side_tells_phase_changes_warning_into_degraded() -> None:
    waiting = status("Pending", "WaitingForRuntime")
    assert transition_event(status("Pending", "StrategyNotFound"), waiting, problems=False) is None
    assert transition_event({}, waiting, problems=False) == (
        "Normal", "WaitingForRuntime", "phase None -> Pending: m"
    )  # fmt: skip
    running = status("Running", "AllShardsReady")
    assert transition_event(waiting, running, problems=False)[0] == "Normal"  # type: ignore[index]
    degraded = status("Degraded", "ShardsNotReady")
    assert transition_event(running, degraded, problems=False)[0] == "Warning"  # type: ignore[index]


def test_a_missing_priority_class_is_a_named_waiting_problem() -> None:
    bot = TradingBot.model_validate(BOT)
    strategy = Strategy.model_validate(STRATEGY)
    account = {"paper": ExchangeAccount.model_validate(ACCOUNT)}
    problems = validate_bot(bot, strategy, account, SETTINGS, priority_class_exists=lambda _: False)
    assert [(p.reason, p.field) for p in problems] == [
        ("PriorityClassNotFound", "spec.runtime.priorityClassName")
    ]
    assert "'trading-high' does not exist" in problems[0].message
    assert (
        validate_bot(bot, strategy, account, SETTINGS, priority_class_exists=lambda _: True) == []
    )
    assert validate_bot(bot, strategy, account, SETTINGS) == []  # not indexed: not checked

    new = compute_status(
        Observation(generation=1, suspended=False, halted=False, problems=problems), None, NOW
    )
    ready = find(new["conditions"], "Ready")
    assert new["phase"] == "Pending" and "PriorityClassNotFound" in WAITING_REASONS
    assert ready is not None and ready["reason"] == "PriorityClassNotFound"
    assert "spec.runtime.priorityClassName: PriorityClass 'trading-high'" in ready["message"]
    assert new["summary"]["reason"] == "PriorityClassNotFound"  # the REASON column


def test_the_priority_class_appearing_changes_the_inputs() -> None:
    existing: set[str] = set()

    def exists(name: str) -> bool:
        return name in existing

    resolved = resolve(BOT, strategies, accounts, SETTINGS, exists)
    assert [p.reason for p in resolved.problems] == ["PriorityClassNotFound"]
    before = input_fingerprint(BOT, strategies, accounts, exists)
    existing.add("trading-high")
    assert input_fingerprint(BOT, strategies, accounts, exists) != before  # a new plan
    assert resolve(BOT, strategies, accounts, SETTINGS, exists).problems == []
