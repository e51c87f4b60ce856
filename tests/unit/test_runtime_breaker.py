"""Circuit breaker with an injected clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradebot_runtime.breaker import BreakerState, CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(**kwargs: object) -> tuple[CircuitBreaker, FakeClock, list[tuple[str, str]]]:
    clock = FakeClock()
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        "binance",
        clock=clock,
        on_state_change=lambda old, new: changes.append((old.value, new.value)),
        **kwargs,  # type: ignore[arg-type]
    )
    return breaker, clock, changes


def test_opens_after_consecutive_failures() -> None:
    breaker, _, changes = make(failure_threshold=3, cooldown_s=5)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert changes == [("closed", "open")]


def test_success_resets_the_consecutive_count() -> None:
    breaker, _, _ = make(failure_threshold=3)
    for _ in range(10):
        breaker.record_failure()
        breaker.record_failure()
        breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.consecutive_failures == 0


def test_half_open_probe_success_closes() -> None:
    breaker, clock, changes = make(failure_threshold=1, cooldown_s=5)
    breaker.record_failure()
    clock.now += 4.9
    assert not breaker.allow()
    assert breaker.seconds_until_retry() == pytest.approx(0.1)
    clock.now += 0.1
    assert breaker.allow()  # the probe
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()  # only one probe at a time
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_half_open_probe_failure_reopens_with_new_cooldown() -> None:
    breaker, clock, _ = make(failure_threshold=1, cooldown_s=5)
    breaker.record_failure()
    clock.now += 5
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 4
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


def test_lost_probe_does_not_wedge_half_open() -> None:
    breaker, clock, _ = make(failure_threshold=1, cooldown_s=5)
    breaker.record_failure()
    clock.now += 5
    assert breaker.allow()  # probe never reports back
    clock.now += 4
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


def test_failure_rate_trips_without_consecutive_failures() -> None:
    breaker, _, _ = make(failure_threshold=100, failure_rate=0.5, window_size=10)
    for _ in range(4):
        breaker.record_success()
        breaker.record_failure()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED  # 4 of 9
    breaker.record_failure()  # 5 of 10
    assert breaker.state is BreakerState.OPEN


def test_failure_rate_needs_a_full_window() -> None:
    breaker, _, _ = make(failure_threshold=100, failure_rate=0.5, window_size=10)
    for _ in range(4):
        breaker.record_failure()
        breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize(
    "kwargs",
    [{"failure_threshold": 0}, {"cooldown_s": 0}, {"failure_rate": 0.0}, {"failure_rate": 1.5}],
)
def test_rejects_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make(**kwargs)


@given(st.lists(st.sampled_from(["ok", "fail", "tick", "allow"]), max_size=60))
def test_open_never_allows_before_cooldown(events: list[str]) -> None:
    breaker, clock, _ = make(failure_threshold=2, cooldown_s=3)
    opened_at: float | None = None
    for event in events:
        if event == "ok":
            breaker.record_success()
        elif event == "fail":
            breaker.record_failure()
        elif event == "tick":
            clock.now += 1
        else:
            allowed = breaker.allow()
            if opened_at is not None and clock.now - opened_at < 3:
                assert not allowed
        opened_at = breaker._opened_at if breaker.state is BreakerState.OPEN else None
