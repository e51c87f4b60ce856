"""HorizontalPodAutoscaler (autoscaling/v2) when the bot enables autoscaling."""

from __future__ import annotations

from tradebot_operator.builders.context import ExchangeContext
from tradebot_operator.builders.meta import Manifest, object_meta


def horizontal_pod_autoscaler(ctx: ExchangeContext) -> Manifest | None:
    autoscaling = ctx.bot.spec.autoscaling
    if not ctx.autoscaled or autoscaling is None:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_meta(ctx.bot, ctx.name, ctx.labels),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": ctx.name},
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": autoscaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }
