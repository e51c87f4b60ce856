"""TradingBot, Lease and PriorityClass watch events: they only tell the BotController what
they saw.

TradingBots are reconciled by the controller's work queue with a fixed pool of workers.
Every trigger (the bot's own spec change or deletion, a change of a Strategy or
ExchangeAccount it uses, a Lease holder or readiness change, its PriorityClass appearing
or going) only enqueues the bot; the
worker reads everything from the indexes (no API reads in steady state) and schedules the
bot again when its status could next change on its own.
"""

from __future__ import annotations

from typing import Any

import kopf

from tradebot_operator.api.common import GROUP, VERSION
from tradebot_operator.handlers.context import context_of
from tradebot_operator.handlers.indexes import MANAGED


@kopf.on.event(GROUP, VERSION, "tradingbots")
async def bot_changed(
    type: str | None, namespace: str, name: str, meta: kopf.Meta, spec: kopf.Spec,
    memo: kopf.Memo, **_: Any,
) -> None:  # fmt: skip
    context = context_of(memo)
    context.bots.bot_event(type, (namespace, name), meta)
    # In-use protection of the Strategy and ExchangeAccounts it starts or stops using.
    gone = type == "DELETED"
    await context.references.bot_changed((namespace, name), None if gone else spec)


@kopf.on.event("scheduling.k8s.io", "v1", "priorityclasses")
async def priority_class_changed(
    type: str | None, name: str, memo: kopf.Memo, **_: Any
) -> None:  # fmt: skip
    context_of(memo).bots.priority_class_event(type, name)


@kopf.on.event("coordination.k8s.io", "v1", "leases", labels=MANAGED)
async def lease_changed(
    type: str | None, namespace: str, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    context_of(memo).bots.lease_event(type, namespace, body)
