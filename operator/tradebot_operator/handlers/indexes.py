"""kopf's in-memory indexes: the controllers read bodies from them, never from the API.

The function names are the index names (kopf passes each index as the keyword argument of
that name; handlers/lifecycle.py collects them into kube.indexes.Indexes).
"""

from __future__ import annotations

from typing import Any

import kopf

from tradebot_contracts.names import LABEL_MANAGED_BY, MANAGED_BY
from tradebot_operator.api.common import GROUP, VERSION
from tradebot_operator.controllers.references.reconcile import reference_keys
from tradebot_operator.controllers.tradingbot.status import lease_observation, owner_bot
from tradebot_operator.kube.bodies import slim_body

MANAGED = {LABEL_MANAGED_BY: MANAGED_BY}

# Handlers are coroutines: kopf runs plain functions in a thread pool, one hop per event.


@kopf.index(GROUP, VERSION, "tradingbots")
async def bot_bodies(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): slim_body(body, status=True)}


@kopf.index(GROUP, VERSION, "strategies")
async def strategy_bodies(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): slim_body(body, status=False)}


@kopf.index(GROUP, VERSION, "exchangeaccounts")
async def account_bodies(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    # status: CredentialsReady feeds the bots' validation
    return {(namespace, name): slim_body(body, status=True)}


@kopf.index(GROUP, VERSION, "tradingbots")
async def bots_by_reference(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[Any, Any]:
    """("strategy"|"account", namespace, referenced name) -> bot names."""
    return reference_keys(namespace, name, spec)


@kopf.index("scheduling.k8s.io", "v1", "priorityclasses")
async def priority_classes(name: str, **_: Any) -> dict[Any, Any]:
    """PriorityClass name -> True: which ones exist (a bot's runtime pods need theirs)."""
    return {name: True}


@kopf.index("coordination.k8s.io", "v1", "leases", labels=MANAGED)
async def bot_leases(namespace: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    bot = owner_bot(body.get("metadata", {}))
    return {(namespace, bot): lease_observation(body)} if bot else {}
