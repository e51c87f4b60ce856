"""Seeded price paths of the exchange simulator: GBM statistics, determinism, CSV replay."""

from __future__ import annotations

import itertools
import random
import statistics
from decimal import Decimal
from pathlib import Path

from exchange_sim.pricepath import (
    GbmPath,
    ReplayPath,
    candles_to_points,
    load_candles_csv,
    standard_normal,
)

D = Decimal
DAY = D(86_400)


def gbm(seed: int, drift: str = "0", vol: str = "0.8") -> GbmPath:
    return GbmPath(D(100), D(drift), D(vol), random.Random(seed), floor=D("0.01"))


def test_same_seed_same_path_and_different_seed_different_path() -> None:
    a, b, c = gbm(1), gbm(1), gbm(2)
    path_a = [a.step(DAY) for _ in range(100)]
    assert path_a == [b.step(DAY) for _ in range(100)]
    assert path_a != [c.step(DAY) for _ in range(100)]
    assert all(isinstance(p, Decimal) for p in path_a)


def test_standard_normal_has_unit_variance() -> None:
    rng = random.Random(3)
    samples = [float(standard_normal(rng)) for _ in range(20_000)]
    assert abs(statistics.fmean(samples)) < 0.03
    assert abs(statistics.pstdev(samples) - 1.0) < 0.03


def test_daily_log_returns_match_the_annual_volatility() -> None:
    path = gbm(5, vol="0.8")
    prices = [path.price] + [path.step(DAY) for _ in range(3000)]
    returns = [float((b / a).ln()) for a, b in itertools.pairwise(prices)]
    expected = 0.8 / 365**0.5
    assert abs(statistics.pstdev(returns) / expected - 1) < 0.08


def test_drift_shows_in_the_mean_return() -> None:
    up = gbm(9, drift="2", vol="0.1")  # 200 %/year with low noise
    start = up.price
    for _ in range(365):
        up.step(DAY)
    assert up.price > start * 3


def test_the_price_never_goes_below_the_floor() -> None:
    crash = GbmPath(D("0.05"), D("-50"), D("5"), random.Random(1), floor=D("0.01"))
    assert min(crash.step(DAY) for _ in range(500)) >= D("0.01")


def test_replay_walks_each_candle_then_continues_as_gbm() -> None:
    rows = [(D(10), D(12), D(9), D(11)), (D(11), D("11.5"), D(8), D(8.5))]
    points = candles_to_points(rows)
    # bullish candle visits the low first, bearish the high first
    assert points == [D(10), D(9), D(12), D(11), D(11), D("11.5"), D(8), D("8.5")]
    path = ReplayPath(points, gbm(4))
    replayed = [path.step(DAY) for _ in range(len(points))]
    assert replayed == points and path.remaining == 0
    after = path.step(DAY)
    assert after != D("8.5") and abs(after / D("8.5") - 1) < D("0.5")


def test_load_candles_csv_skips_the_header(tmp_path: Path) -> None:
    csv_file = tmp_path / "btc.csv"
    csv_file.write_text(
        "open_time,open,high,low,close,volume\n"
        "1700000000000,100.5,101,99.5,100,12\n"
        "\n"
        "1700000060000,100,102.25,100,102,7\n"
    )
    assert load_candles_csv(csv_file) == [
        (D("100.5"), D("101"), D("99.5"), D("100")),
        (D("100"), D("102.25"), D("100"), D("102")),
    ]
