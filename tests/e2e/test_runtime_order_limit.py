"""The account's new-order limit (`rateLimit.ordersPer10s`) is kept by the runtime, not
discovered through 429s: a strategy that wants an order every second, on an account whose
exchange allows 3 new orders per 10 s, gets orders through at about that pace and the
simulator counts no refused order."""

from __future__ import annotations

import time

import pytest

from support.failover import CHURN_RISK
from support.objects import eventually
from support.runtimes import (
    PLUGIN_ENV,
    SIM_ACCOUNT,
    RuntimeEnv,
    http_json,
    ledger,
    run_runtimes,
    simulator_process,
)
from support.strategies import churn_spec

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
LIMIT = 3  # new orders per 10 s, at the simulator and in the account's spec


def test_runtime_keeps_the_accounts_order_count_limit(
    runtime_env: RuntimeEnv,
) -> None:
    ns = runtime_env.cluster.namespace("ordlimit")
    with simulator_process(runtime_env.tmp_path, "--orders-per-10s", str(LIMIT)) as sim_url:
        setup = runtime_env.setup_bot(
            ns, sim_url,
            strategy_spec=churn_spec(), bot_spec={"risk": CHURN_RISK}, extra_env=PLUGIN_ENV,
            account_spec={"rateLimit": {"weightPerMinute": 6000, "ordersPer10s": LIMIT}},
        )  # fmt: skip
        with run_runtimes(setup, runtime_env.tmp_path, "ol-a") as runtimes:
            rt = runtimes["ol-a"]

            def first_order() -> bool:
                assert rt.proc.poll() is None, rt.tail()
                return len(ledger(sim_url)["orders"]) >= 1

            eventually(first_order, 90, "the first order")
            started, before = time.monotonic(), len(ledger(sim_url)["orders"])
            time.sleep(25)
            placed = len(ledger(sim_url)["orders"]) - before
            elapsed = time.monotonic() - started
        summary = http_json(f"{sim_url}/admin/ledger")["accounts"][SIM_ACCOUNT]
    print(f"order limit: {placed} orders in {elapsed:.1f}s at {LIMIT} per 10 s")
    assert summary["rate_limit_violations"] == 0, summary
    # demand was one order a second: the limit, not the strategy, set the pace
    assert placed >= 3, placed
    assert placed <= LIMIT * (elapsed / 10 + 1), placed
