"""Circuit breaker per exchange: stop hammering an exchange that keeps failing.

CLOSED (calls pass) -> OPEN after ``failure_threshold`` consecutive failures, or when the
failure rate over the last ``window_size`` calls reaches ``failure_rate`` -> after
``cooldown_s`` the next ``allow()`` moves to HALF_OPEN and lets one probe through ->
CLOSED when the probe succeeds, OPEN again (new cooldown) when it fails.

A probe that never reports back (its task was cancelled) would wedge HALF_OPEN, so after
another ``cooldown_s`` a new probe is allowed. The clock is injectable (monotonic seconds)
for tests. Only failures that ErrorPolicy marks ``exchange_failure`` should be recorded.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable


class BreakerState(enum.StrEnum):
    """The values are exposed as a metric label and in the heartbeat."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


StateListener = Callable[[BreakerState, BreakerState], None]
"""Called with (old, new) on every state change, e.g. to set a gauge and log."""


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        cooldown_s: float = 10.0,
        failure_rate: float | None = None,
        window_size: int = 20,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: StateListener | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if cooldown_s <= 0:
            raise ValueError("cooldown_s must be positive")
        if failure_rate is not None and not 0 < failure_rate <= 1:
            raise ValueError("failure_rate must be in (0, 1]")
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.failure_rate = failure_rate
        self._clock = clock
        self._on_state_change = on_state_change
        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        self._window: deque[bool] = deque(maxlen=window_size)  # True = failure
        self._opened_at = 0.0
        self._probe_started_at: float | None = None

    @property
    def state(self) -> BreakerState:
        """Current state, without advancing OPEN -> HALF_OPEN (that happens in allow())."""
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive_failures

    def allow(self) -> bool:
        """Whether a call may go out now. In HALF_OPEN, only one probe at a time."""
        now = self._clock()
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if now - self._opened_at < self.cooldown_s:
                return False
            self._set_state(BreakerState.HALF_OPEN)
            self._probe_started_at = now
            return True
        # HALF_OPEN: a probe is out; allow another only if it seems lost
        started = self._probe_started_at
        if started is None or now - started >= self.cooldown_s:
            self._probe_started_at = now
            return True
        return False

    def seconds_until_retry(self) -> float:
        """How long until allow() may return True again (0 when it would now)."""
        if self._state is BreakerState.CLOSED:
            return 0.0
        now = self._clock()
        since = self._opened_at if self._state is BreakerState.OPEN else self._probe_started_at
        if since is None:
            return 0.0
        return max(0.0, self.cooldown_s - (now - since))

    def record_success(self) -> None:
        self._consecutive_failures = 0
        self._window.append(False)
        if self._state is BreakerState.HALF_OPEN:
            self._probe_started_at = None
            self._window.clear()  # start the rate window afresh after recovery
            self._set_state(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._consecutive_failures += 1
        self._window.append(True)
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self._should_trip()
        ):
            self._trip()

    def _should_trip(self) -> bool:
        if self._consecutive_failures >= self.failure_threshold:
            return True
        rate = self.failure_rate
        window = self._window
        if rate is None or window.maxlen is None or len(window) < window.maxlen:
            return False
        return sum(window) >= rate * len(window)

    def _trip(self) -> None:
        self._opened_at = self._clock()
        self._probe_started_at = None
        self._set_state(BreakerState.OPEN)

    def _set_state(self, new: BreakerState) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        if self._on_state_change is not None:
            self._on_state_change(old, new)
