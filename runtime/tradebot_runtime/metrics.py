"""Prometheus metrics of the runtime (the chart's alerts and dashboard query these names).
Labels are bounded: shard numbers, symbols of the config, ccxt method names and exception
class names."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS: Final = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

ORDER_LATENCY = Histogram(
    "trading_order_latency_seconds",
    "Signal to order acknowledged by the exchange (journal write included).",
    ["shard"],
    buckets=LATENCY_BUCKETS,
)
ORDERS = Counter(
    "trading_orders_total", "Orders by outcome.", ["shard", "symbol", "side", "outcome"]
)
RISK_REJECTIONS = Counter(
    "trading_risk_rejections_total", "Order intents refused by a named risk check.", ["check"]
)
API_LATENCY = Histogram(
    "exchange_api_latency_seconds",
    "Latency of exchange REST calls.",
    ["method"],
    buckets=LATENCY_BUCKETS,
)
API_ERRORS = Counter(
    "exchange_api_errors_total", "Failed exchange calls by ccxt error class.", ["method", "error"]
)
WS_DISCONNECTS = Counter(
    "exchange_websocket_disconnects_total", "Market data stream failures.", ["stream"]
)
POSITION_PNL = Gauge(
    "trading_position_pnl", "PnL per symbol in the quote currency.", ["symbol", "kind"]
)
DAILY_PNL = Gauge("trading_daily_pnl", "PnL of the current UTC day in the quote currency.")
LEADER = Gauge("tradebot_leader", "1 while this pod leads the shard.", ["shard"])
CANCEL_FAILURES = Counter(
    "tradebot_cancel_failures_total",
    "Cancel requests that failed or timed out (the order is looked up and retried).",
    ["shard"],
)
RECONCILE_MISMATCHES = Counter(
    "tradebot_reconcile_mismatches_total",
    "Differences found between the journal and the exchange.",
    ["shard", "kind"],
)
RATE_LIMIT_FALLBACK = Gauge(
    "tradebot_ratelimit_local_fallback",
    "1 while the shared (Redis) rate budget is unreachable and the local share is used.",
)
RATE_LIMIT_ACCOUNT_PODS = Gauge(
    "tradebot_ratelimit_account_pods",
    "Pods of every bot seen on the account's shared budget (the fallback divides by it).",
)
RATE_LIMIT_PAUSES = Counter(
    "tradebot_ratelimit_pauses_total",
    "429/418 replies after which this pod paused its requests for the Retry-After.",
)
RATE_LIMIT_WAIT = Counter(
    "tradebot_ratelimit_wait_seconds_total", "Time spent waiting for rate-limit tokens."
)
MARKET_DATA_STALE = Gauge(
    "tradebot_market_data_stale", "1 while market data of the symbol is stale.", ["symbol"]
)
JOURNAL_FENCED = Counter(
    "tradebot_journal_fenced_total", "Journal writes refused for a stale epoch.", ["shard"]
)
SHARD_START_FAILURES = Counter(
    "tradebot_shard_start_failures_total",
    "Shard starts (reconciliation before trading) that failed.",
    ["shard"],
)
SHARD_START_BACKOFF = Gauge(
    "tradebot_shard_start_backoff_seconds",
    "Back-off before a shard whose start failed is handed back and retried (0 once started).",
    ["shard"],
)
ORDER_REJECTIONS = Counter(
    "trading_order_rejections_total",
    "Orders the exchange refused, by ccxt error class (InsufficientFunds, InvalidOrder, ...).",
    ["symbol", "reason"],
)
MARKET_DATA_INVALID = Counter(
    "tradebot_market_data_invalid_total",
    "Candles dropped as invalid (non-positive or non-finite prices, high below low).",
    ["symbol"],
)
CONFIG_ERRORS = Counter(
    "tradebot_config_errors_total",
    "Problems in the runtime configuration found at run time (e.g. unknown symbols).",
    ["kind"],
)
