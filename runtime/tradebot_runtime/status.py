"""Pure helpers of the app: the Lease heartbeat from engine state, and which fields of a
new RuntimeConfig apply live versus need a rollout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradebot_contracts.heartbeat import MAX_MESSAGE_CHARS, Heartbeat, RuntimeState
from tradebot_contracts.runtime_config import LIVE_FIELDS, RuntimeConfig
from tradebot_contracts.types import TradingState
from tradebot_runtime.precision import MoneyPrecision


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    live: frozenset[str]
    """Changed fields the runtime applies at once."""
    rolled: frozenset[str]
    """Changed fields that only a new pod applies (the Deployment rolls)."""

    @property
    def empty(self) -> bool:
        return not self.live and not self.rolled


def diff_config(old: RuntimeConfig, new: RuntimeConfig) -> ConfigDiff:
    live: set[str] = set()
    rolled: set[str] = set()
    for name in type(old).model_fields:
        if getattr(old, name) != getattr(new, name):
            (live if name in LIVE_FIELDS else rolled).add(name)
    live.discard("config_version")  # follows the rolled fields; not an action by itself
    return ConfigDiff(frozenset(live), frozenset(rolled))


@dataclass(frozen=True, slots=True)
class ShardView:
    """What the heartbeat of one held shard reports (built from the ShardEngine)."""

    shard: int
    epoch: int
    reconciled: bool
    stopped: bool
    open_orders: int
    position_notional: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    mismatches: int
    breaker: str | None = None
    error: str | None = None


def runtime_state(
    view: ShardView | None, trading_state: TradingState, *, draining: bool, deleting: bool
) -> RuntimeState:
    if draining:
        return "Draining"
    if view is None:
        return "Starting"
    if view.error is not None or view.stopped:
        return "Error"
    if not view.reconciled:
        return "Reconciling"
    if deleting or trading_state == "Halted":
        return "Halted"
    if trading_state == "ReduceOnly":
        return "ReduceOnly"
    return "Trading"


def build_heartbeat(
    *,
    pod: str,
    shard: int,
    epoch: int,
    now: datetime,
    view: ShardView | None,
    trading_state: TradingState,
    config_version: str,
    draining: bool = False,
    deleting: bool = False,
    ack_delete_request: str | None = None,
    messages: list[str] | None = None,
    money: MoneyPrecision | None = None,
) -> Heartbeat:
    """The heartbeat of one shard. Money figures are quantized to ``money`` (the quote
    currency's precision; DEFAULT_MONEY_PLACES when None) and labelled with its currency."""
    money = money or MoneyPrecision(None)
    state = runtime_state(view, trading_state, draining=draining, deleting=deleting)
    parts = list(messages or [])
    if view is not None and view.error:
        parts.insert(0, view.error)
    message = "; ".join(parts)[:MAX_MESSAGE_CHARS] or None
    fields: dict[str, Any] = {}
    if view is not None:
        fields = {
            "open_orders": view.open_orders,
            "position_notional": money.quantize(view.position_notional),
            "realized_pnl": money.quantize(view.realized_pnl),
            "unrealized_pnl": money.quantize(view.unrealized_pnl),
            "mismatches": view.mismatches,
            "breaker": view.breaker,
        }
    return Heartbeat(
        pod=pod,
        epoch=epoch,
        shard=shard,
        ts=now,
        state=state,
        ready=state in ("Trading", "ReduceOnly", "Halted"),
        config_version=config_version or None,
        ack_delete_request=ack_delete_request,
        message=message,
        quote_currency=money.currency,
        **fields,
    )
