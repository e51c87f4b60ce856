"""Seeded price paths: geometric Brownian motion, or replay of a candle CSV.

Pure and deterministic: the n-th step of a path depends only on the seed and the step
sizes, never on wall-clock time. All arithmetic is Decimal; the normal shocks come from the
Irwin-Hall sum of twelve exact uniform integers, so no float ever enters a price.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Protocol

SECONDS_PER_YEAR = Decimal(365 * 24 * 3600)
_TWO_32 = Decimal(2**32)
_MAX_SHOCK = Decimal("0.5")  # Euler steps larger than this would be meaningless anyway


class PricePath(Protocol):
    price: Decimal

    def step(self, dt_seconds: Decimal) -> Decimal:
        """Advance by ``dt_seconds`` of market time and return the new price."""
        ...


def standard_normal(rng: random.Random) -> Decimal:
    """Approximately N(0, 1): the sum of 12 U(0,1) variates minus 6 (Irwin-Hall)."""
    total = sum(rng.getrandbits(32) for _ in range(12))
    return Decimal(total) / _TWO_32 - 6


class GbmPath:
    """Euler discretisation of dS = mu S dt + sigma S dW (annualised mu and sigma)."""

    def __init__(
        self,
        initial: Decimal,
        drift: Decimal,
        volatility: Decimal,
        rng: random.Random,
        floor: Decimal,
    ) -> None:
        self.price = initial
        self._drift = drift
        self._vol = volatility
        self._rng = rng
        self._floor = floor
        self._sqrt_cache: dict[Decimal, tuple[Decimal, Decimal]] = {}

    def step(self, dt_seconds: Decimal) -> Decimal:
        cached = self._sqrt_cache.get(dt_seconds)
        if cached is None:
            years = dt_seconds / SECONDS_PER_YEAR
            cached = (self._drift * years, self._vol * years.sqrt())
            self._sqrt_cache[dt_seconds] = cached
        drift_term, vol_term = cached
        shock = drift_term + vol_term * standard_normal(self._rng)
        shock = max(-_MAX_SHOCK, min(_MAX_SHOCK, shock))
        self.price = max(self._floor, self.price * (1 + shock))
        return self.price


class ReplayPath:
    """Replays fixed prices one per step, then continues as GBM from the last one."""

    def __init__(self, points: Sequence[Decimal], continuation: GbmPath) -> None:
        if not points:
            raise ValueError("a replay path needs at least one price")
        self._points = list(points)
        self._index = 0
        self._continuation = continuation
        self.price = self._points[0]

    @property
    def remaining(self) -> int:
        return len(self._points) - self._index

    def step(self, dt_seconds: Decimal) -> Decimal:
        if self._index < len(self._points):
            self.price = self._points[self._index]
            self._index += 1
            self._continuation.price = self.price
            return self.price
        self.price = self._continuation.step(dt_seconds)
        return self.price


def candles_to_points(rows: Sequence[tuple[Decimal, Decimal, Decimal, Decimal]]) -> list[Decimal]:
    """Four prices per (open, high, low, close) candle: open, the nearer extreme, the far
    extreme, close - the usual way to walk a bar without intrabar data."""
    points: list[Decimal] = []
    for open_, high, low, close in rows:
        first, second = (low, high) if close >= open_ else (high, low)
        points.extend((open_, first, second, close))
    return points


def load_candles_csv(path: Path) -> list[tuple[Decimal, Decimal, Decimal, Decimal]]:
    """Binance kline CSV (open_time, open, high, low, close, volume, ...); a header row and
    blank lines are skipped."""
    rows: list[tuple[Decimal, Decimal, Decimal, Decimal]] = []
    with path.open(newline="") as fh:
        for record in csv.reader(fh):
            if len(record) < 5 or not record[1].replace(".", "", 1).isdigit():
                continue
            open_, high, low, close = (Decimal(x) for x in record[1:5])
            rows.append((open_, high, low, close))
    return rows
