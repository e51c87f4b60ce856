"""Focused properties of desired(): what rolls the pods and what does not, RBAC scope,
pod security, replicas under suspend/HPA, no secrets anywhere."""

from __future__ import annotations

import json
from typing import Any

import pytest
from builder_inputs import by_kind, load_case, modified, one

from tradebot_contracts import names
from tradebot_contracts.names import ANNOTATION_CONFIG_HASH
from tradebot_contracts.runtime_config import CONFIG_KEY, DeleteRequest, RuntimeConfig
from tradebot_operator.builders import BuildError, desired

PAPER = "paper-two-symbols"
SHARDED = "sharded-two-exchanges-hpa"


def template_hash(manifests: list[dict[str, Any]], index: int = 0) -> str:
    deployment = by_kind(manifests, "Deployment")[index]
    annotations: dict[str, str] = deployment["spec"]["template"]["metadata"]["annotations"]
    return annotations[ANNOTATION_CONFIG_HASH]


def pod_template(manifests: list[dict[str, Any]], index: int = 0) -> dict[str, Any]:
    template: dict[str, Any] = by_kind(manifests, "Deployment")[index]["spec"]["template"]
    return template


def runtime_config(manifests: list[dict[str, Any]], index: int = 0) -> RuntimeConfig:
    return RuntimeConfig.loads(by_kind(manifests, "ConfigMap")[index]["data"][CONFIG_KEY])


BASE = load_case(PAPER).desired()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("bot.spec.risk.maxDailyLoss", "5"),
        ("bot.spec.risk.maxOrdersPerMinute", 1),
        ("bot.spec.tradingState", "Halted"),
        ("bot.spec.onDelete", "flatten"),
        ("accounts.0.spec.tradingState", "ReduceOnly"),
        ("accounts.0.spec.rateLimit", {"requestsPerMinute": 10}),
    ],
)
def test_live_changes_do_not_roll_the_pods(path: str, value: Any) -> None:
    changed = modified(PAPER, path, value).desired()
    assert pod_template(changed) == pod_template(BASE)
    assert by_kind(changed, "ConfigMap") != by_kind(BASE, "ConfigMap"), "config must change"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("bot.spec.exchanges.0.symbols", ["BTC/USDT", "SOL/USDT"]),
        ("strategy.spec.parameters", {"fastPeriod": 7, "slowPeriod": 20, "orderSize": "25"}),
        ("strategy.spec.timeframe", "5m"),
        ("accounts.0.spec.endpoint", "http://127.0.0.1:9999"),
        ("bot.spec.exchanges.0.allocation", {"quote": "USDT", "amount": "2000"}),
    ],
)
def test_roll_relevant_changes_roll_the_pods(path: str, value: Any) -> None:
    assert template_hash(modified(PAPER, path, value).desired()) != template_hash(BASE)


def test_symbol_order_does_not_matter() -> None:
    reordered = modified(PAPER, "bot.spec.exchanges.0.symbols", ["BTC/USDT", "ETH/USDT"])
    assert reordered.desired() == BASE


def test_delete_request_reaches_the_config_without_a_roll() -> None:
    case = load_case(PAPER)
    request = DeleteRequest(id="2025-01-01T00:00:00Z", action="cancelOrders")
    children = desired(
        case.bot, case.strategy, case.accounts, case.settings, delete_request=request
    )
    assert runtime_config(children).delete_request == request
    assert pod_template(children) == pod_template(BASE)


def test_one_lease_per_shard_without_holder() -> None:
    children = load_case(SHARDED).desired()
    leases = by_kind(children, "Lease")
    assert [lease["metadata"]["name"] for lease in leases] == [
        names.lease_name("majors", "binance-main", 0),
        names.lease_name("majors", "binance-main", 1),
        names.lease_name("majors", "okx-swap", 0),
        names.lease_name("majors", "okx-swap", 1),
        names.lease_name("majors", "okx-swap", 2),
    ]
    for lease in leases:
        assert lease["spec"] == {"leaseDurationSeconds": 6}


def test_shards_partition_the_symbols() -> None:
    config = runtime_config(load_case(SHARDED).desired())
    members = [symbol for shard in config.shards for symbol in shard.symbols]
    assert sorted(members) == sorted(config.symbols)
    assert len(members) == len(set(members))
    assert [len(shard.symbols) for shard in config.shards] == [3, 2]


def test_role_grants_only_own_leases_and_configmaps() -> None:
    children = load_case(SHARDED).desired()
    rules = one(children, "Role")["rules"]
    lease_names = sorted(m["metadata"]["name"] for m in by_kind(children, "Lease"))
    configmap_names = sorted(m["metadata"]["name"] for m in by_kind(children, "ConfigMap"))
    assert rules == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": lease_names,
            "verbs": ["get", "update"],
        },
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": configmap_names,
            "verbs": ["get", "list", "watch"],
        },
    ]
    binding = one(children, "RoleBinding")
    assert binding["subjects"][0]["name"] == one(children, "ServiceAccount")["metadata"]["name"]


