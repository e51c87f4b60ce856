"""NetworkPolicy of a bot's runtime pods: egress only to the exchange, PostgreSQL, Redis,
Vault, the API server and DNS (the installation's addresses), ingress only to the metrics
port. On by default, so a tenant's pods cannot reach the cluster's other services, cloud
metadata or another tenant's pods even with an endpoint override."""

from __future__ import annotations

from typing import Any

from tradebot_contracts.names import dns_label, runtime_labels
from tradebot_operator.api.trading_bot import TradingBot
from tradebot_operator.builders.meta import Manifest, object_meta
from tradebot_operator.builders.service import METRICS_PORT_NAME
from tradebot_operator.installation import EgressTarget, IpBlock, NetworkPolicySettings


def network_policy_name(bot: str) -> str:
    return dns_label(bot, "runtime")


def _peer(block: IpBlock | str) -> Manifest:
    if isinstance(block, str):
        return {"ipBlock": {"cidr": block}}
    ip_block: dict[str, Any] = {"cidr": block.cidr}
    if block.except_:
        ip_block["except"] = list(block.except_)
    return {"ipBlock": ip_block}


def _egress(target: EgressTarget) -> Manifest:
    return {
        "to": [_peer(block) for block in target.cidrs],
        "ports": [{"port": port, "protocol": "TCP"} for port in target.ports],
    }


def network_policy(bot: TradingBot, settings: NetworkPolicySettings) -> Manifest | None:
    if not settings.enabled:
        return None
    labels = runtime_labels(bot.metadata.name)
    egress = [_egress(t) for _, t in settings.egress_targets() if t.cidrs and t.ports]
    if settings.dns.enabled:
        egress.append(
            {
                "to": [
                    {
                        "namespaceSelector": {},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [
                    {"port": port, "protocol": protocol}
                    for port in settings.dns.ports
                    for protocol in ("UDP", "TCP")
                ],
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": object_meta(bot, network_policy_name(bot.metadata.name), labels),
        "spec": {
            # every runtime pod of this bot, whatever the account
            "podSelector": {"matchLabels": labels},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [{"namespaceSelector": dict(settings.metrics_from.namespace_selector)}],
                    "ports": [{"port": METRICS_PORT_NAME, "protocol": "TCP"}],
                }
            ],
            "egress": egress,
        },
    }
