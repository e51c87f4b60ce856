"""The order state machine: every order's life from journaled intent to a terminal state.

::

    INTENT ──> SENDING ──> OPEN ──> PARTIALLY_FILLED ──> FILLED
      │           │          │            │          └─> CANCELED / EXPIRED
      │           │          └──────┬─────┴─> PENDING_CANCEL ──> CANCELED / FILLED / EXPIRED
      │           └─> UNKNOWN ──(lookup by client id)──> OPEN / FILLED / ... / ABANDONED
      │           └─> REJECTED (the exchange refused: final)
      └─> ABANDONED (never sent, e.g. the lease was lost before sending)

``UNKNOWN`` means a create request may or may not have reached the exchange (timeout,
5xx, 418/429, network error). It is left only through what the exchange says about the
client order id — a lookup or a stream update — never by resending blindly. A lookup that
finds nothing resolves to ABANDONED only once ``not_found_grace_ms`` has passed since the
send, because a request in flight may still land; before that it stays UNKNOWN.
An ABANDONED order's client id is never reused: the next order takes a new sequence.

On recovery (new leader, restart) every INTENT, SENDING and UNKNOWN order from the journal
must be looked up (``needs_lookup``): the crash may have happened after the send.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from tradebot_runtime.domain import ZERO, OpenOrder, OrderIntent, Side


class OrderState(enum.StrEnum):
    """States as stored in the journal's ``orders.state`` column."""

    INTENT = "intent"
    SENDING = "sending"
    UNKNOWN = "unknown"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    PENDING_CANCEL = "pending_cancel"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    ABANDONED = "abandoned"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_working(self) -> bool:
        """Live on the exchange (or possibly so): counts as exposure for risk."""
        return self in WORKING_STATES


S = OrderState
TERMINAL_STATES: Final = frozenset({S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED, S.ABANDONED})
WORKING_STATES: Final = frozenset(
    {S.INTENT, S.SENDING, S.UNKNOWN, S.OPEN, S.PARTIALLY_FILLED, S.PENDING_CANCEL}
)
NEEDS_LOOKUP_STATES: Final = frozenset({S.INTENT, S.SENDING, S.UNKNOWN})

_SEND_OUTCOMES: Final = frozenset(
    {S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED}
)

TRANSITIONS: Final[dict[OrderState, frozenset[OrderState]]] = {
    S.INTENT: _SEND_OUTCOMES | {S.SENDING, S.UNKNOWN, S.ABANDONED},
    S.SENDING: _SEND_OUTCOMES | {S.UNKNOWN},
    # leaves UNKNOWN only through what the exchange says about the client id
    S.UNKNOWN: _SEND_OUTCOMES | {S.ABANDONED},
    S.OPEN: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.PENDING_CANCEL}),
    S.PARTIALLY_FILLED: frozenset(
        {S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.PENDING_CANCEL}
    ),
    # a cancel can lose the race against a fill, or be refused (back to OPEN/PARTIALLY_FILLED)
    S.PENDING_CANCEL: frozenset(
        {S.PENDING_CANCEL, S.CANCELED, S.FILLED, S.EXPIRED, S.OPEN, S.PARTIALLY_FILLED}
    ),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
    S.ABANDONED: frozenset(),
}

# how far an order has progressed on the exchange; a snapshot behind this is stale
_PROGRESS: Final = {S.OPEN: 1, S.PARTIALLY_FILLED: 2, S.PENDING_CANCEL: 2}


class IllegalTransition(RuntimeError):
    """A transition the state machine does not allow: a bug or corrupted journal."""

    def __init__(self, client_order_id: str, source: OrderState, target: OrderState) -> None:
        super().__init__(f"order {client_order_id}: illegal transition {source} -> {target}")
        self.client_order_id = client_order_id
        self.source = source
        self.target = target


def can_transition(source: OrderState, target: OrderState) -> bool:
    return target in TRANSITIONS[source]


def needs_lookup(state: OrderState) -> bool:
    """Whether a journaled order in ``state`` must be looked up on the exchange by its client
    id before anything else happens to it (recovery after a crash or failover)."""
    return state in NEEDS_LOOKUP_STATES