def test_every_child_is_owned_by_the_bot_and_labelled() -> None:
    case = load_case(SHARDED)
    for child in case.desired():
        meta = child["metadata"]
        assert meta["namespace"] == "desk"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "tradebot.io/v1alpha1",
                "kind": "TradingBot",
                "name": "majors",
                "uid": case.bot.metadata.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "tradebot-operator"
        assert meta["labels"]["tradebot.io/bot"] == "majors"


def test_restricted_pod_security() -> None:
    spec = pod_template(BASE)["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["command"] == ["python", "-m", "tradebot_runtime"]
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/etc/tradebot", "/tmp"}


def test_env_carries_identity_only() -> None:
    for case in (PAPER, SHARDED, "python-secretref-custom-runtime"):
        for deployment in by_kind(load_case(case).desired(), "Deployment"):
            for container in deployment["spec"]["template"]["spec"]["containers"]:
                for var in container["env"]:
                    source = var.get("valueFrom", {})
                    assert "secretKeyRef" not in source and "configMapKeyRef" not in source
                    assert not any(w in var["name"].upper() for w in ("SECRET", "KEY", "TOKEN"))


def test_vault_token_is_projected_with_audience() -> None:
    volumes = pod_template(load_case(SHARDED).desired())["spec"]["volumes"]
    projected = next(v for v in volumes if "projected" in v)
    token = projected["projected"]["sources"][0]["serviceAccountToken"]
    assert token["audience"] == "vault"


def test_paper_bot_has_no_credential_volumes() -> None:
    volumes = {v["name"] for v in pod_template(BASE)["spec"]["volumes"]}
    assert volumes == {"config", "tmp"}


def test_secret_ref_is_mounted_as_files_not_env() -> None:
    children = load_case("python-secretref-custom-runtime").desired()
    volume = next(v for v in pod_template(children)["spec"]["volumes"] if "secret" in v)
    assert volume["secret"]["secretName"] == "bybit-test-keys"
    assert volume["secret"]["items"] == [
        {"key": "key", "path": "apiKey"},
        {"key": "secret", "path": "secret"},
    ]


def test_configmap_has_no_secret_values() -> None:
    for case in (SHARDED, "python-secretref-custom-runtime"):
        for configmap in by_kind(load_case(case).desired(), "ConfigMap"):
            payload = json.loads(configmap["data"][CONFIG_KEY])
            assert set(payload["credentials"]) <= {"source", "vault", "file"}


def test_suspend_scales_to_zero_and_drops_pdb_and_hpa() -> None:
    children = load_case("suspended").desired()
    assert one(children, "Deployment")["spec"]["replicas"] == 0
    assert by_kind(children, "PodDisruptionBudget") == []
    assert by_kind(children, "HorizontalPodAutoscaler") == []
    assert len(by_kind(children, "Lease")) == 1


def test_hpa_owns_replicas() -> None:
    children = load_case(SHARDED).desired()
    for deployment in by_kind(children, "Deployment"):
        assert "replicas" not in deployment["spec"]
    hpas = by_kind(children, "HorizontalPodAutoscaler")
    assert [(h["spec"]["minReplicas"], h["spec"]["maxReplicas"]) for h in hpas] == [(2, 4)] * 2
    assert hpas[0]["spec"]["scaleTargetRef"]["name"] == names.exchange_object_name(
        "majors", "binance-main"
    )


def test_pdb_only_with_more_than_one_pod() -> None:
    assert one(BASE, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    single = modified(PAPER, "bot.spec.replicas", 1).desired()
    assert by_kind(single, "PodDisruptionBudget") == []


def test_replicas_follow_the_spec() -> None:
    assert (
        one(modified(PAPER, "bot.spec.replicas", 3).desired(), "Deployment")["spec"]["replicas"]
        == 3
    )


def test_python_strategy_image_and_bot_override() -> None:
    case = "python-secretref-custom-runtime"
    container = pod_template(load_case(case).desired())["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/desk-strategies:7"
    override = modified(case, "bot.spec.runtime.image", "mine:1").desired()
    assert pod_template(override)["spec"]["containers"][0]["image"] == "mine:1"
    assert pod_template(BASE)["spec"]["containers"][0]["image"] == "tradebot:0.1.0"


def test_long_names_fit_kubernetes_limits() -> None:
    for child in load_case("long-name").desired():
        assert len(child["metadata"]["name"]) <= 63
        for value in child["metadata"]["labels"].values():
            assert len(value) <= 63


def test_missing_account_raises_build_error() -> None:
    case = load_case(PAPER)
    with pytest.raises(BuildError, match="binance-paper"):
        desired(case.bot, case.strategy, {}, case.settings)


def test_children_are_sorted_by_apply_order() -> None:
    kinds = [child["kind"] for child in load_case(SHARDED).desired()]
    assert kinds[:3] == ["ServiceAccount", "Role", "RoleBinding"]
    assert kinds.index("Deployment") > kinds.index("ConfigMap")
