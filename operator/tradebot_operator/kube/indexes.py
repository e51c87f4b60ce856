"""Read access to kopf's in-memory indexes, without importing kopf.

An index maps a key to a store of values (one value per object here). The views are live:
a reader always sees the newest bodies. Typed loosely so that tests can pass plain dicts
of lists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# A kopf index: key -> store of values.
IndexView = Mapping[Any, Iterable[Any]]
# (namespace, name) -> raw body; filled from kopf indexes.
BodyLookup = Callable[[str, str], Mapping[str, Any] | None]


def first(index: IndexView, key: Any) -> Any:
    store = index.get(key)
    return next(iter(store), None) if store is not None else None


def every(index: IndexView, key: Any) -> list[Any]:
    return list(index.get(key) or [])


def body_lookup(index: IndexView) -> BodyLookup:
    return lambda ns, name: first(index, (ns, name))


@dataclass(frozen=True)
class Indexes:
    """The operator's kopf indexes (handlers/indexes.py registers them)."""

    bots: IndexView
    """(namespace, name) -> slim TradingBot body, status included."""
    strategies: IndexView
    """(namespace, name) -> slim Strategy body."""
    accounts: IndexView
    """(namespace, name) -> slim ExchangeAccount body, status included."""
    leases: IndexView
    """(namespace, bot) -> LeaseObservation of each of the bot's Leases."""
    bots_by_reference: IndexView
    """("strategy"|"account", namespace, referenced name) -> names of the bots using it."""
    priority_classes: IndexView | None = None
    """PriorityClass name -> a marker per existing PriorityClass (None: not indexed, the
    bots' priorityClassName is not checked)."""
