"""In-use protection against the real API server and the real operator: deleting a
Strategy or ExchangeAccount that a TradingBot uses waits (finalizer tradebot.io/in-use,
condition Deletable False with reason InUse naming the bot, one Warning event) while the
bot keeps its config; the moment the last bot is gone the deletion completes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from support.cluster import Cluster
from support.objects import account, apply, bot, eventually, get, strategy
from support.operator import OperatorProcess
from tradebot_contracts.names import exchange_object_name

pytestmark = pytest.mark.integration

IN_USE = "tradebot.io/in-use"


@pytest.fixture
def ns(cluster: Cluster, operator_process: OperatorProcess) -> str:
    return cluster.namespace("inuse")


def _soon(check: Callable[[], Any], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return False


def _finalizers(cluster: Cluster, ns: str, kind: str, name: str) -> list[str] | None:
    obj = get(cluster, ns, kind, name)
    return None if obj is None else list(obj["metadata"].get("finalizers") or [])


def _deletable(cluster: Cluster, ns: str, kind: str, name: str) -> dict[str, Any] | None:
    conditions = ((get(cluster, ns, kind, name) or {}).get("status") or {}).get("conditions")
    return next((c for c in conditions or [] if c["type"] == "Deletable"), None)


def _events(cluster: Cluster, ns: str, kind: str, name: str, reason: str) -> list[Any]:
    out = cluster.kubectl(
        "get", "events", "-n", ns, "-o", "json",
        f"--field-selector=involvedObject.kind={kind},involvedObject.name={name},reason={reason}",
    )  # fmt: skip
    return list(json.loads(out.stdout)["items"])


def _bot_config(cluster: Cluster, ns: str) -> str | None:
    cm = get(cluster, ns, "configmap", exchange_object_name("btc", "paper"))
    return None if cm is None else str(cm["data"]["runtime.json"])


@pytest.mark.parametrize(
    ("kind", "name", "event_kind"),
    [("exchangeaccount", "paper", "ExchangeAccount"), ("strategy", "sma", "Strategy")],
)
def test_deleting_a_used_object_waits_until_no_bot_uses_it(
    cluster: Cluster, ns: str, kind: str, name: str, event_kind: str
) -> None:
    apply(cluster, ns, account(), strategy(), bot())
    config = eventually(lambda: _bot_config(cluster, ns), what="the bot's ConfigMap")
    # the operator holds the object once it sees the bot (a soft wait: without any
    # protection the assertion after the delete says what went wrong)
    _soon(lambda: IN_USE in (_finalizers(cluster, ns, kind, name) or []), 30)

    cluster.kubectl("delete", kind, name, "-n", ns, "--wait=false")

    def settled() -> str | None:  # kopf's own finalizer goes (its timers stop); ours holds
        finalizers = _finalizers(cluster, ns, kind, name)
        return "gone" if finalizers is None else "held" if finalizers == [IN_USE] else None

    held = eventually(settled, 30, f"the {kind} held by {IN_USE} alone, or gone")
    assert held == "held", f"the {kind} was deleted although TradingBot btc uses it"
    cond = eventually(lambda: _deletable(cluster, ns, kind, name), 30, "Deletable condition")
    assert (cond["status"], cond["reason"]) == ("False", "InUse"), cond
    assert "btc" in cond["message"], cond
    time.sleep(3)  # the bot's passes that follow see the object being deleted
    obj = get(cluster, ns, kind, name)
    assert obj is not None and obj["metadata"].get("deletionTimestamp"), obj
    assert obj["status"]["usedBy"] == ["btc"]
    assert _bot_config(cluster, ns) == config  # the bot keeps its config
    bot_status = (get(cluster, ns, "tradingbot", "btc") or {}).get("status") or {}
    ready = next(c for c in bot_status.get("conditions", []) if c["type"] == "Ready")
    assert "NotFound" not in ready["reason"], ready
    # (events may wait up to 20 s behind a burst of reconciles)
    warnings = eventually(lambda: _events(cluster, ns, event_kind, name, "InUse"), 30, "event")
    assert [e["type"] for e in warnings] == ["Warning"], warnings  # posted once

    cluster.kubectl("delete", "tradingbot", "btc", "-n", ns, "--timeout=60s")
    eventually(lambda: get(cluster, ns, kind, name) is None, 30,
               f"the {kind} gone once the bot is gone")  # fmt: skip


def test_the_finalizer_follows_the_bots_spec(cluster: Cluster, ns: str) -> None:
    """A bot that moves to another account releases the old one at once (no timer wait)."""
    apply(cluster, ns, account(), account("other"), strategy(), bot())
    eventually(lambda: IN_USE in (_finalizers(cluster, ns, "exchangeaccount", "paper") or []),
               30, "paper protected")  # fmt: skip
    assert IN_USE not in (_finalizers(cluster, ns, "exchangeaccount", "other") or [])
    cluster.kubectl("delete", "exchangeaccount", "paper", "-n", ns, "--wait=false")
    eventually(lambda: _deletable(cluster, ns, "exchangeaccount", "paper"), 30, "InUse")

    moved = bot()
    moved["spec"]["exchanges"][0]["account"] = "other"
    apply(cluster, ns, moved)
    eventually(lambda: get(cluster, ns, "exchangeaccount", "paper") is None, 15,
               "paper gone once the bot moved away")  # fmt: skip
    eventually(lambda: IN_USE in (_finalizers(cluster, ns, "exchangeaccount", "other") or []),
               15, "other protected")  # fmt: skip
