"""The Helm chart rendered by the real helm binary (no cluster needed): lint, the values
schema's rejections, the operator's environment contract, alert and dashboard metric names,
and the generated copies (kustomize base, argocd-cm) being current."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from support.procs import REPO_ROOT, hack_bin
from tradebot_operator.api.trading_bot import TradingBot
from tradebot_operator.builders.network_policy import network_policy
from tradebot_operator.settings import ENV_PREFIX, OperatorSettings

pytestmark = pytest.mark.integration

CHART = REPO_ROOT / "charts" / "tradebot"
DESIGN_METRICS = {
    "trading_order_latency_seconds",
    "trading_orders_total",
    "exchange_api_latency_seconds",
    "exchange_api_errors_total",
    "exchange_websocket_disconnects_total",
    "trading_position_pnl",
    "trading_daily_pnl",
    "tradebot_leader",
    "tradebot_reconcile_mismatches_total",
    "tradebot_ratelimit_local_fallback",
}
# Variables of tradebot_operator.settings.ProcessSettings rather than OperatorSettings.
MAIN_ENV = {
    "TRADEBOT_WATCH_NAMESPACES",
    "TRADEBOT_LIVENESS_ENDPOINT",
    "TRADEBOT_LOG_FORMAT",
    "TRADEBOT_PEERING",
    "TRADEBOT_API_CONCURRENCY",
    "TRADEBOT_RECONCILE_WORKERS",
    "TRADEBOT_DEBUG",
}
ALL_FEATURES = [
    "--set", "metrics.serviceMonitor.enabled=true",
    "--set", "metrics.prometheusRule.enabled=true",
    "--set", "metrics.grafanaDashboard.enabled=true",
    "--set", "networkPolicy.postgres.cidrs={10.20.0.0/16}",
    "--set", "networkPolicy.redis.cidrs={10.21.0.5/32}",
    "--set", "networkPolicy.vault.cidrs={10.22.0.0/24}",
    "--set", "networkPolicy.apiServer.cidrs={172.18.0.2/32}",
    "--set", "vault.address=https://vault.vault.svc:8200",
    "--set", "vault.operatorAuth.role=tradebot-operator",
    "--set", "vault.database.mount=database",
    "--set", "vault.database.redisConnection=tradebot-redis",
]  # fmt: skip


@pytest.fixture(scope="module")
def helm() -> str:
    return str(hack_bin("helm"))


def render(helm: str, *args: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [helm, "template", "tb", str(CHART), "--namespace", "tradebot-system", *args],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [doc for doc in yaml.safe_load_all(out) if doc]


def template_error(helm: str, *args: str) -> str:
    result = subprocess.run(
        [helm, "template", "tb", str(CHART), *args], capture_output=True, text=True
    )
    assert result.returncode != 0, "helm template accepted values it must reject"
    return result.stderr


def only(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize("extra", [[], ALL_FEATURES], ids=["defaults", "all-features"])
def test_helm_lint_strict(helm: str, extra: list[str]) -> None:
    result = subprocess.run(
        [helm, "lint", "--strict", str(CHART), *extra], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


BAD_VALUES = [
    # (--set argument, text the error must contain)
    ("operator.replicas=-1", "/operator/replicas"),
    ("operator.replicas=2", "needs operator.peering.enabled=true"),
    ("operator.replicass=1", "additional properties 'replicass' not allowed"),
    ("operator.logFormat=xml", "value must be one of 'json', 'plain'"),
    ("operator.watchNamespaces={Bad_NS}", "/operator/watchNamespaces/0"),
    ("vault.credentialsDelivery=sidecar", "value must be one of 'vault', 'injector'"),
    ("vault.address=vault.example:8200", "/vault/address"),
    ("vault.tokenExpirationSeconds=60", "/vault/tokenExpirationSeconds"),
    ("image.digest=sha256:abc", "/image/digest"),
    ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
    ("crds.enabled=maybe", "got string, want boolean"),
    ("runtime.journalDsn=postgresql://tradebot:hunter2@db/tradebot", "/runtime/journalDsn"),
    ("runtime.leaseDurationSeconds=1", "/runtime/leaseDurationSeconds"),
    ("runtime.runAsUser=0", "/runtime/runAsUser"),
    ("networkPolicy.postgres.cidrs={10.0.0.1}", "/networkPolicy/postgres/cidrs/0"),
    (
        "runtime.journalDsn=postgresql://tradebot@db/tradebot",
        "networkPolicy.postgres.cidrs is empty",
    ),
    ("runtime.redisUrl=redis://redis:6379/0", "networkPolicy.redis.cidrs is empty"),
    ("metrics.prometheusRule.exchangeErrorRatio=2", "/metrics/prometheusRule/exchangeErrorRatio"),
    ("tests.timeoutSeconds=1", "/tests/timeoutSeconds"),
    ("vault.database.mount=data base", "/vault/database/mount"),
    ("vault.database.ttl=1d", "/vault/database/ttl"),
]


@pytest.mark.parametrize(("setting", "message"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_bad_values_are_rejected_with_a_clear_message(
    helm: str, setting: str, message: str
) -> None:
    assert message in template_error(helm, "--set", setting)


def test_operator_environment_is_what_the_operator_reads(helm: str) -> None:
    docs = render(helm, *ALL_FEATURES, "--set", "runtime.redisUrl=redis://redis:6379/0")
    (deployment,) = only(docs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    fields = {ENV_PREFIX + name.upper() for name in OperatorSettings.model_fields}
    assert set(env) - fields - MAIN_ENV == set(), "variables nobody reads"
    settings = OperatorSettings.from_env(env)
    assert settings.vault_address == "https://vault.vault.svc:8200"
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.runtime_image == "tradebot:0.1.0" == container["image"]
    assert settings.credentials_delivery == "vault"
    assert settings.data_credentials and settings.vault_database_mount == "database"
    assert (settings.vault_journal_connection, settings.vault_redis_connection) == (
        "tradebot-journal", "tradebot-redis"
    )  # fmt: skip
    assert container["command"] == ["python", "-m", "tradebot_operator"]
    port = container["ports"][0]["containerPort"]
    assert env["TRADEBOT_LIVENESS_ENDPOINT"] == f"http://0.0.0.0:{port}/healthz"


def test_one_active_operator_unless_peering(helm: str) -> None:
    (single,) = only(render(helm), "Deployment")
    assert single["spec"]["replicas"] == 1
    assert single["spec"]["strategy"]["type"] == "Recreate"
    peers = render(helm, "--set", "operator.replicas=2", "--set", "operator.peering.enabled=true")
    (deployment,) = only(peers, "Deployment")
    env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["TRADEBOT_PEERING"] == "tradebot"
    assert any(r["metadata"]["name"].endswith("-peering") for r in only(peers, "ClusterRole"))


@pytest.mark.parametrize("scope", [[], ["--set", "operator.watchNamespaces={bots}"]],
                         ids=["cluster-wide", "watch-namespaces"])  # fmt: skip
def test_the_operator_can_watch_priority_classes_cluster_wide(helm: str, scope: list[str]) -> None:
    """The operator indexes PriorityClasses (cluster-scoped): a bot naming a missing one
    gets a reason instead of pods that can never be created."""
    docs = render(helm, *scope)
    (role,) = [r for r in only(docs, "ClusterRole") if r["metadata"]["name"].endswith("-discovery")]
    rules = [r for r in role["rules"] if "priorityclasses" in r["resources"]]
    assert rules and rules[0]["apiGroups"] == ["scheduling.k8s.io"]
    assert set(rules[0]["verbs"]) == {"get", "list", "watch"}
    bindings = [
        b for b in docs if b["kind"] in ("ClusterRoleBinding", "RoleBinding")
        and b["roleRef"]["name"] == role["metadata"]["name"]
    ]  # fmt: skip
    assert [b["kind"] for b in bindings] == ["ClusterRoleBinding"]


def test_crds_gated_and_kept(helm: str) -> None:
    kept = only(render(helm), "CustomResourceDefinition")
    assert len(kept) == 3
    assert all(c["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for c in kept)
    dropped = only(render(helm, "--set", "crds.keep=false"), "CustomResourceDefinition")
    assert all("annotations" not in c["metadata"] for c in dropped)
    assert only(render(helm, "--set", "crds.enabled=false"), "CustomResourceDefinition") == []


def metric_names(expr: str) -> set[str]:
    words = set(re.findall(r"\b([a-z_][a-z0-9_]*)\b", re.sub(r'"[^"]*"', "", expr)))
    base = {re.sub(r"_(bucket|count|sum)$", "", w) for w in words}
    return {w for w in base if w.startswith(("trading_", "exchange_", "tradebot_"))}


def test_alerts_use_design_metrics(helm: str) -> None:
    (rule,) = only(render(helm, *ALL_FEATURES), "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {
        "TradebotBotDown", "TradebotNoLeader", "TradebotHighOrderLatency",
        "TradebotExchangeErrorRate", "TradebotExcessiveDailyLoss", "TradebotReconcileMismatch",
        "TradebotLeaderFlapping", "TradebotRateLimitFallback",
    } <= set(alerts)  # fmt: skip
    used: set[str] = set()
    for alert in alerts.values():
        used |= metric_names(alert["expr"])
        assert "{{ $labels" in alert["annotations"]["summary"]
    assert used <= DESIGN_METRICS and len(used) >= 8
    assert "< -500" in alerts["TradebotExcessiveDailyLoss"]["expr"]


def test_dashboard_covers_orders_latency_pnl_leaders_errors(helm: str) -> None:
    (cm,) = [
        c
        for c in only(render(helm, *ALL_FEATURES), "ConfigMap")
        if "dashboard" in c["metadata"]["name"]
    ]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["tradebot.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = set().union(*(metric_names(e) for e in exprs))
    assert used <= DESIGN_METRICS
    assert {"trading_orders_total", "trading_order_latency_seconds", "trading_daily_pnl",
            "tradebot_leader", "exchange_api_errors_total"} <= used  # fmt: skip


def test_service_monitor_selects_the_runtime_metrics_services(helm: str) -> None:
    (sm,) = only(render(helm, *ALL_FEATURES), "ServiceMonitor")
    from tradebot_contracts.names import LABEL_MANAGED_BY, MANAGED_BY
    from tradebot_operator.builders.service import METRICS_PORT_NAME

    assert sm["spec"]["selector"]["matchLabels"][LABEL_MANAGED_BY] == MANAGED_BY
    assert sm["spec"]["endpoints"][0]["port"] == METRICS_PORT_NAME
    assert sm["spec"]["namespaceSelector"] == {"any": True}


def test_network_policy_egress_only_to_the_listed_targets(helm: str) -> None:
    """The chart hands networkPolicy to the operator, which gives every bot a NetworkPolicy
    (on by default): rendered here from the chart's own environment and the builder."""
    (deployment,) = only(render(helm, *ALL_FEATURES), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    settings = OperatorSettings.from_env(env)
    assert settings.network_policy.enabled
    assert not only(render(helm, *ALL_FEATURES), "NetworkPolicy"), "the operator owns them"
    trading_bot = TradingBot.model_validate(
        {"metadata": {"name": "bot", "namespace": "trading", "uid": "u"},
         "spec": {"strategyRef": {"name": "s"}, "mode": "paper",
                  "exchanges": [{"account": "a", "symbols": ["BTC/USDT"],
                                 "allocation": {"quote": "USDT", "amount": "1"}}],
                  "risk": {"maxPositionNotional": "1", "maxOrderNotional": "1",
                           "maxDailyLoss": "1"}}}
    )  # fmt: skip
    policy = network_policy(trading_bot, settings.network_policy)
    assert policy is not None
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "runtime"
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    ports = {(p["port"], p["protocol"]) for rule in spec["egress"] for p in rule["ports"]}
    assert ports == {(443, "TCP"), (5432, "TCP"), (6379, "TCP"), (8200, "TCP"), (6443, "TCP"),
                     (53, "UDP"), (53, "TCP")}  # fmt: skip
    blocks = [b["ipBlock"] for rule in spec["egress"] for b in rule["to"] if "ipBlock" in b]
    cidrs = {b["cidr"] for b in blocks}
    assert cidrs == {"0.0.0.0/0", "10.20.0.0/16", "10.21.0.5/32", "10.22.0.0/24", "172.18.0.2/32"}
    (internet,) = [b for b in blocks if b["cidr"] == "0.0.0.0/0"]
    assert "169.254.0.0/16" in internet["except"]  # cloud metadata is never an exchange
    rejected = template_error(helm, "--set", "vault.address=https://v:8200")
    assert "networkPolicy.vault.cidrs is empty" in rejected
    off = render(
        helm, "--set", "networkPolicy.enabled=false", "--set", "vault.address=https://v:8200"
    )
    (deployment,) = only(off, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    off_env = {e["name"]: e["value"] for e in container["env"]}
    assert not OperatorSettings.from_env(off_env).network_policy.enabled


def test_helm_test_hook_checks_crds_and_operator(helm: str) -> None:
    docs = render(helm, "--show-only", "templates/tests/test-installation.yaml")
    (pod,) = only(docs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert all(d["metadata"]["annotations"]["helm.sh/hook"] == "test" for d in docs)
    (init,) = pod["spec"]["initContainers"]
    assert "--for=condition=Established" in init["command"]
    assert {a for a in init["command"] if a.startswith("customresourcedefinition/")} == {
        "customresourcedefinition/tradingbots.tradebot.io",
        "customresourcedefinition/strategies.tradebot.io",
        "customresourcedefinition/exchangeaccounts.tradebot.io",
    }
    (main,) = pod["spec"]["containers"]
    assert "--for=condition=Available" in main["command"]
    assert "deployment/tb-tradebot" in main["command"]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "manifests_generate", REPO_ROOT / "manifests" / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_manifests_are_current(helm: str) -> None:
    generator = load_generator()
    files = generator.rendered(helm)
    drift = generator.diff(files)
    assert drift == "", "manifests/ is out of date; run `make manifests`\n" + drift
    # The check is able to fail: a chart change shows up as a diff of the kustomize base.
    changed = {path: text.replace("replicas: 1", "replicas: 0") for path, text in files.items()}
    assert "replicas: 0" in generator.diff(changed)


def test_argocd_applications_point_at_real_sources(helm: str, tmp_path: Path) -> None:
    argocd = REPO_ROOT / "manifests" / "argocd"
    chart_app = yaml.safe_load((argocd / "chart-application.yaml").read_text())
    samples_app = yaml.safe_load((argocd / "samples-application.yaml").read_text())
    for app in (chart_app, samples_app):
        assert app["kind"] == "Application" and app["apiVersion"] == "argoproj.io/v1alpha1"
        assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    assert (REPO_ROOT / chart_app["spec"]["source"]["path"] / "Chart.yaml").is_file()
    assert (REPO_ROOT / samples_app["spec"]["source"]["path"] / "kustomization.yaml").is_file()
    # The Application's values pass the chart's schema.
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(chart_app["spec"]["source"]["helm"]["valuesObject"]))
    docs = render(helm, "--values", str(values))
    assert only(docs, "PrometheusRule") and only(docs, "ServiceMonitor")


def test_the_operator_reads_secret_metadata_only_when_development_secrets_are_allowed(
    helm: str,
) -> None:
    def secret_rules(*args: str) -> list[dict[str, Any]]:
        return [
            rule
            for role in only(render(helm, *args), "ClusterRole")
            for rule in role.get("rules") or []
            if "secrets" in rule["resources"]
        ]

    assert secret_rules() == []
    (rule,) = secret_rules("--set", "tenancy.allowSecretRef=true")
    assert rule["verbs"] == ["get"]
