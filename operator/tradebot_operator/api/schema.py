"""Helpers that attach Kubernetes-only OpenAPI extensions (CEL rules, list types) to
pydantic fields and models; crdgen copies them into the CRD schemas unchanged."""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import WithJsonSchema

JsonDict = dict[str, Any]

DNS_SUBDOMAIN_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
QUANTITY_PATTERN: Final = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?"
    r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def cel(
    rule: str,
    message: str,
    *,
    field_path: str | None = None,
    reason: str | None = None,
) -> JsonDict:
    """One ``x-kubernetes-validations`` entry. ``field_path`` (relative, e.g. ``.shards``)
    makes the API server report the error on that field instead of the parent object."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    if reason is not None:
        entry["reason"] = reason
    return entry


def validations(*rules: JsonDict) -> JsonDict:
    """``json_schema_extra`` carrying CEL rules."""
    return {"x-kubernetes-validations": list(rules)}


IMMUTABLE_REASON: Final = "FieldValueForbidden"


def immutable(field: str) -> JsonDict:
    return cel("self == oldSelf", f"{field} is immutable", reason=IMMUTABLE_REASON)


Quantity = Annotated[
    int | str,
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A Kubernetes resource quantity (``500m``, ``1Gi``, ``2``)."""

PreserveUnknown: Final[JsonDict] = {
    "type": "object",
    "x-kubernetes-preserve-unknown-fields": True,
}
