"""Every environment variable a runtime container reads, in one place.

The operator sets the identity variables (downward API and names, never a secret) on every
runtime pod; the others are development and test overrides that the operator never sets.
Tests derive a runtime process's environment from the Deployment the operator renders
instead of re-typing these names.
"""

from __future__ import annotations

from typing import Final

# Identity, set by the operator on every runtime pod.
NAMESPACE: Final = "TRADEBOT_NAMESPACE"
POD_NAME: Final = "TRADEBOT_POD_NAME"
POD_UID: Final = "TRADEBOT_POD_UID"
NODE_NAME: Final = "TRADEBOT_NODE_NAME"
BOT: Final = "TRADEBOT_BOT"
ACCOUNT: Final = "TRADEBOT_ACCOUNT"
CONFIGMAP: Final = "TRADEBOT_CONFIGMAP"
CONFIG_PATH: Final = "TRADEBOT_CONFIG_PATH"
LEASES: Final = "TRADEBOT_LEASES"
"""Comma-separated Lease names, shard order."""
METRICS_PORT: Final = "TRADEBOT_METRICS_PORT"

IDENTITY: Final[tuple[str, ...]] = (
    NAMESPACE,
    POD_NAME,
    POD_UID,
    NODE_NAME,
    BOT,
    ACCOUNT,
    CONFIGMAP,
    CONFIG_PATH,
    LEASES,
    METRICS_PORT,
)
"""Names a bot's ``runtime.env`` may not override."""

# Development and test overrides (never set by the operator).
JOURNAL_DSN: Final = "TRADEBOT_JOURNAL_DSN"
REDIS_URL: Final = "TRADEBOT_REDIS_URL"
PAPER_FEE_RATE: Final = "TRADEBOT_PAPER_FEE_RATE"
POLL_INTERVAL: Final = "TRADEBOT_POLL_INTERVAL_SECONDS"
MARKET_DATA_WEBSOCKET: Final = "TRADEBOT_MARKET_DATA_WEBSOCKET"
VAULT_TOKEN_PATH: Final = "TRADEBOT_VAULT_TOKEN_PATH"
CREDENTIALS_POLL_SECONDS: Final = "TRADEBOT_CREDENTIALS_POLL_SECONDS"
PODRUNNER_ROOT: Final = "PODRUNNER_ROOT"
LOG_LEVEL: Final = "TRADEBOT_LOG_LEVEL"
