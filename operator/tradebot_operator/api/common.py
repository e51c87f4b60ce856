"""Types shared by the three kinds: object metadata, conditions, references."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import Field

from tradebot_contracts.base import CamelModel
from tradebot_contracts.names import GROUP as GROUP
from tradebot_operator.api.schema import DNS_SUBDOMAIN_PATTERN

VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CATEGORY: Final = "tradebot"

ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
"""Name of a Kubernetes object in the same namespace."""

ConditionStatus = Literal["True", "False", "Unknown"]

CONDITION_TYPE_PATTERN: Final = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN: Final = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
MAX_CONDITIONS: Final = 16
MAX_USED_BY: Final = 1024


class ObjectMeta(CamelModel):
    """The parts of metav1.ObjectMeta the operator reads."""

    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None
    finalizers: list[str] = Field(default_factory=list)


class Condition(CamelModel):
    """One aspect of the object's state, in the shape of metav1.Condition."""

    type: str = Field(max_length=316, pattern=CONDITION_TYPE_PATTERN)
    """Type of condition in CamelCase, e.g. Ready."""
    status: ConditionStatus
    """Status of the condition: True, False or Unknown."""
    observed_generation: int | None = Field(default=None, ge=0)
    """metadata.generation the condition was computed from."""
    last_transition_time: datetime
    """Last time the status changed (not the last time it was checked)."""
    reason: str = Field(min_length=1, max_length=1024, pattern=CONDITION_REASON_PATTERN)
    """Machine-readable CamelCase reason for the last transition."""
    message: str = Field(default="", max_length=32768)
    """Human-readable details about the last transition."""


def conditions_field(description: str) -> Any:
    """A list of Conditions keyed by type, as Kubernetes expects."""
    return Field(
        default_factory=list,
        max_length=MAX_CONDITIONS,
        description=description,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )


class LocalObjectReference(CamelModel):
    """Reference to an object in the same namespace."""

    name: ObjectName
    """Name of the referenced object."""


def used_by_field() -> Any:
    return Field(
        default_factory=list,
        max_length=MAX_USED_BY,
        description="Names of the TradingBots in this namespace that use this object.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


UsedByName = Annotated[str, Field(max_length=253)]
