"""Which child objects exist for each bot, so that pruning needs no API reads.

Filled once at start-up with one LIST per kind (label-selected across namespaces) and kept
up to date by every apply and delete the operator does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from tradebot_contracts.names import LABEL_MANAGED_BY
from tradebot_operator.kube.client import KubeClient, Manifest
from tradebot_operator.kube.resources import KNOWN, Resource

CHILD_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "ServiceAccount"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("v1", "ConfigMap"),
    ("coordination.k8s.io/v1", "Lease"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
)


@dataclass(frozen=True, order=True)
class ChildRef:
    api_version: str
    kind: str
    name: str

    @property
    def resource(self) -> Resource:
        return KNOWN[(self.api_version, self.kind)]

    @classmethod
    def of(cls, manifest: Manifest) -> ChildRef:
        return cls(manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"])


BotKey = tuple[str, str]  # (namespace, bot name)


class Inventory:
    def __init__(self) -> None:
        self._children: dict[BotKey, set[ChildRef]] = defaultdict(set)

    async def load(
        self, kube: KubeClient, managed_by: str, namespaces: tuple[str, ...] = ()
    ) -> None:
        """Every child the operator manages: across the cluster, or only in ``namespaces``
        when the operator watches those (its RBAC is then granted per namespace)."""
        selector = f"{LABEL_MANAGED_BY}={managed_by}"
        for api_version, kind in CHILD_KINDS:
            res = KNOWN[(api_version, kind)]
            if namespaces:
                for namespace in namespaces:
                    for item in await kube.list(res, namespace, selector):
                        self._record(item, api_version, kind)
                continue
            path_res = Resource(res.api_version, res.kind, res.plural, namespaced=False)
            for item in await kube.list(path_res, None, selector):
                self._record(item, api_version, kind)

    def _record(self, item: Manifest, api_version: str, kind: str) -> None:
        meta = item.get("metadata", {})
        for owner in meta.get("ownerReferences", []):
            if owner.get("kind") == "TradingBot" and owner.get("controller"):
                key = (meta.get("namespace", ""), owner["name"])
                self._children[key].add(ChildRef(api_version, kind, meta["name"]))

    def children(self, key: BotKey) -> set[ChildRef]:
        return set(self._children.get(key, ()))

    def replace(self, key: BotKey, refs: Iterable[ChildRef]) -> None:
        self._children[key] = set(refs)

    def forget(self, key: BotKey) -> None:
        self._children.pop(key, None)
