"""Strategy and ExchangeAccount watch events and timers (the timer refreshes usedBy)."""

from __future__ import annotations

from typing import Any

import kopf

from tradebot_operator.api.common import GROUP, VERSION
from tradebot_operator.handlers.context import context_of


@kopf.on.event(GROUP, VERSION, "strategies")
@kopf.timer(GROUP, VERSION, "strategies", interval=30, sharp=False)
@kopf.on.event(GROUP, VERSION, "exchangeaccounts")
@kopf.timer(GROUP, VERSION, "exchangeaccounts", interval=30, sharp=False)
async def referenced_reconcile(
    resource: kopf.Resource,
    body: kopf.Body,
    namespace: str,
    name: str,
    memo: kopf.Memo,
    type: str | None = None,
    **_: Any,
) -> None:
    """Status of a Strategy or ExchangeAccount, then wake the bots that use it so that a
    change reaches them at once."""
    await context_of(memo).references.reconcile(resource.plural, body, namespace, name, type)
