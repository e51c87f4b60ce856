"""The one status writer: JSON merge patches of the status subresource, for every kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tradebot_operator.kube.client import KubeClient
from tradebot_operator.kube.resources import Resource


def current_status(body: Mapping[str, Any]) -> dict[str, Any]:
    """The object's status as the operator compares it: without kopf's own bookkeeping."""
    current = dict(body.get("status") or {})
    current.pop("kopf", None)
    return current


def status_patch(current: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning `current` into `new` (removed map keys become null)."""
    patch: dict[str, Any] = {}
    for key in set(current) | set(new):
        if key not in new:
            patch[key] = None
        elif isinstance(new[key], dict) and isinstance(current.get(key), dict):
            sub = status_patch(current[key], new[key])
            if sub:
                patch[key] = sub
        elif current.get(key) != new[key]:
            patch[key] = new[key]
    return patch


async def write_status(
    kube: KubeClient, res: Resource, namespace: str | None, name: str, patch: dict[str, Any]
) -> str | None:
    """Patch the status subresource; the resourceVersion the write produced (None if the
    server did not say)."""
    result = await kube.patch_merge(res, namespace, name, {"status": patch}, subresource="status")
    version = (result.get("metadata") or {}).get("resourceVersion")
    return str(version) if version else None
