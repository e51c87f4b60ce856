"""Robustness of the operator against the real API server: children the API server
refuses are retried with a capped exponential backoff (not in a tight loop) and the
condition carries the server's message, each transition posts exactly one Event, and a
missing PriorityClass is named instead of leaving the bot Pending without a reason."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import yaml

from support.cluster import Cluster
from support.objects import account, apply, bot, eventually, get, phase_is, strategy
from support.operator import OperatorProcess
from tradebot_contracts.names import exchange_object_name

pytestmark = pytest.mark.integration

CONFIGMAP_LIMIT = 1024 * 1024  # core.MaxSecretSize: data + binaryData of a ConfigMap
CHILD = exchange_object_name("btc", "paper")  # the bot's Deployment and ConfigMap


@pytest.fixture
def ns(cluster: Cluster, operator_process: OperatorProcess) -> str:
    return cluster.namespace("robust")


def condition(cluster: Cluster, ns: str, name: str, type_: str) -> dict[str, Any] | None:
    status = (get(cluster, ns, "tradingbot", name) or {}).get("status") or {}
    return next((c for c in status.get("conditions", []) if c["type"] == type_), None)


def condition_reason(cluster: Cluster, ns: str, type_: str, reason: str) -> Any:
    cond = condition(cluster, ns, "btc", type_)
    return cond if cond is not None and cond["reason"] == reason else None


def events_of(cluster: Cluster, ns: str, name: str | None = None) -> list[dict[str, Any]]:
    """The operator's Events in ``ns`` (about the object ``name`` only, if given)."""
    selector = [f"--field-selector=involvedObject.name={name}"] if name else []
    out = cluster.kubectl("get", "events", "-n", ns, *selector, "-o", "json")
    return [
        e for e in json.loads(out.stdout)["items"]
        if (e.get("source") or {}).get("component") == "tradebot-operator"
    ]  # fmt: skip


def test_refused_children_back_off_and_the_condition_carries_the_server_message(
    cluster: Cluster, operator_process: OperatorProcess, ns: str
) -> None:
    """A python Strategy may carry any parameters; the bot's ConfigMap holds them. Just
    over 1 MiB is fine for the Strategy (etcd takes 1.5 MiB) but the API server refuses
    the ConfigMap: every apply fails, and must be retried 5 s, 10 s, 20 s ... apart."""
    big = {
        "apiVersion": "tradebot.io/v1alpha1",
        "kind": "Strategy",
        "metadata": {"name": "huge"},
        "spec": {
            "type": "python",
            "timeframe": "1m",
            "python": {"module": "desk.huge:Huge", "image": "registry.example.com/desk:1"},
            "parameters": {"blob": "x" * (CONFIGMAP_LIMIT + 50_000)},
        },
    }
    # create, not a client-side apply: its last-applied annotation would exceed 256 KiB
    cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(big))
    apply(cluster, ns, account(), bot(strategy_name="huge"))
    failed = eventually(
        lambda: condition_reason(cluster, ns, "Reconciled", "ApplyFailed"),
        what="Reconciled=False ApplyFailed",
    )
    assert failed["status"] == "False"

    marker = f"applying children of {ns}/btc failed"
    start = operator_process.log_text().count(marker)
    assert start >= 1
    time.sleep(30)
    attempts = operator_process.log_text().count(marker) - start
    # a fixed 5 s retry makes 6 attempts in 30 s (more with every wake); 5, 10, 20 s: <= 3
    assert attempts <= 3, f"{attempts} apply attempts in 30 s"

    message = condition(cluster, ns, "btc", "Reconciled")["message"]  # type: ignore[index]
    assert "b'" not in message and '"kind":"Status"' not in message, message
    assert message.startswith(f'ConfigMap {CHILD}: ConfigMap "{CHILD}" is invalid'), message
    assert f"{CONFIGMAP_LIMIT} bytes (422 Unprocessable Entity)" in message, message
    assert phase_is(cluster, ns, "btc", "Degraded")()


def test_one_transition_posts_exactly_one_event(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, account(), bot(strategy_name="ghost"))
    eventually(phase_is(cluster, ns, "btc", "Pending"), what="Pending")
    # a few more passes: every account event (and its 30 s timer) wakes the bot again
    for i in range(3):
        cluster.kubectl("annotate", "exchangeaccount", "paper", "-n", ns, f"tick={i}",
                        "--overwrite")  # fmt: skip
        time.sleep(2)
    time.sleep(5)  # events are posted in the background

    told = [
        (e["involvedObject"]["kind"], e["involvedObject"]["name"], e["type"], e["reason"],
         e["message"])
        for e in events_of(cluster, ns)
    ]  # fmt: skip
    assert len(told) == len(set(told)), f"posted more than once: {sorted(told)}"
    events = events_of(cluster, ns, "btc")
    assert [(e["type"], e["reason"]) for e in events] == [("Warning", "StrategyNotFound")]
    assert events[0].get("count", 1) == 1


def test_missing_priority_class_is_named_until_it_exists(cluster: Cluster, ns: str) -> None:
    name = f"tradebot-test-{uuid.uuid4().hex[:8]}"
    apply(cluster, ns, account(), strategy(), bot(runtime={"priorityClassName": name}))
    cond = eventually(
        lambda: condition_reason(cluster, ns, "Ready", "PriorityClassNotFound"),
        what="Ready reason PriorityClassNotFound",
    )
    assert cond["status"] == "False"
    assert "spec.runtime.priorityClassName" in cond["message"] and name in cond["message"]
    assert (get(cluster, ns, "tradingbot", "btc") or {})["status"]["phase"] == "Pending"
    assert get(cluster, ns, "deployment", CHILD) is None  # its pods could not be created

    def warnings() -> Any:
        return [
            e for e in events_of(cluster, ns, "btc")
            if e["type"] == "Warning" and e["reason"] == "PriorityClassNotFound"
        ]  # fmt: skip

    assert len(eventually(warnings, what="Warning event PriorityClassNotFound")) == 1

    priority_class = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": 1000,
    }
    cluster.kubectl("create", "-f", "-", input=yaml.safe_dump(priority_class))
    try:  # it appears: the bot is woken and its runtime applied
        deploy = eventually(lambda: get(cluster, ns, "deployment", CHILD), what="deployment")
        assert deploy["spec"]["template"]["spec"]["priorityClassName"] == name
        eventually(
            lambda: condition_reason(cluster, ns, "Ready", "WaitingForRuntime"),
            what="Ready reason WaitingForRuntime",
        )
    finally:
        cluster.kubectl("delete", "priorityclass", name, "--wait=false", check=False)
