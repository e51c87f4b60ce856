"""Role and RoleBinding: the runtime may read and renew only its own Leases and read only
its own ConfigMaps. Nothing else, in particular no create (Leases are pre-created) and no
Secrets."""

from __future__ import annotations

from tradebot_contracts.names import runtime_labels, runtime_service_account_name
from tradebot_operator.api.trading_bot import TradingBot
from tradebot_operator.builders.meta import Manifest, namespace_of, object_meta


def role(bot: TradingBot, lease_names: list[str], configmap_names: list[str]) -> Manifest:
    name = runtime_service_account_name(bot.metadata.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": object_meta(bot, name, runtime_labels(bot.metadata.name)),
        "rules": [
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "resourceNames": sorted(lease_names),
                "verbs": ["get", "update"],
            },
            {
                # list/watch with resourceNames are authorized for requests that carry
                # fieldSelector=metadata.name=<name>, which is how the runtime watches.
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": sorted(configmap_names),
                "verbs": ["get", "list", "watch"],
            },
        ],
    }


def role_binding(bot: TradingBot) -> Manifest:
    name = runtime_service_account_name(bot.metadata.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": object_meta(bot, name, runtime_labels(bot.metadata.name)),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [
            {"kind": "ServiceAccount", "name": name, "namespace": namespace_of(bot)},
        ],
    }
