"""What to do when an exchange call fails: classify ccxt exceptions into a policy.

The rule that protects money: a failed *create* whose outcome is not certain becomes
LOOKUP (find the order by its client id), never a blind resend. Only errors that prove
the exchange refused the request are final (REJECT). Anything unrecognised on a write is
treated as uncertain, because a lookup is always safe and a wrong "rejected" is not.

ccxt's hierarchy decides the order of checks: RateLimitExceeded and DDoSProtection,
RequestTimeout, ExchangeNotAvailable (and OnMaintenance) and InvalidNonce are all
NetworkError subclasses; DuplicateOrderId and OrderNotFound are InvalidOrder subclasses.
The most specific class is checked first.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass

import ccxt


class Operation(enum.StrEnum):
    """Kind of exchange call that failed."""

    READ = "read"
    """Idempotent reads: market data, balances, order/trade lookups."""
    CREATE = "create"
    """Placing an order."""
    CANCEL = "cancel"
    """Cancelling an order."""


class ErrorAction(enum.StrEnum):
    RETRY = "retry"
    """Read: retry with backoff."""
    LOOKUP = "lookup"
    """Write: outcome unknown; look the order up by client id (order -> UNKNOWN)."""
    REJECT = "reject"
    """Write: the exchange refused; final, do not retry (order -> REJECTED)."""
    RESYNC_CLOCK = "resync_clock"
    """The request was refused for its timestamp: resync the clock (ccxt
    load_time_difference), then retry the same request with the same client id."""
    NOT_FOUND = "not_found"
    """Read: the object does not exist (a lookup by client id found nothing)."""
    FAIL = "fail"
    """Read: permanent failure (bad credentials, bad request); surface, do not retry."""


@dataclass(frozen=True, slots=True)
class ErrorPolicy:
    """How to handle one failure.

    ``reason`` is the exception class name (bounded: safe as a metric label).
    ``exchange_failure`` says whether the failure counts against the exchange's circuit
    breaker (availability and rate-limit problems do; a refused order does not).
    ``rate_limited`` asks the caller to back off the shared rate budget.
    """

    action: ErrorAction
    reason: str
    exchange_failure: bool = False
    rate_limited: bool = False


@dataclass(frozen=True, slots=True)
class _Rule:
    error: type[BaseException]
    on_read: ErrorAction
    on_create: ErrorAction
    on_cancel: ErrorAction
    exchange_failure: bool = False
    rate_limited: bool = False


A = ErrorAction
# Most specific first: the first matching class wins.
_RULES: tuple[_Rule, ...] = (
    # an order-book checksum mismatch (a stream problem) is an InvalidNonce subclass
    _Rule(ccxt.ChecksumError, A.RETRY, A.LOOKUP, A.LOOKUP),
    _Rule(ccxt.InvalidNonce, A.RESYNC_CLOCK, A.RESYNC_CLOCK, A.RESYNC_CLOCK),
    _Rule(ccxt.RateLimitExceeded, A.RETRY, A.LOOKUP, A.LOOKUP, True, True),
    _Rule(ccxt.DDoSProtection, A.RETRY, A.LOOKUP, A.LOOKUP, True, True),
    _Rule(ccxt.RequestTimeout, A.RETRY, A.LOOKUP, A.LOOKUP, True),
    _Rule(ccxt.ExchangeNotAvailable, A.RETRY, A.LOOKUP, A.LOOKUP, True),
    _Rule(ccxt.NetworkError, A.RETRY, A.LOOKUP, A.LOOKUP, True),
    # the response was unreadable, but the request may have been executed
    _Rule(ccxt.BadResponse, A.RETRY, A.LOOKUP, A.LOOKUP, True),
    _Rule(ccxt.CancelPending, A.RETRY, A.LOOKUP, A.LOOKUP),
    _Rule(ccxt.OperationFailed, A.RETRY, A.LOOKUP, A.LOOKUP, True),
    # an order with our client id already exists: most likely our earlier attempt landed
    _Rule(ccxt.DuplicateOrderId, A.FAIL, A.LOOKUP, A.LOOKUP),
    # on cancel: already filled, cancelled or never placed; only a lookup can tell
    _Rule(ccxt.OrderNotFound, A.NOT_FOUND, A.LOOKUP, A.LOOKUP),
    _Rule(ccxt.AuthenticationError, A.FAIL, A.REJECT, A.REJECT),
    # proven refusals of a create; for a cancel the order's state is still unknown
    _Rule(ccxt.InsufficientFunds, A.FAIL, A.REJECT, A.LOOKUP),
    _Rule(ccxt.InvalidOrder, A.FAIL, A.REJECT, A.LOOKUP),
    _Rule(ccxt.BadRequest, A.FAIL, A.REJECT, A.LOOKUP),
    _Rule(ccxt.NotSupported, A.FAIL, A.REJECT, A.LOOKUP),
    _Rule(ccxt.ArgumentsRequired, A.FAIL, A.REJECT, A.LOOKUP),
    _Rule(ccxt.OperationRejected, A.FAIL, A.REJECT, A.LOOKUP),
    # unmapped exchange error codes: unknown meaning, so a write is looked up
    _Rule(ccxt.ExchangeError, A.FAIL, A.LOOKUP, A.LOOKUP),
    _Rule(ccxt.BaseError, A.FAIL, A.LOOKUP, A.LOOKUP),
    # transport errors that escaped ccxt's wrapping (and asyncio.TimeoutError)
    _Rule(TimeoutError, A.RETRY, A.LOOKUP, A.LOOKUP, True),
    _Rule(ConnectionError, A.RETRY, A.LOOKUP, A.LOOKUP, True),
    _Rule(OSError, A.RETRY, A.LOOKUP, A.LOOKUP, True),
    # the task sending the order was cancelled mid-flight: the request may have gone out
    _Rule(asyncio.CancelledError, A.FAIL, A.LOOKUP, A.LOOKUP),
)
_FALLBACK: dict[Operation, ErrorAction] = {
    Operation.READ: A.FAIL,
    Operation.CREATE: A.LOOKUP,
    Operation.CANCEL: A.LOOKUP,
}


def classify_error(error: BaseException, operation: Operation) -> ErrorPolicy:
    """The policy for ``error`` raised by an exchange call of kind ``operation``."""
    for rule in _RULES:
        if isinstance(error, rule.error):
            if operation is Operation.READ:
                action = rule.on_read
            elif operation is Operation.CREATE:
                action = rule.on_create
            else:
                action = rule.on_cancel
            return ErrorPolicy(
                action=action,
                reason=type(error).__name__,
                exchange_failure=rule.exchange_failure,
                rate_limited=rule.rate_limited,
            )
    return ErrorPolicy(action=_FALLBACK[operation], reason=type(error).__name__)
