"""Chaos: repeated kill -9 of the leader during continuous trading.

Two real runtime processes (fixtures/runtimes.py) run one shard of a bot whose strategy
trades about once a second (fixtures/strategies.py ``Churn``, 1 s bars). The leader is
killed with SIGKILL ``scaled(10, 100)`` times; after every kill a replacement process is
started so that there is always a standby, and the next kill waits until a newer epoch
has traded. At the end: 0 duplicate orders at the simulator, 0 lost fills (every
simulator trade of the account is in the journal's ``fills`` by trade id), the net
position per symbol equals the simulator's ledger (the journal has no positions table:
positions are derived from ``fills``), every order at the simulator is journaled, and no
two epochs interleave at the simulator (after epoch N+1's first order, none of epoch N).
"""

from __future__ import annotations

import random
import time

import pytest

from support.chaos import scaled
from support.failover import (
    CHURN_RISK,
    check_invariants,
    fail_over,
    leader,
    percentiles,
    start_runtime,
    wait_ready,
)
from support.runtimes import PLUGIN_ENV, RuntimeEnv, run_runtimes
from support.strategies import churn_spec
from tradebot_runtime.exchange.client import CLOCK_SKEW_MS, DEFAULT_RECV_WINDOW_MS

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

KILLS = scaled(10, 100)
LEASE_DURATION_S = 6  # the operator's default for the bot's Leases


def test_leader_kills_lose_nothing_and_duplicate_nothing(
    runtime_env: RuntimeEnv,
    sim_url: str,
) -> None:
    ns = runtime_env.cluster.namespace("chaos-kill")
    setup = runtime_env.setup_bot(
        ns, sim_url,
        strategy_spec=churn_spec(), bot_spec={"risk": CHURN_RISK}, extra_env=PLUGIN_ENV,
    )  # fmt: skip
    rng = random.Random(KILLS)
    with run_runtimes(setup, runtime_env.tmp_path, "rt-0", "rt-1") as runtimes:
        leader(setup, runtimes, sim_url, timeout=90)
        for rt in runtimes.values():
            wait_ready(rt)
        gaps: list[float] = []
        for kill in range(KILLS):
            time.sleep(rng.uniform(0.0, 1.5))  # kill at a random phase of bar and renewal
            result = fail_over(setup, sim_url, runtimes, "hard")
            assert result.new_epoch > result.old_epoch
            gaps.append(result.to_order_s)
            replacement = start_runtime(setup, runtime_env.tmp_path, runtimes, f"rt-{kill + 2}")
            wait_ready(replacement)
            print(f"kill {kill + 1}/{KILLS}: {result.old} (epoch {result.old_epoch}) -> "
                  f"{result.new} (epoch {result.new_epoch}): lease {result.to_lease_s:.2f} s, "
                  f"first order {result.to_order_s:.2f} s")  # fmt: skip
        time.sleep(2)  # trade on a little after the last takeover
        summary = check_invariants(setup, sim_url, runtime_env.postgres.dsn)
    print(f"{KILLS} kills: {summary}; first order after kill {percentiles(gaps)}")
    assert summary["epochs"] >= KILLS + 1
    # a takeover that misses lease duration + 1 s is a benchmark miss (bench_failover.py),
    # not a failure here; but the new leader must trade on within the lease duration plus,
    # when the kill hit between journal write and send, the not-found grace of that order
    grace_s = (DEFAULT_RECV_WINDOW_MS + CLOCK_SKEW_MS) / 1000  # an inherited send's lookup
    assert max(gaps) < LEASE_DURATION_S + grace_s + 5, gaps
