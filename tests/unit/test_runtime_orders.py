"""Order state machine and the ccxt error policy."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import ccxt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradebot_runtime.domain import OrderIntent, OrderType, Side
from tradebot_runtime.error_policy import ErrorAction, Operation, classify_error
from tradebot_runtime.orders import (
    TERMINAL_STATES,
    TRANSITIONS,
    IllegalTransition,
    LookupResult,
    OrderRecord,
    OrderState,
    UpdateOutcome,
    can_transition,
    needs_lookup,
    state_from_ccxt_status,
)

D = Decimal
S = OrderState
GRACE = 30_000


def record(amount: str = "2") -> OrderRecord:
    intent = OrderIntent("BTC/USDT", Side.BUY, OrderType.LIMIT, D(amount), price=D(100))
    return OrderRecord("t0jsm6110132rs", intent, shard=0, epoch=3, seq=1000, created_ms=1_000)


# --- transitions --------------------------------------------------------------------------


def test_terminal_states_have_no_exits() -> None:
    for state in TERMINAL_STATES:
        assert TRANSITIONS[state] == frozenset()
        assert state.is_terminal and not state.is_working


def test_every_state_has_a_transition_entry() -> None:
    assert set(TRANSITIONS) == set(OrderState)


def test_happy_path_to_filled() -> None:
    order = record()
    order.mark_sending(2_000)
    assert order.apply_exchange_update("open", D(0), 2_010, exchange_order_id="42") is (
        UpdateOutcome.APPLIED
    )
    assert order.state is S.OPEN and order.exchange_order_id == "42"
    assert order.apply_exchange_update("open", D("0.5"), 2_020) is UpdateOutcome.APPLIED
    assert order.state is S.PARTIALLY_FILLED and order.remaining == D("1.5")
    assert order.apply_exchange_update("open", D("1.5"), 2_030) is UpdateOutcome.APPLIED
    assert order.state is S.PARTIALLY_FILLED and order.filled == D("1.5")
    assert order.apply_exchange_update("closed", D(2), 2_040) is UpdateOutcome.APPLIED
    assert order.state is S.FILLED and order.updated_ms == 2_040


def test_illegal_transitions_raise() -> None:
    order = record()
    with pytest.raises(IllegalTransition):
        order.request_cancel(1)  # nothing to cancel: it was never sent
    assert order.state is S.INTENT
    order.transition(S.FILLED, 1)
    with pytest.raises(IllegalTransition, match="filled -> open"):
        order.transition(S.OPEN, 2)
    sending = record()
    sending.mark_sending(1)
    with pytest.raises(IllegalTransition):
        sending.mark_abandoned(2)  # a sent order may only be abandoned through a lookup
    with pytest.raises(IllegalTransition):
        sending.transition(S.ABANDONED, 2)


def test_intent_never_sent_can_be_abandoned() -> None:
    order = record()
    order.mark_abandoned(5)
    assert order.state is S.ABANDONED


def test_stale_reports_are_ignored_not_applied() -> None:
    order = record()
    order.mark_sending(1)
    order.apply_exchange_update("open", D(1), 2)
    assert order.apply_exchange_update("open", D(0), 3) is UpdateOutcome.STALE
    assert order.state is S.PARTIALLY_FILLED and order.filled == D(1)
    order.apply_exchange_update("closed", D(2), 4)
    assert order.apply_exchange_update("open", D(2), 5) is UpdateOutcome.STALE
    assert order.apply_exchange_update("closed", D(2), 6) is UpdateOutcome.UNCHANGED
    assert order.apply_exchange_update("canceled", D(2), 7) is UpdateOutcome.CONFLICT
    assert order.state is S.FILLED


def test_overfill_is_a_conflict() -> None:
    order = record("1")
    order.mark_sending(1)
    assert order.apply_exchange_update("closed", D("1.1"), 2) is UpdateOutcome.CONFLICT
    assert order.state is S.SENDING


def test_cancel_flow_and_race_with_fill() -> None:
    order = record()
    order.mark_sending(1)
    order.apply_exchange_update("open", D(0), 2)
    order.request_cancel(3)
    # a snapshot still showing it open does not undo the pending cancel, fills still count
    assert order.apply_exchange_update("open", D("0.5"), 4) is UpdateOutcome.APPLIED
    assert order.state is S.PENDING_CANCEL and order.filled == D("0.5")
    assert order.apply_exchange_update("canceled", D("0.5"), 5) is UpdateOutcome.APPLIED
    assert order.state is S.CANCELED

    raced = record()
    raced.mark_sending(1)
    raced.apply_exchange_update("open", D(0), 2)
    raced.request_cancel(3)
    assert raced.apply_exchange_update("closed", D(2), 4) is UpdateOutcome.APPLIED
    assert raced.state is S.FILLED


def test_cancel_refused_returns_to_working_state() -> None:
    order = record()
    order.mark_sending(1)
    order.apply_exchange_update("open", D(1), 2)
    order.request_cancel(3)
    order.cancel_refused(4)
    assert order.state is S.PARTIALLY_FILLED
    with pytest.raises(IllegalTransition):
        order.cancel_refused(5)


# --- unknown outcome and lookups ----------------------------------------------------------


def test_unknown_resolved_by_lookup_found() -> None:
    order = record()
    order.mark_sending(10_000)
    order.mark_unknown(10_500)
    assert order.state is S.UNKNOWN and needs_lookup(order.state)
    outcome = order.resolve_lookup(
        LookupResult.FOUND, 11_000, status="open", filled=D(0), not_found_grace_ms=GRACE
    )
    assert outcome is UpdateOutcome.APPLIED and order.state is S.OPEN


def test_not_found_waits_for_the_grace_period_then_abandons() -> None:
    order = record()
    order.mark_sending(10_000)
    order.mark_unknown(10_500)  # the request ended here: it was signed no later
    early = order.resolve_lookup(
        LookupResult.NOT_FOUND, 10_500 + GRACE - 1, not_found_grace_ms=GRACE
    )
    assert early is UpdateOutcome.RETRY_LATER and order.state is S.UNKNOWN
    late = order.resolve_lookup(LookupResult.NOT_FOUND, 10_500 + GRACE, not_found_grace_ms=GRACE)
    assert late is UpdateOutcome.APPLIED and order.state is S.ABANDONED


def test_recovered_sending_order_not_found_goes_through_unknown() -> None:
    order = record()
    order.mark_sending(10_000)
    outcome = order.resolve_lookup(LookupResult.NOT_FOUND, 99_000, not_found_grace_ms=GRACE)
    assert outcome is UpdateOutcome.APPLIED and order.state is S.ABANDONED


def test_a_previous_leaders_send_waits_the_grace_from_the_takeover() -> None:
    """Issue 15, scenario 1: its request may have left just before the leader died."""
    order = record()
    order.mark_sending(10_000)  # by the previous leader; the takeover is at 50_000
    early = order.resolve_lookup(
        LookupResult.NOT_FOUND, 50_000 + GRACE - 1, not_found_grace_ms=GRACE,
        not_before_ms=50_000,
    )  # fmt: skip
    assert early is UpdateOutcome.RETRY_LATER and order.state is S.SENDING
    late = order.resolve_lookup(
        LookupResult.NOT_FOUND, 50_000 + GRACE, not_found_grace_ms=GRACE, not_before_ms=50_000
    )
    assert late is UpdateOutcome.APPLIED and order.state is S.ABANDONED


def test_an_abandoned_order_found_after_all_is_revived() -> None:
    order = record()
    order.mark_sending(1)
    order.mark_unknown(2)
    order.transition(S.ABANDONED, 3)
    assert order.revive("open", D(0), 4) is UpdateOutcome.APPLIED and order.state is S.OPEN
    with pytest.raises(IllegalTransition):
        order.revive("open", D(0), 5)  # only from ABANDONED


def test_recovered_intent_uses_creation_time_for_grace() -> None:
    order = record()  # created_ms=1_000, never marked sending (crash right after journaling)
    assert needs_lookup(order.state)
    assert (
        order.resolve_lookup(LookupResult.NOT_FOUND, 1_000 + GRACE - 1, not_found_grace_ms=GRACE)
        is UpdateOutcome.RETRY_LATER
    )


def test_not_found_for_an_order_seen_open_is_a_conflict() -> None:
    order = record()
    order.mark_sending(1)
    order.apply_exchange_update("open", D(0), 2)
    outcome = order.resolve_lookup(LookupResult.NOT_FOUND, 10**9, not_found_grace_ms=GRACE)
    assert outcome is UpdateOutcome.CONFLICT and order.state is S.OPEN


def test_unknown_cannot_be_resent_or_abandoned_directly() -> None:
    order = record()
    order.mark_sending(1)
    order.mark_unknown(2)
    assert not can_transition(S.UNKNOWN, S.SENDING)
    assert not can_transition(S.UNKNOWN, S.INTENT)
    with pytest.raises(IllegalTransition):
        order.mark_abandoned(3)


@given(st.lists(st.sampled_from(list(OrderState)), max_size=12))
def test_random_walks_only_follow_the_table(targets: list[OrderState]) -> None:
    order = record()
    for target in targets:
        before = order.state
        try:
            order.transition(target, 1)
        except IllegalTransition:
            assert target not in TRANSITIONS[before] and order.state is before
        else:
            assert target in TRANSITIONS[before]
        if order.state.is_terminal:
            assert all(not can_transition(order.state, t) for t in OrderState)


@pytest.mark.parametrize(
    ("status", "filled", "state"),
    [
        ("open", "0", S.OPEN),
        ("open", "0.1", S.PARTIALLY_FILLED),
        ("closed", "1", S.FILLED),
        ("canceled", "0.3", S.CANCELED),
        ("cancelled", "0", S.CANCELED),
        ("expired", "0", S.EXPIRED),
        ("rejected", "0", S.REJECTED),
    ],
)
def test_ccxt_status_mapping(status: str, filled: str, state: OrderState) -> None:
    assert state_from_ccxt_status(status, D(filled)) is state


def test_unknown_ccxt_status_raises() -> None:
    with pytest.raises(ValueError):
        state_from_ccxt_status(None, D(0))


# --- error policy -------------------------------------------------------------------------

A = ErrorAction


@pytest.mark.parametrize(
    ("error", "create", "read"),
    [
        (ccxt.RequestTimeout("t"), A.LOOKUP, A.RETRY),
        (ccxt.ExchangeNotAvailable("503"), A.LOOKUP, A.RETRY),
        (ccxt.OnMaintenance("m"), A.LOOKUP, A.RETRY),
        (ccxt.DDoSProtection("418"), A.LOOKUP, A.RETRY),
        (ccxt.RateLimitExceeded("429"), A.LOOKUP, A.RETRY),
        (ccxt.NetworkError("reset"), A.LOOKUP, A.RETRY),
        (ccxt.BadResponse("garbled"), A.LOOKUP, A.RETRY),
        (ccxt.AuthenticationError("key"), A.REJECT, A.FAIL),
        (ccxt.PermissionDenied("ip"), A.REJECT, A.FAIL),
        (ccxt.InsufficientFunds("poor"), A.REJECT, A.FAIL),
        (ccxt.InvalidOrder("filter"), A.REJECT, A.FAIL),
        (ccxt.OrderImmediatelyFillable("post only"), A.REJECT, A.FAIL),
        (ccxt.BadRequest("bad"), A.REJECT, A.FAIL),
        (ccxt.BadSymbol("sym"), A.REJECT, A.FAIL),
        (ccxt.InvalidNonce("-1021"), A.RESYNC_CLOCK, A.RESYNC_CLOCK),
        (ccxt.DuplicateOrderId("dup"), A.LOOKUP, A.FAIL),
        (ccxt.OrderNotFound("nf"), A.LOOKUP, A.NOT_FOUND),
        (ccxt.ExchangeError("unmapped code"), A.LOOKUP, A.FAIL),
        (TimeoutError(), A.LOOKUP, A.RETRY),
        (ConnectionResetError(), A.LOOKUP, A.RETRY),
        (asyncio.CancelledError(), A.LOOKUP, A.FAIL),
        (RuntimeError("bug"), A.LOOKUP, A.FAIL),
    ],
)
def test_error_classification(error: BaseException, create: ErrorAction, read: ErrorAction) -> None:
    assert classify_error(error, Operation.CREATE).action is create
    assert classify_error(error, Operation.READ).action is read
    assert classify_error(error, Operation.CREATE).reason == type(error).__name__


def test_hierarchy_order_matters() -> None:
    # RateLimitExceeded and InvalidNonce are NetworkErrors; the specific rule must win
    assert issubclass(ccxt.RateLimitExceeded, ccxt.NetworkError)
    assert issubclass(ccxt.InvalidNonce, ccxt.NetworkError)
    assert issubclass(ccxt.DuplicateOrderId, ccxt.InvalidOrder)
    limited = classify_error(ccxt.RateLimitExceeded("429"), Operation.CREATE)
    assert limited.rate_limited and limited.exchange_failure
    assert not classify_error(ccxt.NetworkError("x"), Operation.CREATE).rate_limited


def test_refusals_do_not_count_against_the_breaker() -> None:
    for error in (ccxt.InsufficientFunds("x"), ccxt.InvalidOrder("x"), ccxt.BadRequest("x")):
        assert not classify_error(error, Operation.CREATE).exchange_failure
    assert classify_error(ccxt.RequestTimeout("x"), Operation.CREATE).exchange_failure


@pytest.mark.parametrize(
    "error",
    [ccxt.InvalidOrder("already filled"), ccxt.BadRequest("x"), ccxt.RequestTimeout("x")],
)
def test_a_failed_cancel_is_always_followed_by_a_lookup(error: Exception) -> None:
    assert classify_error(error, Operation.CANCEL).action is A.LOOKUP


def test_no_write_error_means_blind_resend() -> None:
    # only RESYNC_CLOCK retries a create, and only because the exchange refused the timestamp
    classes = [c for c in vars(ccxt).values() if isinstance(c, type)]
    errors = [c("x") for c in classes if issubclass(c, ccxt.BaseError)]
    assert len(errors) > 30
    for error in errors:
        action = classify_error(error, Operation.CREATE).action
        assert action in (A.LOOKUP, A.REJECT, A.RESYNC_CLOCK)
        if action is A.RESYNC_CLOCK:
            assert isinstance(error, ccxt.InvalidNonce)


def test_working_order_snapshot_for_strategies_and_risk() -> None:
    order = record()
    order.mark_sending(1)
    order.apply_exchange_update("open", D("0.5"), 2)
    snapshot = order.as_open_order()
    assert snapshot.client_order_id == order.client_order_id
    assert snapshot.remaining == D("1.5") and snapshot.price == D(100)
