"""Rate-limit sharing: N real runtime processes on one account at full demand.

Run: .venv/bin/python tests/bench/bench_ratelimit.py [--processes 10] [--window 60]
     [--units-per-minute 600]

N bots on one ExchangeAccount, each one `python -m tradebot_runtime` process (the real
operator renders their ConfigMaps and Leases on a local control plane started by the test
fixtures; own PostgreSQL and Redis), against a simulator process whose weight limit is the
account's budget (units x 5 = Binance request weight per minute, per API key and per IP).
Full demand: every process polls its orders every 50 ms and trades a fast crossover.
Reports violations at the simulator (429/418, whole run; bar: 0) and the achieved share
of the budget (weight the simulator charged / weight the budget allows over the window;
the runtime's bucket targets 90 % of it, ratelimit.SAFETY).

The scenario is tests/fixtures/ratebudget.py, shared with the CI test
tests/integration/test_runtime_ratebudget_processes.py (3 processes). This script runs it
through pytest (for the fixtures) with the figures passed in the environment."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

REPO = Path(__file__).resolve().parents[2]

if TYPE_CHECKING:  # imported by pytest (tests/conftest.py), not when run as a script
    from support.cluster import Cluster
    from support.operator import OperatorProcess
    from support.servers import Postgres, Redis


def test_bench_ratelimit(
    crds_installed: Cluster,
    operator_process: OperatorProcess,
    postgres: Postgres,
    redis_server: Redis,
    tmp_path: Path,
) -> None:
    from support.ratebudget import run_shared_budget

    processes = int(os.environ["BENCH_RL_PROCESSES"])
    run = run_shared_budget(
        crds_installed, postgres, redis_server, tmp_path,
        processes=processes, units_per_minute=int(os.environ["BENCH_RL_UNITS"]),
        window_s=float(os.environ["BENCH_RL_WINDOW"]),
    )  # fmt: skip
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"\nbench ratelimit: {run.summary()}; load {load}")
    print(
        f"| {processes} | {run.units_per_minute * 5} | {run.window_s:.0f} s | "
        f"{run.used_weight} / {run.allowed_weight:.0f} | {run.share:.1%} | "
        f"{run.violations} | {min(run.waited_s):.0f}-{max(run.waited_s):.0f} s | "
        f"{sum(run.orders)} ({min(run.orders)}-{max(run.orders)}) | "
        f"{'PASS' if run.violations == 0 else 'FAIL'} |"
    )
    assert run.violations == 0, run.rate


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--processes", type=int, default=10)
    p.add_argument("--window", type=float, default=60.0, help="measured seconds")
    p.add_argument("--units-per-minute", type=int, default=600, help="the account's budget")
    args = p.parse_args()
    os.environ["BENCH_RL_PROCESSES"] = str(args.processes)
    os.environ["BENCH_RL_WINDOW"] = str(args.window)
    os.environ["BENCH_RL_UNITS"] = str(args.units_per_minute)
    os.environ.setdefault("TRADEBOT_TEST_CLUSTER", "tradebot-bench-rl")
    os.chdir(REPO)
    argv = [str(Path(__file__).resolve()), "-q", "-s", "-p", "no:cacheprovider"]
    return int(pytest.main([*argv, "-k", "test_bench_ratelimit"]))


if __name__ == "__main__":
    sys.exit(main())
