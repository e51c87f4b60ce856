"""The durable order journal (PostgreSQL): see store.py for fencing, migrations.py for
the schema."""

from tradebot_runtime.journal.migrations import LATEST_VERSION, migrate, schema_version
from tradebot_runtime.journal.store import (
    Fence,
    Journal,
    JournalError,
    StaleEpochError,
    UnknownOrderError,
)

__all__ = [
    "LATEST_VERSION",
    "Fence",
    "Journal",
    "JournalError",
    "StaleEpochError",
    "UnknownOrderError",
    "migrate",
    "schema_version",
]
