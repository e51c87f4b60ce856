"""The Lease heartbeat: a small JSON the shard holder writes into its Lease's annotations
on every renewal, and the operator aggregates into TradingBot status.

Figures are per shard (the symbols of that Lease), so the operator sums them over the
shards of an account. Money figures are in ``quoteCurrency`` (the bot's allocation quote)
and the runtime quantizes them to that currency's precision, so the decimal places of the
string are the currency's (``"-0.00598129"`` for USDT at 8 places, ``"12.35"`` for USD).
Decimals are strings of at most DECIMAL_MAX_LENGTH characters; the encoded form is bounded
by MAX_HEARTBEAT_BYTES so that renewals stay cheap for etcd and the API server.
``encode_heartbeat`` fits what does not (it never refuses a heartbeat for its figures).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Literal

from pydantic import Field, ValidationError, field_serializer, field_validator

from tradebot_contracts.base import CamelModel
from tradebot_contracts.types import SignedDecimalString, fit_decimal, format_decimal

HEARTBEAT_ANNOTATION: Final = "tradebot.io/heartbeat"
MAX_HEARTBEAT_BYTES: Final = 1024
MAX_MESSAGE_CHARS: Final = 200
MONEY_FIELDS: Final = ("position_notional", "realized_pnl", "unrealized_pnl")
"""The heartbeat's money figures, all in ``quote_currency``."""

log = logging.getLogger("tradebot.heartbeat")

RuntimeState = Literal[
    "Starting",  # connecting, loading the journal
    "Reconciling",  # comparing journal, open orders and balances; not trading yet
    "Trading",  # Active: placing orders
    "ReduceOnly",  # only orders that shrink positions
    "Halted",  # no new orders (kill switch, breaker, or delete request)
    "Draining",  # shutting down, releasing the Lease
    "Error",  # cannot trade; see message
]


class HeartbeatDecodeError(ValueError):
    """The annotation is missing its JSON or does not fit the contract."""


class Heartbeat(CamelModel):
    """What one shard holder reports on every Lease renewal."""

    pod: str = Field(max_length=253)
    epoch: int = Field(ge=0)
    """Fencing term: the Lease's leaseTransitions when this pod acquired it."""
    shard: int = Field(ge=0)
    ts: datetime
    """When the heartbeat was written (UTC)."""
    state: RuntimeState
    ready: bool
    """True once reconciliation agreed and the pod may trade."""
    open_orders: int = Field(default=0, ge=0)
    position_notional: SignedDecimalString = Decimal(0)
    realized_pnl: SignedDecimalString = Decimal(0)
    unrealized_pnl: SignedDecimalString = Decimal(0)
    quote_currency: str | None = Field(default=None, max_length=32)
    """Currency of the money figures above (the bot's allocation quote, e.g. USDT); their
    decimal places are its precision. Unset from runtimes older than this field."""
    breaker: str | None = Field(default=None, max_length=64)
    """Name of the tripped risk breaker (e.g. ``maxDailyLoss``), if any."""
    mismatches: int = Field(default=0, ge=0)
    """Reconcile mismatches found between the journal and the exchange."""
    config_version: str | None = Field(default=None, max_length=64)
    """RuntimeConfig.config_version the pod is running with."""
    ack_delete_request: str | None = Field(default=None, max_length=64)
    """DeleteRequest.id whose action this pod has completed."""
    message: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @field_serializer("ts")
    def _ts_text(self, value: datetime) -> str:
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def age_seconds(self, now: datetime) -> float:
        return (now - self.ts).total_seconds()


def _fitted(heartbeat: Heartbeat) -> Heartbeat:
    """The heartbeat with every money figure fitted to DECIMAL_MAX_LENGTH characters (a
    figure the decoder or the CRD would refuse is rounded, never left out)."""
    update: dict[str, Any] = {}
    for name in MONEY_FIELDS:
        value: Decimal = getattr(heartbeat, name)
        fitted = fit_decimal(value)
        if fitted is not value:
            update[name] = fitted
            if fitted.adjusted() < value.adjusted():  # clamped: the figure is wrong upstream
                log.warning(
                    "heartbeat %s %s does not fit; clamped to %s",
                    Heartbeat.model_fields[name].alias, format_decimal(value)[:64],
                    format_decimal(fitted),
                )  # fmt: skip
    return heartbeat.model_copy(update=update) if update else heartbeat


def encode_heartbeat(heartbeat: Heartbeat) -> str:
    """Compact JSON for the annotation value, always decodable by ``decode_heartbeat``:
    money figures that do not fit are rounded (see ``_fitted``), a message too long in
    bytes (non-ASCII) is shortened. Raises ValueError only if the fixed-size fields alone
    exceed MAX_HEARTBEAT_BYTES, which their own bounds prevent."""
    heartbeat = _fitted(heartbeat)
    text = heartbeat.model_dump_json(by_alias=True, exclude_none=True)
    message = heartbeat.message
    while len(text.encode()) > MAX_HEARTBEAT_BYTES and message:
        excess = len(text.encode()) - MAX_HEARTBEAT_BYTES
        message = message[: max(0, len(message) - max(1, excess // 4))] or None
        text = heartbeat.model_copy(update={"message": message}).model_dump_json(
            by_alias=True, exclude_none=True
        )
    if len(text.encode()) > MAX_HEARTBEAT_BYTES:
        raise ValueError(f"heartbeat is {len(text.encode())} bytes; limit {MAX_HEARTBEAT_BYTES}")
    return text


def decode_heartbeat(text: str) -> Heartbeat:
    """Parse an annotation value; raises HeartbeatDecodeError on anything unexpected."""
    if len(text.encode()) > MAX_HEARTBEAT_BYTES:
        raise HeartbeatDecodeError(f"heartbeat larger than {MAX_HEARTBEAT_BYTES} bytes")
    try:
        return Heartbeat.model_validate_json(text)
    except ValidationError as exc:
        raise HeartbeatDecodeError(str(exc)) from exc


def heartbeat_from_annotations(annotations: dict[str, str] | None) -> Heartbeat | None:
    """The heartbeat in a Lease's annotations, None when absent or malformed (a broken
    heartbeat must never crash the operator)."""
    text = (annotations or {}).get(HEARTBEAT_ANNOTATION)
    if text is None:
        return None
    try:
        return decode_heartbeat(text)
    except HeartbeatDecodeError:
        return None


def now_utc() -> datetime:
    return datetime.now(UTC)
