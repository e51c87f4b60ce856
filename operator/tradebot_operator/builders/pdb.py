"""PodDisruptionBudget: a drain never takes the last pod of a bot x account at once."""

from __future__ import annotations

from tradebot_operator.builders.context import ExchangeContext
from tradebot_operator.builders.meta import Manifest, object_meta


def pod_disruption_budget(ctx: ExchangeContext) -> Manifest | None:
    """Only with more than one pod: with a single pod, minAvailable 1 would block drains
    forever."""
    if ctx.suspended or ctx.min_pods <= 1:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": object_meta(ctx.bot, ctx.name, ctx.labels),
        "spec": {
            "minAvailable": 1,
            "selector": {"matchLabels": ctx.selector},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
