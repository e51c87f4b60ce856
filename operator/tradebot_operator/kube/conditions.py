"""metav1.Condition bookkeeping: lastTransitionTime moves only when the status flips."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

ConditionStatus = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class ConditionUpdate:
    """What a reconcile concluded about one condition type."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""


def _iso(ts: datetime) -> str:
    return ts.isoformat(timespec="seconds").replace("+00:00", "Z")


def merge_conditions(
    current: Iterable[dict[str, Any]],
    updates: Iterable[ConditionUpdate],
    *,
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """The new conditions list: updated types replaced, others kept, order by type.

    lastTransitionTime is kept from the current condition when the status did not change,
    so that `kubectl describe` tells how long a bot has been in its state.
    """
    by_type = {c["type"]: dict(c) for c in current if "type" in c}
    for update in updates:
        previous = by_type.get(update.type)
        transition = (
            previous["lastTransitionTime"]
            if previous
            and previous.get("status") == update.status
            and previous.get("lastTransitionTime")
            else _iso(now)
        )
        condition: dict[str, Any] = {
            "type": update.type,
            "status": update.status,
            "reason": update.reason,
            "message": update.message[:32768],
            "lastTransitionTime": transition,
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        by_type[update.type] = condition
    return [by_type[t] for t in sorted(by_type)]


def find(conditions: Iterable[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)
