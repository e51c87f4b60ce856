"""ConfigMap carrying the RuntimeConfig of one bot x account (never a secret)."""

from __future__ import annotations

from tradebot_contracts.runtime_config import CONFIG_KEY
from tradebot_operator.builders.context import ExchangeContext
from tradebot_operator.builders.meta import Manifest, object_meta


def config_map(ctx: ExchangeContext) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(ctx.bot, ctx.name, ctx.labels),
        "data": {CONFIG_KEY: ctx.config.dumps()},
    }
