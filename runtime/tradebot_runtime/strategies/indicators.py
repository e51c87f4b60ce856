"""Incremental indicators in Decimal (deterministic to the last digit on every machine)."""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Final

from tradebot_runtime.domain import ZERO

_HUNDRED: Final = Decimal(100)
_FIFTY: Final = Decimal(50)


class SimpleMovingAverage:
    """Mean of the last ``period`` values; None until ``period`` values were seen."""

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError("period must be at least 1")
        self.period = period
        self._values: deque[Decimal] = deque()
        self._sum = ZERO

    def update(self, value: Decimal) -> Decimal | None:
        self._values.append(value)
        self._sum += value  # exact: Decimal addition of exchange prices does not round
        if len(self._values) > self.period:
            self._sum -= self._values.popleft()
        return self.value

    @property
    def value(self) -> Decimal | None:
        if len(self._values) < self.period:
            return None
        return self._sum / self.period


class RelativeStrengthIndex:
    """Wilder's RSI: the first averages are plain means of ``period`` changes, then each
    new change is smoothed in with weight 1/period. None until ``period + 1`` closes.

    RSI is 100 when there were no losses, and 50 when the price did not move at all.
    """

    def __init__(self, period: int) -> None:
        if period < 2:
            raise ValueError("period must be at least 2")
        self.period = period
        self._previous: Decimal | None = None
        self._gains: list[Decimal] = []
        self._losses: list[Decimal] = []
        self._avg_gain: Decimal | None = None
        self._avg_loss = ZERO

    def update(self, close: Decimal) -> Decimal | None:
        previous, self._previous = self._previous, close
        if previous is None:
            return None
        change = close - previous
        gain = change if change > 0 else ZERO
        loss = -change if change < 0 else ZERO
        if self._avg_gain is None:
            self._gains.append(gain)
            self._losses.append(loss)
            if len(self._gains) < self.period:
                return None
            self._avg_gain = sum(self._gains, ZERO) / self.period
            self._avg_loss = sum(self._losses, ZERO) / self.period
            self._gains.clear()
            self._losses.clear()
        else:
            n = self.period
            self._avg_gain = (self._avg_gain * (n - 1) + gain) / n
            self._avg_loss = (self._avg_loss * (n - 1) + loss) / n
        return self.value

    @property
    def value(self) -> Decimal | None:
        avg_gain = self._avg_gain
        if avg_gain is None:
            return None
        avg_loss = self._avg_loss
        if avg_loss == 0:
            return _HUNDRED if avg_gain > 0 else _FIFTY
        return _HUNDRED - _HUNDRED / (1 + avg_gain / avg_loss)
