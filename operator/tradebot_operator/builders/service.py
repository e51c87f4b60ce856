"""Headless metrics Service: Prometheus discovers every runtime pod, standbys included."""

from __future__ import annotations

from tradebot_contracts.names import metrics_service_name
from tradebot_operator.builders.context import ExchangeContext
from tradebot_operator.builders.meta import Manifest, object_meta

METRICS_PORT_NAME = "metrics"


def metrics_service(ctx: ExchangeContext) -> Manifest:
    name = metrics_service_name(ctx.bot.metadata.name, ctx.account.metadata.name)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(ctx.bot, name, ctx.labels),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": ctx.selector,
            "ports": [
                {
                    "name": METRICS_PORT_NAME,
                    "port": ctx.settings.metrics_port,
                    "targetPort": METRICS_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }
