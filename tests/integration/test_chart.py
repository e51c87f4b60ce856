"""The Helm chart on the real local API server: server-side apply of the rendered chart,
a real `helm install`, the operator's RBAC checked with `kubectl auth can-i` and by applying
what the operator's builders produce as the operator's ServiceAccount, and the `helm test`
hook's commands run with the test ServiceAccount's rights.

On kwok a `helm test` pod becomes Running and never runs its command, so `helm test` itself
would only time out here; the hook's commands are executed from the test process instead,
impersonating the hook's ServiceAccount.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.cluster import Cluster
from support.procs import REPO_ROOT, hack_bin

pytestmark = pytest.mark.integration

CHART = REPO_ROOT / "charts" / "tradebot"
GOLDEN = REPO_ROOT / "tests" / "unit" / "golden" / "sharded-two-exchanges-hpa" / "expected.yaml"
CRDS = ["tradingbots.tradebot.io", "strategies.tradebot.io", "exchangeaccounts.tradebot.io"]
CONCERNS = {"resources", "workloads", "leases", "runtime-rbac", "events", "discovery"}


@dataclass
class Release:
    name: str
    namespace: str

    @property
    def fullname(self) -> str:
        return f"{self.name}-tradebot"

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.fullname}"


def helm(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(hack_bin("helm")), "--kubeconfig", cluster.kubeconfig, *args],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def eventually(check: Any, timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def release(cluster: Cluster) -> Iterator[Release]:
    """A real `helm install` (CRDs kept on uninstall; --take-ownership adopts CRDs that other
    tests applied with kubectl)."""
    rel = Release(f"tbc{uuid.uuid4().hex[:6]}", cluster.namespace("tbchart"))
    helm(
        cluster, "install", rel.name, str(CHART), "--namespace", rel.namespace,
        "--take-ownership", "--wait=watcher", "--timeout", "120s",
        "--set", "metrics.grafanaDashboard.enabled=true",
    )  # fmt: skip
    yield rel
    helm(cluster, "uninstall", rel.name, "--namespace", rel.namespace, "--wait", check=False)


def test_rendered_chart_applies_server_side(cluster: Cluster) -> None:
    """Every object of the chart with its optional parts on passes the API server's validation
    (Prometheus Operator kinds aside: their CRDs are not installed here). The helm test Pod is
    left out: admission wants its ServiceAccount to exist (see the hook test below)."""
    ns = cluster.namespace("tbdry")
    rendered = helm(
        cluster, "template", "tbdry", str(CHART), "--namespace", ns,
        "--set", "metrics.grafanaDashboard.enabled=true",
        "--set", "networkPolicy.postgres.cidrs={10.20.0.0/16}",
    ).stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] != "Pod"]
    kinds = {d["kind"] for d in docs}
    assert {"CustomResourceDefinition", "Deployment", "ClusterRole",
            "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} <= kinds  # fmt: skip
    result = cluster.kubectl(
        "apply", "--server-side", "--dry-run=server", "--force-conflicts",
        "--field-manager=tradebot-chart-test", "-f", "-", input=yaml.safe_dump_all(docs),
    )  # fmt: skip
    assert result.stdout.count("serverside-applied (server dry run)") == len(docs)


def test_crds_established_and_operator_running(cluster: Cluster, release: Release) -> None:
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=30s",
        *[f"customresourcedefinition/{name}" for name in CRDS],
    )  # fmt: skip
    cluster.kubectl(
        "wait", "--for=condition=Available", "--timeout=60s",
        "-n", release.namespace, f"deployment/{release.fullname}",
    )  # fmt: skip
    pods = yaml.safe_load(
        cluster.kubectl("get", "pods", "-n", release.namespace, "-o", "yaml",
                        "-l", "app.kubernetes.io/component=operator").stdout
    )["items"]  # fmt: skip
    assert len(pods) == 1 and pods[0]["status"]["phase"] == "Running"
    spec = pods[0]["spec"]
    assert spec["serviceAccountName"] == release.fullname
    assert spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    crd = yaml.safe_load(cluster.kubectl("get", "crd", CRDS[0], "-o", "yaml").stdout)
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_rbac_is_split_by_concern(cluster: Cluster, release: Release) -> None:
    selector = f"app.kubernetes.io/instance={release.name}"
    roles = yaml.safe_load(
        cluster.kubectl("get", "clusterroles", "-l", selector, "-o", "yaml").stdout
    )["items"]
    names = {r["metadata"]["name"] for r in roles}
    prefix = f"{release.fullname}-operator-"
    assert {n.removeprefix(prefix) for n in names if n.startswith(prefix)} == CONCERNS
    assert {f"{release.fullname}-view", f"{release.fullname}-edit"} <= names
    bindings = yaml.safe_load(
        cluster.kubectl("get", "clusterrolebindings", "-l", selector, "-o", "yaml").stdout
    )["items"]
    assert len(bindings) == len(CONCERNS)
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": release.fullname, "namespace": release.namespace}
        ]
    for role in roles:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"]


def aggregated(cluster: Cluster, role: str) -> set[str]:
    rules = yaml.safe_load(cluster.kubectl("get", "clusterrole", role, "-o", "yaml").stdout)
    return {
        verb
        for rule in rules.get("rules") or []
        if "tradebot.io" in rule.get("apiGroups", []) and "tradingbots" in rule["resources"]
        for verb in rule["verbs"]
    }


def test_user_roles_aggregate_into_view_edit_admin(cluster: Cluster, release: Release) -> None:
    eventually(lambda: "create" in aggregated(cluster, "admin"), what="aggregation into admin")
    assert aggregated(cluster, "view") == {"get", "list", "watch"}
    assert {"get", "create", "patch", "delete"} <= aggregated(cluster, "edit")


# (verb, resource, namespace or None for all namespaces, allowed)
CAN_I = [
    ("list", "tradingbots.tradebot.io", None, True),
    ("watch", "strategies.tradebot.io", None, True),
    ("patch", "tradingbots.tradebot.io/status", "bots", True),
    ("patch", "exchangeaccounts.tradebot.io/status", "bots", True),
    ("patch", "tradingbots.tradebot.io", "bots", True),
    ("update", "tradingbots.tradebot.io/finalizers", "bots", True),
    ("update", "strategies.tradebot.io/finalizers", "bots", True),
    ("update", "exchangeaccounts.tradebot.io/finalizers", "bots", True),
    ("patch", "strategies.tradebot.io", "bots", True),  # metadata.finalizers: in-use
    ("patch", "exchangeaccounts.tradebot.io", "bots", True),
    ("watch", "leases.coordination.k8s.io", None, True),
    ("create", "leases.coordination.k8s.io", "bots", True),
    ("update", "leases.coordination.k8s.io", "bots", True),
    ("list", "configmaps", None, True),
    ("patch", "deployments.apps", "bots", True),
    ("delete", "horizontalpodautoscalers.autoscaling", "bots", True),
    ("create", "poddisruptionbudgets.policy", "bots", True),
    ("create", "roles.rbac.authorization.k8s.io", "bots", True),
    ("delete", "rolebindings.rbac.authorization.k8s.io", "bots", True),
    ("create", "events", "bots", True),
    # must not
    ("get", "secrets", "bots", False),
    ("list", "secrets", None, False),
    ("create", "pods", "bots", False),
    ("create", "pods/exec", "bots", False),
    ("delete", "tradingbots.tradebot.io", "bots", False),
    ("create", "tradingbots.tradebot.io", "bots", False),
    ("update", "deployments.apps/scale", "bots", False),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io", None, False),
    ("create", "clusterroles.rbac.authorization.k8s.io", None, False),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", None, False),
    ("escalate", "roles.rbac.authorization.k8s.io", "bots", False),
    ("bind", "roles.rbac.authorization.k8s.io", "bots", False),
    ("impersonate", "serviceaccounts", "bots", False),
    ("create", "namespaces", None, False),
    ("create", "serviceaccounts/token", "bots", False),
    ("create", "networkpolicies.networking.k8s.io", "bots", True),
]


@pytest.mark.parametrize(
    ("verb", "resource", "namespace", "allowed"),
    CAN_I,
    ids=[f"{'can' if c[3] else 'cannot'}-{c[0]}-{c[1]}" for c in CAN_I],
)
def test_operator_service_account_can_i(
    cluster: Cluster, release: Release, verb: str, resource: str, namespace: str | None,
    allowed: bool,
) -> None:  # fmt: skip
    scope = ["--all-namespaces"] if namespace is None else ["-n", namespace]
    resource, _, subresource = resource.partition("/")
    if subresource:
        scope.append(f"--subresource={subresource}")
    result = cluster.kubectl(
        "auth", "can-i", verb, resource, *scope, f"--as={release.user}", check=False
    )
    assert result.stdout.strip() == ("yes" if allowed else "no"), result.stderr


def as_operator(docs: list[dict[str, Any]], namespace: str, uid: str) -> list[dict[str, Any]]:
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
        for ref in doc["metadata"].get("ownerReferences", []):
            ref["uid"] = uid
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
    return docs


def test_operator_service_account_can_apply_and_prune_what_the_builders_produce(
    cluster: Cluster, release: Release, crds_installed: Cluster
) -> None:
    """The golden output of the operator's builders (every kind it writes, incl. the runtime
    Role that the RBAC escalation check inspects) applied and deleted as the operator."""
    ns = cluster.namespace("tbrbac")
    bot = yaml.safe_load((GOLDEN.parent / "input.yaml").read_text())[
        "bot"
    ]  # the owner must exist for owner references
    bot["metadata"] = {"name": bot["metadata"]["name"], "namespace": ns}
    created = cluster.kubectl("create", "-f", "-", "-o", "yaml", input=yaml.safe_dump(bot))
    uid = yaml.safe_load(created.stdout)["metadata"]["uid"]
    docs = as_operator([d for d in yaml.safe_load_all(GOLDEN.read_text()) if d], ns, uid)
    assert {"Role", "RoleBinding", "Deployment", "Lease", "HorizontalPodAutoscaler"} <= {
        d["kind"] for d in docs
    }
    body = yaml.safe_dump_all(docs)
    applied = cluster.kubectl(
        "apply", "--server-side", "--field-manager=tradebot-operator", f"--as={release.user}",
        "-f", "-", input=body,
    )  # fmt: skip
    assert applied.stdout.count("serverside-applied") == len(docs)
    cluster.kubectl("delete", f"--as={release.user}", "--wait=false", "-f", "-", input=body)


def test_operator_service_account_cannot_grant_more_than_it_holds(
    cluster: Cluster, release: Release
) -> None:
    ns = cluster.namespace("tbesc")
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "steal-secrets", "namespace": ns},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
    }
    result = cluster.kubectl(
        "apply", "--server-side", f"--as={release.user}", "-f", "-",
        input=yaml.safe_dump(role), check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "not currently held" in result.stderr or "escalat" in result.stderr


def test_helm_test_hook_commands_succeed_with_the_hook_service_account(
    cluster: Cluster, release: Release
) -> None:
    rendered = helm(
        cluster, "template", release.name, str(CHART), "--namespace", release.namespace,
        "--show-only", "templates/tests/test-installation.yaml",
    ).stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    (pod,) = [d for d in docs if d["kind"] == "Pod"]
    rbac = yaml.safe_dump_all([d for d in docs if d["kind"] != "Pod"])
    user = f"system:serviceaccount:{release.namespace}:{pod['spec']['serviceAccountName']}"
    cluster.kubectl("apply", "--server-side", "-f", "-", input=rbac)
    try:
        # The pod itself passes the restricted Pod Security admission of the namespace.
        cluster.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-",
                        input=yaml.safe_dump(pod))  # fmt: skip
        for container in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
            command = container["command"]
            assert command[0] == "/bin/kubectl"
            result = cluster.kubectl(*command[1:], f"--as={user}", check=False)
            assert result.returncode == 0, f"{container['name']}: {result.stderr}"
        denied = cluster.kubectl(
            "get", "secrets", "-n", release.namespace, f"--as={user}", check=False
        )
        assert denied.returncode != 0
    finally:
        cluster.kubectl("delete", "--wait=false", "-f", "-", input=rbac, check=False)


def test_uninstall_keeps_the_crds(cluster: Cluster, tmp_path: Path) -> None:
    """A second, short-lived release: uninstalling it removes its objects but not the CRDs."""
    ns = cluster.namespace("tbkeep")
    name = f"tbk{uuid.uuid4().hex[:6]}"
    helm(cluster, "install", name, str(CHART), "--namespace", ns, "--take-ownership",
         "--set", "tests.enabled=false")  # fmt: skip
    helm(cluster, "uninstall", name, "--namespace", ns, "--wait")
    assert cluster.kubectl("get", "deployment", "-n", ns, f"{name}-tradebot",
                           check=False).returncode != 0  # fmt: skip
    cluster.kubectl("get", "crd", *CRDS)


def _configmap(name: str, ns: str, labels: dict[str, str] | None = None) -> str:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if labels is not None:
        meta["labels"] = labels
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta})


MANAGED = {"app.kubernetes.io/managed-by": "tradebot-operator"}


def test_admission_policy_limits_the_operator_to_objects_it_manages(
    cluster: Cluster, release: Release
) -> None:
    """Finding 11 of the tenancy review: with cluster-wide create/patch the operator could
    write any ConfigMap, Deployment or Lease. The chart's ValidatingAdmissionPolicy refuses
    its writes to objects without tradebot's managed-by label, and its changes to objects
    that did not carry it before."""
    ns = cluster.namespace("tbvap")

    def as_operator(*args: str, body: str) -> subprocess.CompletedProcess[str]:
        return cluster.kubectl(*args, f"--as={release.user}", "-f", "-", input=body, check=False)

    def eventually_refused() -> subprocess.CompletedProcess[str]:
        # the API server loads a new policy within a second or so
        deadline = time.monotonic() + 30
        while True:
            result = as_operator("create", body=_configmap("aws-auth-like", ns))
            if result.returncode != 0 or time.monotonic() > deadline:
                return result
            cluster.kubectl("delete", "configmap", "aws-auth-like", "-n", ns, check=False)
            time.sleep(1)

    refused = eventually_refused()
    assert refused.returncode != 0
    assert "managed-by=tradebot-operator" in refused.stderr, refused.stderr

    created = as_operator("create", body=_configmap("ours", ns, MANAGED))
    assert created.returncode == 0, created.stderr
    stripped = cluster.kubectl(
        "label", "configmap", "ours", "-n", ns, "app.kubernetes.io/managed-by-",
        f"--as={release.user}", check=False,
    )  # fmt: skip
    assert stripped.returncode != 0 and "managed-by" in stripped.stderr, stripped.stderr

    # someone else's object: the operator can neither take it over nor delete it
    cluster.kubectl("create", "-f", "-", input=_configmap("theirs", ns))
    takeover = as_operator("apply", "--server-side", "--force-conflicts",
                           body=_configmap("theirs", ns, MANAGED))  # fmt: skip
    assert takeover.returncode != 0 and "does not manage" in takeover.stderr, takeover.stderr
    deleted = cluster.kubectl(
        "delete", "configmap", "theirs", "-n", ns, f"--as={release.user}", check=False
    )
    assert deleted.returncode != 0 and "does not manage" in deleted.stderr, deleted.stderr
    # an administrator is not affected
    cluster.kubectl("delete", "configmap", "theirs", "ours", "-n", ns)


def test_watched_namespaces_get_per_namespace_rights_only(cluster: Cluster) -> None:
    """Finding 11: with operator.watchNamespaces the operator's rights on workloads,
    ConfigMaps, Leases, RBAC and events exist only in those namespaces."""
    watched = cluster.namespace("tbwatch")
    rel = Release(f"tbw{uuid.uuid4().hex[:6]}", cluster.namespace("tbwsys"))
    helm(
        cluster, "install", rel.name, str(CHART), "--namespace", rel.namespace,
        "--take-ownership", "--set", "crds.enabled=false", "--set", "tests.enabled=false",
        "--set", f"operator.watchNamespaces={{{watched}}}",
    )  # fmt: skip
    try:

        def can(verb: str, resource: str, namespace: str) -> bool:
            out = cluster.kubectl(
                "auth", "can-i", verb, resource, "-n", namespace, f"--as={rel.user}", check=False
            )
            return out.stdout.strip() == "yes"

        for verb, resource in (
            ("create", "deployments.apps"),
            ("patch", "configmaps"),
            ("update", "leases.coordination.k8s.io"),
            ("create", "roles.rbac.authorization.k8s.io"),
            ("create", "networkpolicies.networking.k8s.io"),
            ("watch", "tradingbots.tradebot.io"),
        ):
            assert can(verb, resource, watched), f"{verb} {resource} in {watched}"
            assert not can(verb, resource, "kube-system"), f"{verb} {resource} in kube-system"
        assert can("list", "customresourcedefinitions.apiextensions.k8s.io", "default")
    finally:
        helm(cluster, "uninstall", rel.name, "--namespace", rel.namespace, "--wait", check=False)
