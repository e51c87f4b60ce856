"""Children the API server refuses: retried 5 s, 10 s, 20 s ... at most 5 min apart (not on
every pass, whatever wakes the bot meanwhile), at once on new inputs, reset by a success;
the Reconciled condition names the child and carries the server's message.

The API server is a small stand-in (it refuses ConfigMaps with the Status body the real one
sends for one over 1 MiB); tests/integration/test_operator_robustness.py does the same
against the real API server and operator."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from support.kube_status import TOO_LONG, TOO_LONG_MESSAGE
from tradebot_operator.controllers.tradingbot.reconcile import (
    RETRY_MAX_SECONDS,
    BotReconciler,
    retry_delay,
)
from tradebot_operator.kube.client import KubeApiError, Manifest
from tradebot_operator.kube.conditions import find
from tradebot_operator.kube.inventory import Inventory
from tradebot_operator.kube.workqueue import backoff_delay
from tradebot_operator.settings import OperatorSettings

NS = "trading"
NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
STRATEGY: dict[str, Any] = {
    "apiVersion": "tradebot.io/v1alpha1",
    "kind": "Strategy",
    "metadata": {"name": "sma", "namespace": NS, "uid": "s-1", "generation": 1},
    "spec": {"type": "sma-crossover", "timeframe": "1m",
             "parameters": {"fastPeriod": 5, "slowPeriod": 20, "orderSize": "25"}},
}  # fmt: skip
ACCOUNT: dict[str, Any] = {
    "apiVersion": "tradebot.io/v1alpha1",
    "kind": "ExchangeAccount",
    "metadata": {"name": "paper", "namespace": NS, "uid": "a-1", "generation": 1},
    "spec": {"exchange": "binance", "marketType": "spot", "mode": "paper"},
}


def bot_body(generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "tradebot.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "btc", "namespace": NS, "uid": "b-1", "generation": generation,
                     "resourceVersion": "1"},
        "spec": {
            "strategyRef": {"name": "sma"},
            "mode": "paper",
            "exchanges": [{"account": "paper", "symbols": ["BTC/USDT"],
                           "allocation": {"quote": "USDT", "amount": "1000"}}],
            "risk": {"maxPositionNotional": "500", "maxOrderNotional": "50",
                     "maxDailyLoss": "100"},
        },
    }  # fmt: skip


def strategies(ns: str, name: str) -> Mapping[str, Any] | None:
    return STRATEGY if (ns, name) == (NS, "sma") else None


def accounts(ns: str, name: str) -> Mapping[str, Any] | None:
    return ACCOUNT if (ns, name) == (NS, "paper") else None


def no_leases(ns: str, bot: str) -> Iterable[Any]:
    return []


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RefusingApiServer:
    """Stands in for KubeClient: while ``refuse``, refuses every ConfigMap as kube-apiserver
    does one over 1 MiB; accepts everything else; counts applies."""

    def __init__(self) -> None:
        self.refuse = True
        self.applies: Counter[str] = Counter()
        self.version = 1

    async def apply(self, manifest: Manifest, *, force: bool = True) -> Manifest:
        self.applies[manifest["kind"]] += 1
        if self.refuse and manifest["kind"] == "ConfigMap":
            raise KubeApiError(422, "Unprocessable Entity", TOO_LONG)
        return {}

    async def patch_merge(self, *_: Any, **__: Any) -> Manifest:
        self.version += 1
        return {"metadata": {"resourceVersion": str(self.version)}}

    async def delete(self, *_: Any) -> bool:
        return True


def test_the_retry_schedule_doubles_from_five_seconds_up_to_five_minutes() -> None:
    assert [retry_delay(n) for n in range(1, 10)] == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    assert RETRY_MAX_SECONDS == 300
    assert retry_delay(10_000) == 300  # no overflow however long it has been failing
    assert backoff_delay(0, 5, 300) == 0
    assert [backoff_delay(n, 0.5, 60) for n in (1, 2, 3, 8, 9)] == [0.5, 1, 2, 60, 60]


async def test_refused_children_back_off_whatever_wakes_the_bot() -> None:
    api, clock, told = RefusingApiServer(), Clock(), []
    reconciler = BotReconciler(api, OperatorSettings(), Inventory(), clock=clock)  # type: ignore[arg-type]

    async def one_pass(body: dict[str, Any]) -> Any:
        return await reconciler.reconcile(
            body, strategies, accounts, no_leases, lambda *e: told.append(e), now=NOW
        )

    attempts, delays = [], []
    for step in range(40):  # a pass every 5 s for 200 s: what a fixed 5 s retry made
        result = await one_pass(bot_body())
        attempts.append(api.applies["ConfigMap"])
        delays.append(result.requeue_after)
        clock.now += 5
        if step == 0:
            reconciled = find(result.status["conditions"], "Reconciled")
            assert reconciled is not None and reconciled["reason"] == "ApplyFailed"
            assert reconciled["message"] == (
                f"ConfigMap btc-paper-e8909ee7: {TOO_LONG_MESSAGE} (422 Unprocessable Entity)"
            )
    # attempts at 0, 5, 15, 35, 75 and 155 s: six in 200 s, not forty
    assert api.applies["ConfigMap"] == 6, attempts
    assert delays[:5] == [5, 10, 5, 20, 15], delays  # mid-backoff: only what is left

    # New inputs (a spec change) retry at once and start the schedule again.
    result = await one_pass(bot_body(generation=2))
    assert api.applies["ConfigMap"] == 7 and result.requeue_after == 5

    # A success resets it: the next failure (in the periodic resync) waits 5 s again.
    api.refuse = False
    clock.now += 5
    result = await one_pass(bot_body(generation=2))
    assert api.applies["ConfigMap"] == 8
    assert result.requeue_after == pytest.approx(600)
    assert find(result.status["conditions"], "Reconciled")["reason"] == "ChildrenApplied"  # type: ignore[index]
    api.refuse = True
    clock.now += 600
    result = await one_pass(bot_body(generation=2))
    assert api.applies["ConfigMap"] == 9 and result.requeue_after == 5
    assert not [e for e in told if e[1] == "ChildrenUpdated"]  # a resync changes nothing
