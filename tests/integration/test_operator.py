"""The operator against the real API server: children, status, references, lifecycle.

The operator runs as a real process (fixture `operator_process`). Where a test needs a
runtime's heartbeat, it writes the Lease exactly as a runtime pod would (holder, renewTime
and the heartbeat annotation from the shared contract).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from support.cluster import Cluster
from support.objects import account, apply, beat, bot, eventually, get, phase_is, strategy
from support.operator import OperatorProcess
from tradebot_contracts.names import exchange_object_name, lease_name

pytestmark = pytest.mark.integration

BTC = exchange_object_name("btc", "paper")  # Deployment, ConfigMap, PDB of bot btc x paper
BTC_LEASE = lease_name("btc", "paper", 0)


@pytest.fixture
def ns(cluster: Cluster, operator_process: OperatorProcess) -> str:
    return cluster.namespace("op")


def test_bot_gets_every_child_and_status_columns(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, account(), strategy(), bot())
    deploy = eventually(lambda: get(cluster, ns, "deployment", BTC), what="deployment")
    uid = get(cluster, ns, "tradingbot", "btc")["metadata"]["uid"]  # type: ignore[index]
    assert deploy["metadata"]["ownerReferences"][0]["uid"] == uid
    assert deploy["spec"]["replicas"] == 2
    pod = deploy["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert not any("KEY" in e["name"] or "SECRET" in e["name"] for e in container.get("env", []))

    children = [
        ("serviceaccount", "btc-runtime"),
        ("configmap", BTC),
        ("lease", BTC_LEASE),
        ("role", "btc-runtime"),
        ("rolebinding", "btc-runtime"),
        ("poddisruptionbudget", BTC),
    ]
    for kind, name in children:
        obj = eventually(lambda k=kind, n=name: get(cluster, ns, k, n), what=f"{kind}/{name}")
        assert obj["metadata"]["ownerReferences"][0]["uid"] == uid, kind

    role = get(cluster, ns, "role", "btc-runtime")
    assert role is not None
    lease_rules = [r for r in role["rules"] if "leases" in r["resources"]]
    assert lease_rules and all(r["resourceNames"] == [BTC_LEASE] for r in lease_rules)
    assert "create" not in {v for r in role["rules"] for v in r["verbs"]}

    config = json.loads(get(cluster, ns, "configmap", BTC)["data"]["runtime.json"])  # type: ignore[index]
    assert config["symbols"] == ["BTC/USDT", "ETH/USDT"] or sorted(config["symbols"]) == [
        "BTC/USDT", "ETH/USDT"]  # fmt: skip

    status = eventually(phase_is(cluster, ns, "btc", "Pending"), what="Pending")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "WaitingForRuntime"

    # The runtime leader's heartbeat turns the bot Running and fills every column.
    beat(cluster, ns, BTC_LEASE, "btc-paper-abc", open_orders=2,
         realized_pnl=Decimal("12.5"), unrealized_pnl=Decimal("-2.25"))  # fmt: skip
    status = eventually(phase_is(cluster, ns, "btc", "Running"), what="Running")
    assert status["pnl"] == "10.25"
    assert status["exchanges"]["paper"]["leader"] == "btc-paper-abc"
    assert status["exchanges"]["paper"]["openOrders"] == 2
    wide = cluster.kubectl("get", "tradingbots", "-n", ns, "-o", "wide").stdout
    header, row = wide.splitlines()[:2]
    for column in ("STRATEGY", "MODE", "EXCHANGES", "PHASE", "READY", "PNL", "AGE", "LEADER"):
        assert column in header
    for value in ("sma", "paper", "Running", "1/1", "10.25", "btc-paper-abc"):
        assert value in row, (value, row)


def test_missing_strategy_is_pending_then_reconciles_when_it_appears(
    cluster: Cluster, ns: str
) -> None:
    apply(cluster, ns, account(), bot(strategy_name="later"))
    status = eventually(phase_is(cluster, ns, "btc", "Pending"), what="Pending")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "StrategyNotFound"
    assert "later" in ready["message"]
    assert get(cluster, ns, "deployment", BTC) is None
    events = cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout
    assert "StrategyNotFound" in events

    apply(cluster, ns, strategy("later"))
    eventually(lambda: get(cluster, ns, "deployment", BTC), what="deployment")


def test_risk_change_reaches_configmap_without_roll_and_symbol_change_rolls(
    cluster: Cluster, ns: str
) -> None:
    apply(cluster, ns, account(), strategy(), bot())
    deploy = eventually(lambda: get(cluster, ns, "deployment", BTC), what="deployment")
    template = deploy["spec"]["template"]

    changed = bot()
    changed["spec"]["risk"]["maxOrderNotional"] = "40"
    changed["spec"]["tradingState"] = "Halted"
    apply(cluster, ns, changed)

    def config_updated() -> Any:
        cm = get(cluster, ns, "configmap", BTC) or {}
        config = json.loads(cm.get("data", {}).get("runtime.json", "{}"))
        return config if config.get("tradingState") == "Halted" else None

    config = eventually(config_updated, what="ConfigMap tradingState")
    assert Decimal(config["risk"]["maxOrderNotional"]) == Decimal("40")
    assert get(cluster, ns, "deployment", BTC)["spec"]["template"] == template  # type: ignore[index]

    rolled = bot()
    rolled["spec"]["exchanges"][0]["symbols"] = ["BTC/USDT"]
    apply(cluster, ns, rolled)

    def template_changed() -> Any:
        current = (get(cluster, ns, "deployment", BTC) or {})["spec"]["template"]
        return current if current != template else None

    eventually(template_changed, what="pod template change after symbol change")


def test_suspend_scales_runtime_to_zero(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, account(), strategy(), bot(suspend=True))
    eventually(phase_is(cluster, ns, "btc", "Suspended"), what="Suspended")
    deploy = eventually(lambda: get(cluster, ns, "deployment", BTC), what="deployment")
    assert deploy["spec"]["replicas"] == 0


def test_deleting_the_bot_removes_every_child(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, account(), strategy(), bot())
    eventually(lambda: get(cluster, ns, "lease", BTC_LEASE), what="lease")
    cluster.kubectl("delete", "tradingbot", "btc", "-n", ns, "--timeout=60s")

    def all_gone() -> bool:
        names = cluster.kubectl(
            "get", "deployment,configmap,lease,serviceaccount,role,rolebinding,service,pdb",
            "-n", ns, "-l", "tradebot.io/bot=btc", "-o", "name",
        ).stdout.split()  # fmt: skip
        return not names

    eventually(all_gone, timeout=60, what="garbage collection of children")


def test_strategy_and_account_status_name_the_bad_field(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, strategy("bad", slowPeriod=3), account("paper"), bot(strategy_name="bad"))

    def valid_condition() -> Any:
        obj = get(cluster, ns, "strategy", "bad") or {}
        conds = (obj.get("status") or {}).get("conditions", [])
        return next((c for c in conds if c["type"] == "Valid"), None)

    cond = eventually(valid_condition, what="Valid condition")
    assert cond["status"] == "False"
    assert "slowPeriod" in cond["message"]

    def used_by() -> Any:
        obj = get(cluster, ns, "exchangeaccount", "paper") or {}
        return (obj.get("status") or {}).get("usedBy")

    assert eventually(used_by, timeout=45, what="usedBy") == ["btc"]
    status = eventually(phase_is(cluster, ns, "btc", "Failed"), what="Failed")
    assert any("slowPeriod" in c["message"] for c in status["conditions"])
