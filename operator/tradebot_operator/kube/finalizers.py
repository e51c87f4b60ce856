"""Adding or removing one of the operator's finalizers on an object, without ever
overwriting a concurrent change of the list (kopf's own finalizer, another controller's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from tradebot_operator.kube.client import KubeClient
from tradebot_operator.kube.resources import Resource


def has_finalizer(body: Mapping[str, Any], finalizer: str) -> bool:
    return finalizer in ((body.get("metadata") or {}).get("finalizers") or [])


async def set_finalizer(
    kube: KubeClient,
    res: Resource,
    namespace: str,
    name: str,
    body: Mapping[str, Any],
    finalizer: str,
    *,
    present: bool,
) -> bool:
    """Add or remove ``finalizer``: a JSON patch guarded by the body's resourceVersion.
    ``body`` may be a cached copy a version behind (our own last write); then, rarely, one
    GET gives the current list. Adding to an object being deleted is too late (the API
    server refuses it) and is skipped. True if the object now is as wanted (False: too late
    to add, or the object is gone)."""
    for attempt in range(2):
        meta = body.get("metadata") or {}
        finalizers = list(meta.get("finalizers") or [])
        if (finalizer in finalizers) == present:
            return True
        if present and meta.get("deletionTimestamp"):
            return False
        wanted = [*finalizers, finalizer] if present else [f for f in finalizers if f != finalizer]
        ops: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/resourceVersion",
             "value": meta.get("resourceVersion")},
            {"op": "add", "path": "/metadata/finalizers", "value": wanted},
        ]  # fmt: skip
        try:
            await kube.patch_json(res, namespace, name, ops)
            return True
        except ApiException as err:
            if err.status == 404:
                return False  # gone: nothing to hold or release any more
            if err.status not in (409, 422) or attempt:
                raise
        fresh = await kube.get(res, namespace, name)
        if fresh is None:
            return False
        body = fresh
    return False  # pragma: no cover - the loop returns or raises
