"""Micro-benchmark of RiskEngine.check (target: p99 <= 50 us).

Run: .venv/bin/python tests/bench/bench_risk.py [--checks 100000]

Every limit is set, so each check walks the full rule list; the mix has accepted orders,
market and limit orders, reducing orders and rejections from several rules. The
per-minute limit is high enough that the sliding window stays populated (the deque
prune is part of the cost).
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import time
from decimal import Decimal

from tradebot_runtime.domain import OrderIntent, OrderType, Side
from tradebot_runtime.risk import RiskEngine, RiskInputs, RiskLimits

D = Decimal


def scenarios() -> list[tuple[OrderIntent, RiskInputs]]:
    base = RiskInputs(
        last_price=D("43125.37"),
        position=D("0.125"),
        open_buy=D("0.01"),
        open_sell=D("0"),
        daily_pnl=D("-12.75"),
        drawdown_pct=D("1.8"),
    )
    return [
        (OrderIntent("BTC/USDT", Side.BUY, OrderType.LIMIT, D("0.002"), price=D("43100")), base),
        (OrderIntent("BTC/USDT", Side.BUY, OrderType.MARKET, D("0.003")), base),
        (OrderIntent("BTC/USDT", Side.SELL, OrderType.MARKET, D("0.02"), reduce_only=True), base),
        # price band rejection
        (OrderIntent("BTC/USDT", Side.BUY, OrderType.LIMIT, D("0.002"), price=D("40000")), base),
        # order notional rejection
        (OrderIntent("BTC/USDT", Side.BUY, OrderType.MARKET, D("1")), base),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=100_000)
    args = parser.parse_args()

    limits = RiskLimits(
        max_order_notional=D("1000"),
        max_position_notional=D("25000"),
        price_band_pct=D("2.5"),
        max_orders_per_minute=10**9,
        max_daily_loss=D("500"),
        max_drawdown_pct=D("15"),
    )
    rejected: dict[str, int] = {}

    def count(decision: object, intent: object) -> None:
        rule = str(getattr(decision, "rule", ""))
        rejected[rule] = rejected.get(rule, 0) + 1

    engine = RiskEngine(limits, "Active", on_reject=count)
    cases = scenarios()
    now = 1_700_000_000_000
    for i in range(10_000):  # warm up
        intent, inputs = cases[i % len(cases)]
        engine.check(intent, inputs, now + i)

    samples: list[int] = []
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for i in range(args.checks):
            intent, inputs = cases[i % len(cases)]
            ts = now + 10_000 + i  # 1 ms apart: ~60k orders stay in the window
            start = clock()
            engine.check(intent, inputs, ts)
            samples.append(clock() - start)
    finally:
        gc.enable()

    samples.sort()
    p50 = samples[len(samples) // 2] / 1000
    p99 = samples[int(len(samples) * 0.99)] / 1000
    mean = statistics.fmean(samples) / 1000
    print(f"risk check: {args.checks} checks, python {platform.python_version()}")
    print(
        f"p50 {p50:.2f} us  p99 {p99:.2f} us  mean {mean:.2f} us  max {samples[-1] / 1000:.1f} us"
    )
    print(f"rejections by rule: {dict(sorted(rejected.items()))}")
    print("PASS" if p99 <= 50 else "FAIL", "(target p99 <= 50 us)")


if __name__ == "__main__":
    main()
