"""The env of a local runtime process is derived from the Deployment the operator's builder
renders (tests/support/pod_env.py): every name of the runtime container's env is there,
downward-API fieldRefs are resolved with the pod's values, literal values are kept, and
only the config path and the metrics port are replaced."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from builder_inputs import Case, by_kind, case_from_dict, golden_cases, load_case, one

from support.objects import account, bot, strategy
from support.pod_env import (
    LOCAL_OVERRIDES,
    PodFields,
    declared_env,
    process_env,
    runtime_container,
)
from support.runtimes import FAST_SMA, SYMBOL
from tradebot_contracts import env
from tradebot_contracts.runtime_config import CONFIG_KEY, RuntimeConfig
from tradebot_operator.builders import Manifest

POD = PodFields(
    namespace="trading",
    name="bot-7f9c-x2k4q",
    uid="0e6f1b2a-0000-4000-8000-00000000abcd",
    node_name="node-3",
)
FIELDS = {
    "metadata.namespace": POD.namespace,
    "metadata.name": POD.name,
    "metadata.uid": POD.uid,
    "spec.nodeName": POD.node_name,
}
LOCAL = {env.CONFIG_PATH: "/tmp/t/runtime.json", env.METRICS_PORT: "41234"}
EXTRA = {
    "PATH": "/usr/bin",
    env.PODRUNNER_ROOT: "/tmp/t/rootfs",
    env.JOURNAL_DSN: "postgresql://127.0.0.1:5433/tradebot",
    env.REDIS_URL: "redis://127.0.0.1:6380/0",
}


def setup_bot_case(ns: str = "rt-1a2b3c4d") -> Case:
    """The objects support.runtimes.setup_bot applies, as the builders' input."""
    keys = {"apiKey": "key", "secret": "secret"}
    objs = [
        account("sim", endpoint="http://127.0.0.1:18080",
                credentials={"secretRef": {"name": "sim-keys", "keys": keys}}),
        strategy("fast") | {"spec": FAST_SMA},
        bot("rtbot", strategy_name="fast", onDelete="cancelOrders",
            exchanges=[{"account": "sim", "symbols": [SYMBOL],
                        "allocation": {"quote": "USDT", "amount": "1000"}}]),
    ]  # fmt: skip
    for i, obj in enumerate(objs):
        obj["metadata"] |= {"namespace": ns, "uid": f"4d000000-0000-4000-8000-00000000000{i}"}
    return case_from_dict({"accounts": [objs[0]], "strategy": objs[1], "bot": objs[2]})


def deployments(case: Case) -> list[Manifest]:
    found: list[Manifest] = by_kind(case.desired(), "Deployment")
    assert found
    return found


def all_deployments() -> list[Any]:
    """Every Deployment of the golden cases and of setup_bot's objects."""
    cases = [(name, load_case(name)) for name in golden_cases()]
    cases.append(("setup_bot", setup_bot_case()))
    return [
        pytest.param(d, id=f"{name}/{d['metadata']['name']}")
        for name, case in cases
        for d in deployments(case)
    ]


@pytest.mark.parametrize("deployment", all_deployments())
def test_every_deployment_env_name_is_derived_and_resolved(deployment: Manifest) -> None:
    rendered: list[dict[str, Any]] = runtime_container(deployment)["env"]
    derived = declared_env(deployment, POD)
    assert list(derived) == [var["name"] for var in rendered]
    for var in rendered:
        if "valueFrom" in var:
            assert derived[var["name"]] == FIELDS[var["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            assert derived[var["name"]] == var["value"]
    assert set(env.IDENTITY) <= set(derived)  # nothing the runtime reads is left to re-type
    assert derived[env.NAMESPACE] == POD.namespace
    assert derived[env.POD_NAME] == POD.name
    assert derived[env.POD_UID] == POD.uid
    assert derived[env.NODE_NAME] == POD.node_name

    local_env = process_env(deployment, POD, local=LOCAL, extra=EXTRA)
    assert local_env == derived | LOCAL | EXTRA
    assert set(local_env) == set(derived) | set(EXTRA)


def test_setup_bot_env_is_the_deployment_with_the_local_config_and_port() -> None:
    manifests = setup_bot_case().desired()
    deployment = one(manifests, "Deployment")
    config = RuntimeConfig.loads(one(manifests, "ConfigMap")["data"][CONFIG_KEY])
    out = process_env(deployment, POD, local=LOCAL, extra=EXTRA)
    assert out[env.BOT] == "rtbot"
    assert out[env.ACCOUNT] == "sim"
    assert out[env.CONFIGMAP] == one(manifests, "ConfigMap")["metadata"]["name"]
    assert out[env.LEASES] == ",".join(s.lease_name for s in config.shards)
    assert out[env.CONFIG_PATH] == LOCAL[env.CONFIG_PATH]
    assert out[env.METRICS_PORT] == LOCAL[env.METRICS_PORT]
    assert out[env.JOURNAL_DSN] == EXTRA[env.JOURNAL_DSN]
    assert out[env.REDIS_URL] == EXTRA[env.REDIS_URL]


@pytest.mark.parametrize("name", sorted(set(env.IDENTITY) - LOCAL_OVERRIDES))
def test_a_name_the_deployment_sets_is_never_retyped(name: str) -> None:
    deployment = one(setup_bot_case().desired(), "Deployment")
    with pytest.raises(ValueError, match="set by the Deployment"):
        process_env(deployment, POD, local=LOCAL, extra={name: "x"})
    with pytest.raises(ValueError, match="may be replaced"):
        process_env(deployment, POD, local={name: "x"})


def test_a_local_override_must_be_in_the_deployment() -> None:
    deployment = copy.deepcopy(one(setup_bot_case().desired(), "Deployment"))
    container = runtime_container(deployment)
    container["env"] = [v for v in container["env"] if v["name"] != env.METRICS_PORT]
    with pytest.raises(ValueError, match="not in the Deployment"):
        process_env(deployment, POD, local=LOCAL)


@pytest.mark.parametrize(
    "source",
    [
        {"fieldRef": {"fieldPath": "status.podIP"}},
        {"secretKeyRef": {"name": "s", "key": "k"}},
        {"configMapKeyRef": {"name": "c", "key": "k"}},
    ],
    ids=["unknown-field", "secret", "configmap"],
)
def test_other_value_sources_are_refused(source: dict[str, Any]) -> None:
    deployment = copy.deepcopy(one(setup_bot_case().desired(), "Deployment"))
    runtime_container(deployment)["env"].append({"name": "X", "valueFrom": source})
    with pytest.raises(ValueError, match="not resolved"):
        declared_env(deployment, POD)