def state_from_ccxt_status(status: str | None, filled: Decimal) -> OrderState:
    """Map a ccxt unified order status to our state.

    ``closed`` means fully filled in ccxt; ``canceled`` may carry a partial fill (it stays
    CANCELED: the fill itself is booked from the trades).
    """
    match status:
        case "open":
            return S.PARTIALLY_FILLED if filled > 0 else S.OPEN
        case "closed":
            return S.FILLED
        case "canceled" | "cancelled":
            return S.CANCELED
        case "expired":
            return S.EXPIRED
        case "rejected":
            return S.REJECTED
        case _:
            raise ValueError(f"unknown ccxt order status {status!r}")


class UpdateOutcome(enum.StrEnum):
    """What applying an exchange report did to an order."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"
    STALE = "stale"
    """The report is older than what we know (e.g. a REST snapshot after a stream update):
    ignored."""
    CONFLICT = "conflict"
    """The report contradicts a terminal state: ignored, but must be logged and counted as a
    reconcile mismatch."""
    RETRY_LATER = "retry_later"
    """A lookup found nothing, but the send is too recent to conclude: look up again later."""


class LookupResult(enum.StrEnum):
    """What a lookup by client order id found."""

    FOUND = "found"
    NOT_FOUND = "not_found"


@dataclass(slots=True)
class OrderRecord:
    """One order as the journal holds it. Mutated only through its methods, which enforce
    the state machine; the I/O layer persists the record after each change."""

    client_order_id: str
    intent: OrderIntent
    shard: int
    epoch: int
    seq: int
    created_ms: int
    state: OrderState = S.INTENT
    filled: Decimal = ZERO
    exchange_order_id: str | None = None
    sent_ms: int | None = None
    updated_ms: int | None = None

    @property
    def remaining(self) -> Decimal:
        return self.intent.amount - self.filled

    @property
    def symbol(self) -> str:
        return self.intent.symbol

    @property
    def side(self) -> Side:
        return self.intent.side

    def as_open_order(self) -> OpenOrder:
        """The snapshot strategies and the risk engine see for a working order."""
        intent = self.intent
        return OpenOrder(
            client_order_id=self.client_order_id,
            symbol=intent.symbol,
            side=intent.side,
            type=intent.type,
            amount=intent.amount,
            filled=self.filled,
            price=intent.price,
            tag=intent.tag,
        )

    def transition(self, target: OrderState, now_ms: int) -> None:
        """Move to ``target`` or raise IllegalTransition."""
        if not can_transition(self.state, target):
            raise IllegalTransition(self.client_order_id, self.state, target)
        self.state = target
        self.updated_ms = now_ms

    def mark_sending(self, now_ms: int) -> None:
        """About to send the create request (records the send time for the lookup grace)."""
        self.transition(S.SENDING, now_ms)
        self.sent_ms = now_ms

    def mark_unknown(self, now_ms: int) -> None:
        """The create request failed in a way that leaves its outcome unknown."""
        if self.sent_ms is None:
            self.sent_ms = now_ms
        self.transition(S.UNKNOWN, now_ms)

    def mark_not_sent(self, now_ms: int) -> None:
        """The create request certainly never went out (the right to send ended first):
        abandoned at once, nothing to look up."""
        self.transition(S.UNKNOWN, now_ms)
        self.transition(S.ABANDONED, now_ms)

    def mark_rejected(self, now_ms: int) -> None:
        """The exchange definitely refused the create request."""
        self.transition(S.REJECTED, now_ms)

    def mark_abandoned(self, now_ms: int) -> None:
        """Give up on an INTENT that was never sent (this process knows it was not)."""
        if self.state is not S.INTENT:
            raise IllegalTransition(self.client_order_id, self.state, S.ABANDONED)
        self.transition(S.ABANDONED, now_ms)

    def request_cancel(self, now_ms: int) -> None:
        self.transition(S.PENDING_CANCEL, now_ms)

    def cancel_refused(self, now_ms: int) -> None:
        """The cancel request was refused and the order is still working."""
        if self.state is not S.PENDING_CANCEL:
            raise IllegalTransition(self.client_order_id, self.state, S.OPEN)
        self.transition(S.PARTIALLY_FILLED if self.filled > 0 else S.OPEN, now_ms)

    def apply_exchange_update(
        self,
        status: str | None,
        filled: Decimal,
        now_ms: int,
        *,
        exchange_order_id: str | None = None,
    ) -> UpdateOutcome:
        """Apply what the exchange reports about this order (ack, stream event, lookup).

        ``filled`` is the cumulative filled amount. Reports arrive out of order (REST and
        WebSocket race), so an older report is ignored instead of raising.
        """
        target = state_from_ccxt_status(status, filled)
        if exchange_order_id is not None and self.exchange_order_id is None:
            self.exchange_order_id = exchange_order_id
        if filled > self.intent.amount:
            return UpdateOutcome.CONFLICT
        if filled < self.filled:
            return UpdateOutcome.STALE
        current = self.state
        if current.is_terminal:
            if target is current:
                return self._set_filled(filled, now_ms)
            return UpdateOutcome.STALE if not target.is_terminal else UpdateOutcome.CONFLICT
        if current is S.PENDING_CANCEL and target in (S.OPEN, S.PARTIALLY_FILLED):
            # the cancel is still in flight; the order stays pending, only fills move
            return self._set_filled(filled, now_ms)
        if _PROGRESS.get(target, 3) < _PROGRESS.get(current, 0):
            return UpdateOutcome.STALE
        if target is current:
            return self._set_filled(filled, now_ms)
        self.transition(target, now_ms)
        self.filled = filled
        return UpdateOutcome.APPLIED

    def resolve_lookup(
        self,
        result: LookupResult,
        now_ms: int,
        *,
        status: str | None = None,
        filled: Decimal = ZERO,
        not_found_grace_ms: int,
        exchange_order_id: str | None = None,
        not_before_ms: int = 0,
    ) -> UpdateOutcome:
        """Apply the result of looking the order up by its client id.

        NOT_FOUND abandons an order only in INTENT/SENDING/UNKNOWN and only once
        ``not_found_grace_ms`` (the exchange's recvWindow plus clock skew) has passed since
        the latest moment its request could have been signed: the end of the failed send
        (when it became UNKNOWN), or ``not_before_ms`` (the takeover, for an order a
        previous leader was sending); for an order we saw on the exchange it is a CONFLICT.
        """
        if result is LookupResult.FOUND:
            return self.apply_exchange_update(
                status, filled, now_ms, exchange_order_id=exchange_order_id
            )
        if not needs_lookup(self.state):
            return UpdateOutcome.CONFLICT
        sent = self.sent_ms if self.sent_ms is not None else self.created_ms
        origin = max(sent, self.updated_ms or 0, not_before_ms)
        if now_ms - origin < not_found_grace_ms:
            return UpdateOutcome.RETRY_LATER
        if self.state is S.SENDING:
            self.transition(S.UNKNOWN, now_ms)  # a sent order is abandoned only via UNKNOWN
        self.transition(S.ABANDONED, now_ms)
        return UpdateOutcome.APPLIED

    def revive(self, status: str | None, filled: Decimal, now_ms: int) -> UpdateOutcome:
        """An ABANDONED order the exchange does know after all (it took the request late):
        it takes the exchange's state, and a working one is working again (risk, halts
        and cancels see it). The only way out of ABANDONED."""
        if self.state is not S.ABANDONED:
            raise IllegalTransition(self.client_order_id, self.state, S.OPEN)
        if filled > self.intent.amount:
            return UpdateOutcome.CONFLICT
        self.state = state_from_ccxt_status(status, filled)
        self.filled = filled
        self.updated_ms = now_ms
        return UpdateOutcome.APPLIED

    def _set_filled(self, filled: Decimal, now_ms: int) -> UpdateOutcome:
        if filled == self.filled:
            return UpdateOutcome.UNCHANGED
        self.filled = filled
        self.updated_ms = now_ms
        return UpdateOutcome.APPLIED
