"""Slim copies of watched objects for the operator's in-memory indexes.

An index entry lives as long as the object, for every object: keeping the whole body
(managedFields, kubectl's and kopf's last-applied copies of the spec) would multiply the
operator's memory for nothing it ever reads.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

META_KEPT = (
    "name", "namespace", "uid", "generation", "resourceVersion", "labels",
    "creationTimestamp", "deletionTimestamp", "finalizers", "ownerReferences",
)  # fmt: skip
# Whole-object copies some clients keep in annotations; never read by the operator.
ANNOTATIONS_DROPPED = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "tradebot.io/last-handled-configuration",
)


def slim_body(body: Mapping[str, Any], *, status: bool) -> dict[str, Any]:
    """apiVersion, kind, the metadata the operator reads, spec, and status if asked.

    A deep copy: kopf reuses and updates the body it hands to handlers.
    """
    meta = body.get("metadata") or {}
    slim_meta = {k: copy.deepcopy(meta[k]) for k in META_KEPT if k in meta}
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in ANNOTATIONS_DROPPED
    }
    if annotations:
        slim_meta["annotations"] = annotations
    out: dict[str, Any] = {"metadata": slim_meta}
    for key in ("apiVersion", "kind"):
        if key in body:
            out[key] = body[key]
    if "spec" in body:
        out["spec"] = copy.deepcopy(dict(body["spec"]))
    if status and "status" in body:
        out["status"] = copy.deepcopy(dict(body["status"]))
    return out
