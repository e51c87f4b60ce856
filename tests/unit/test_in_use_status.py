"""In-use protection in the status of Strategies and ExchangeAccounts: a deletion that
waits for the bots using the object says so (Deletable False, reason InUse, the bots
named); nothing changes for an object that is not being deleted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tradebot_operator.controllers.references.status import (
    DELETABLE,
    IN_USE_FINALIZER,
    IN_USE_NAMES,
    account_status,
    strategy_status,
)
from tradebot_operator.kube.conditions import find

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _account(deleting: bool = False, status: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "paper", "namespace": "prod", "generation": 1}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    body: dict[str, Any] = {
        "apiVersion": "tradebot.io/v1alpha1", "kind": "ExchangeAccount", "metadata": meta,
        "spec": {"exchange": "binance", "mode": "paper"},
    }  # fmt: skip
    if status is not None:
        body["status"] = status
    return body


def _strategy(deleting: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "sma", "namespace": "prod", "generation": 1}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "apiVersion": "tradebot.io/v1alpha1", "kind": "Strategy", "metadata": meta,
        "spec": {"type": "sma-crossover", "timeframe": "1m",
                 "parameters": {"fastPeriod": 5, "slowPeriod": 20, "orderSize": "25"}},
    }  # fmt: skip


def test_not_being_deleted_has_no_deletable_condition() -> None:
    status, _ = account_status(_account(), ["btc"], now=NOW)
    assert find(status["conditions"], DELETABLE) is None
    assert status["usedBy"] == ["btc"]


def test_deletion_in_use_names_the_bots_and_keeps_ready() -> None:
    status, _ = account_status(_account(deleting=True), ["eth", "btc", "btc"], now=NOW)
    cond = find(status["conditions"], DELETABLE)
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("False", "InUse")
    assert "btc, eth" in cond["message"] and IN_USE_FINALIZER in cond["message"]
    assert "ExchangeAccount" in cond["message"]
    # The bots keep trading on it: its own verdict is untouched.
    assert find(status["conditions"], "Ready")["status"] == "True"  # type: ignore[index]

    status, _ = strategy_status(_strategy(deleting=True), ["btc"], now=NOW)
    cond = find(status["conditions"], DELETABLE)
    assert cond is not None and cond["reason"] == "InUse" and "Strategy" in cond["message"]
    assert find(status["conditions"], "Valid")["status"] == "True"  # type: ignore[index]


def test_many_users_are_cut_in_the_message_but_not_in_used_by() -> None:
    users = [f"bot-{i:03d}" for i in range(IN_USE_NAMES + 5)]
    status, _ = account_status(_account(deleting=True), users, now=NOW)
    cond = find(status["conditions"], DELETABLE)
    assert cond is not None and cond["message"].endswith("and 5 more")
    assert status["usedBy"] == users


def test_last_user_gone_flips_deletable_true() -> None:
    blocked, _ = account_status(_account(deleting=True), ["btc"], now=NOW)
    status, _ = account_status(_account(deleting=True, status=blocked), [], now=NOW)
    cond = find(status["conditions"], DELETABLE)
    assert cond is not None and (cond["status"], cond["reason"]) == ("True", "NotInUse")
    # Never in use while being deleted: no condition at all.
    status, _ = account_status(_account(deleting=True), [], now=NOW)
    assert find(status["conditions"], DELETABLE) is None
