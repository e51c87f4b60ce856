"""REST paths of the object kinds the operator writes.

A small static table instead of API discovery: the operator only ever writes these
kinds, and discovery would cost API reads on every start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Resource:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group_path(self) -> str:
        # Core objects live under /api/v1, everything else under /apis/<group>/<version>.
        return (
            f"/api/{self.api_version}"
            if "/" not in self.api_version
            else f"/apis/{self.api_version}"
        )

    def collection_path(self, namespace: str | None) -> str:
        if self.namespaced:
            if not namespace:
                raise ValueError(f"{self.kind} is namespaced: a namespace is required")
            return f"{self.group_path}/namespaces/{namespace}/{self.plural}"
        return f"{self.group_path}/{self.plural}"

    def object_path(self, namespace: str | None, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"


KNOWN: dict[tuple[str, str], Resource] = {
    (r.api_version, r.kind): r
    for r in (
        Resource("v1", "ServiceAccount", "serviceaccounts"),
        Resource("v1", "ConfigMap", "configmaps"),
        Resource("v1", "Service", "services"),
        Resource("v1", "Event", "events"),
        Resource("rbac.authorization.k8s.io/v1", "Role", "roles"),
        Resource("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
        Resource("apps/v1", "Deployment", "deployments"),
        Resource("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
        Resource("coordination.k8s.io/v1", "Lease", "leases"),
        Resource("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
        Resource("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
        Resource("tradebot.io/v1alpha1", "TradingBot", "tradingbots"),
        Resource("tradebot.io/v1alpha1", "Strategy", "strategies"),
        Resource("tradebot.io/v1alpha1", "ExchangeAccount", "exchangeaccounts"),
    )
}


SECRETS = Resource("v1", "Secret", "secrets")
"""Read as metadata only (KubeClient.get_metadata), and only to check a development
``secretRef``: the operator never reads, writes or lists a Secret's data."""


def resource_of(manifest: dict[str, Any]) -> Resource:
    key = (manifest["apiVersion"], manifest["kind"])
    try:
        return KNOWN[key]
    except KeyError:
        raise ValueError(f"the operator does not manage {key[1]} ({key[0]})") from None
