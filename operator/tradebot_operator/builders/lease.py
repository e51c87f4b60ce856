"""Leases, one per shard, pre-created without a holder so the runtime needs no create
right; the runtime fills holderIdentity, renewTime and the heartbeat annotation."""

from __future__ import annotations

from tradebot_contracts.names import LABEL_SHARD
from tradebot_operator.builders.context import ExchangeContext
from tradebot_operator.builders.meta import Manifest, object_meta


def leases(ctx: ExchangeContext) -> list[Manifest]:
    return [
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": object_meta(
                ctx.bot, shard.lease_name, {**ctx.labels, LABEL_SHARD: str(shard.index)}
            ),
            "spec": {"leaseDurationSeconds": ctx.settings.lease_duration_seconds},
        }
        for shard in ctx.config.shards
    ]
