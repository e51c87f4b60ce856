"""Smoke tests: the local control plane really behaves like Kubernetes.

These exercise what the operator relies on and only a real API server provides: CRD
schemas and the status subresource, Deployments reconciled by the controller manager and
scheduled by the scheduler (kwok makes the pods Running), Leases with optimistic
concurrency, TokenRequest, and PodSecurity admission.
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from support.cluster import Cluster

pytestmark = pytest.mark.integration

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.smoke.tradebot.io"},
    "spec": {
        "group": "smoke.tradebot.io",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"size": {"type": "integer", "minimum": 1}},
                            },
                            "status": {
                                "type": "object",
                                "properties": {"phase": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def _pod_template(labels: dict[str, str]) -> dict[str, object]:
    """A pod template that satisfies the `restricted` PodSecurity level."""
    return {
        "metadata": {"labels": labels},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "app",
                    "image": "example.invalid/app:1",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "runAsUser": 1000,
                    },
                }
            ],
        },
    }


def test_crd_custom_object_and_status_subresource(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(WIDGET_CRD))
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd/widgets.smoke.tradebot.io", "--timeout=60s"
    )
    ns = cluster.namespace("smoke")
    widget = {
        "apiVersion": "smoke.tradebot.io/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": ns},
        "spec": {"size": 3},
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(widget))

    # Schema validation lives in the API server: size must be >= 1.
    bad = {**widget, "metadata": {"name": "w2", "namespace": ns}, "spec": {"size": 0}}
    rejected = cluster.kubectl("create", "-f", "-", input=json.dumps(bad), check=False)
    assert rejected.returncode != 0
    assert "spec.size" in rejected.stderr

    # Status is written only through the status subresource...
    cluster.kubectl(
        "patch", "widget", "w1", "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"phase": "Running"}}),
    )  # fmt: skip
    # ...and a status field sent to the main resource is ignored.
    cluster.kubectl(
        "patch", "widget", "w1", "-n", ns, "--type=merge",
        "-p", json.dumps({"spec": {"size": 5}, "status": {"phase": "Hacked"}}),
    )  # fmt: skip
    got = json.loads(cluster.kubectl("get", "widget", "w1", "-n", ns, "-o", "json").stdout)
    assert got["status"]["phase"] == "Running"
    assert got["spec"]["size"] == 5
    assert got["metadata"]["generation"] == 2


async def test_deployment_gets_replicaset_and_running_pods(
    cluster: Cluster, kube_api: client.ApiClient
) -> None:
    ns = cluster.namespace("smoke")
    apps = client.AppsV1Api(kube_api)
    core = client.CoreV1Api(kube_api)
    labels = {"app": "smoke"}
    await apps.create_namespaced_deployment(
        ns,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "smoke"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": _pod_template(labels),
            },
        },
    )
    for _ in range(150):
        pods = await core.list_namespaced_pod(ns, label_selector="app=smoke")
        running = [p for p in pods.items if p.status.phase == "Running" and p.spec.node_name]
        if len(running) == 2:
            break
        await asyncio.sleep(0.2)
    else:
        pytest.fail(
            f"pods never Running: {[(p.metadata.name, p.status.phase) for p in pods.items]}"
        )
    rs = await apps.list_namespaced_replica_set(ns, label_selector="app=smoke")
    assert len(rs.items) == 1
    assert rs.items[0].metadata.owner_references[0].name == "smoke"
    assert {p.spec.node_name for p in running} <= {f"kwok-node-{i}" for i in range(3)}


async def test_pod_security_admission_rejects_privileged_pod(
    cluster: Cluster, kube_api: client.ApiClient
) -> None:
    ns = cluster.namespace("smoke")
    core = client.CoreV1Api(kube_api)
    with pytest.raises(ApiException) as err:
        await core.create_namespaced_pod(
            ns,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "privileged"},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "example.invalid/app:1",
                            "securityContext": {"privileged": True},
                        }
                    ]
                },
            },
        )
    assert err.value.status == 403
    assert "violates PodSecurity" in err.value.body


async def test_lease_create_update_and_conflict(
    cluster: Cluster, kube_api: client.ApiClient
) -> None:
    ns = cluster.namespace("smoke")
    coord = client.CoordinationV1Api(kube_api)
    lease = await coord.create_namespaced_lease(
        ns,
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "shard-0"},
            "spec": {"leaseDurationSeconds": 6},
        },
    )
    stale_version = lease.metadata.resource_version
    lease.spec.holder_identity = "pod-a"
    lease.spec.lease_transitions = 1
    updated = await coord.replace_namespaced_lease("shard-0", ns, lease)
    assert updated.spec.holder_identity == "pod-a"
    assert updated.metadata.resource_version != stale_version

    # A second writer holding the old resourceVersion loses: this is what fences leaders.
    lease.metadata.resource_version = stale_version
    lease.spec.holder_identity = "pod-b"
    with pytest.raises(ApiException) as err:
        await coord.replace_namespaced_lease("shard-0", ns, lease)
    assert err.value.status == 409
    current = await coord.read_namespaced_lease("shard-0", ns)
    assert current.spec.holder_identity == "pod-a"


async def test_token_request_returns_service_account_token(
    cluster: Cluster, kube_api: client.ApiClient
) -> None:
    ns = cluster.namespace("smoke")
    core = client.CoreV1Api(kube_api)
    await core.create_namespaced_service_account(ns, {"metadata": {"name": "runtime"}})
    resp = await core.create_namespaced_service_account_token(
        "runtime",
        ns,
        {"spec": {"audiences": ["vault"], "expirationSeconds": 600}},
    )
    token = resp.status.token
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == f"system:serviceaccount:{ns}:runtime"
    assert claims["aud"] == ["vault"]
    assert claims["exp"] - claims["iat"] == 600
