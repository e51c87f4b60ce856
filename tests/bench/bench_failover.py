"""Failover benchmark: hard kills (SIGKILL) and graceful deletions (SIGTERM, what kubelet
sends on pod delete) of the leader while trading -> distribution of the gap from the kill
to the new leader holding the Lease and to its first order at the simulator.

    .venv/bin/python tests/bench/bench_failover.py [--hard 20] [--graceful 20]

Bars (DESIGN.md, quality bars): hard kill <= lease duration + 1 s, graceful <= 1 s; and
0 duplicate orders, 0 lost fills.

Everything is started by the pytest harness the runtime e2e tests use and stopped at the
end: its own local cluster (hack/cluster.sh, name ``tradebot-failover``), PostgreSQL,
Redis, the exchange simulator, the real operator (which renders the bot's ConfigMap and
Lease), and real ``python -m tradebot_runtime`` processes with the pod env
(fixtures/runtimes.py). Two processes run the bot's one shard; after every kill a
replacement is started and the next kill waits until it is ready, so there is always a
warm standby. Hard and graceful kills come in shuffled order (seeded), each at a random
phase of the 1 s bar and the renew interval. The strategy (fixtures/strategies.py
``Churn``, 1 s bars) always wants to trade, and a new leader re-evaluates the latest bar
on takeover, so "first order" measures the failover, not the strategy's signal timing.
Times come from timestamps (kill wall clock, the Lease's ``acquireTime``, the
simulator's receive time of the first order of the new epoch), not from polling. At the
end the chaos invariants are checked (fixtures/failover.py ``check_invariants``).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the fixtures are imported by pytest, after main() set the cluster name
    from support.cluster import Cluster
    from support.operator import OperatorProcess
    from support.servers import Postgres, Redis

REPO = Path(__file__).resolve().parents[2]
CLUSTER = "tradebot-failover"
LEASE_DURATION_S = 6  # the operator's default Lease duration


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def test_failover_benchmark(
    crds_installed: Cluster,
    operator_process: OperatorProcess,
    postgres: Postgres,
    redis_server: Redis,
    sim_url: str,
    tmp_path: Path,
) -> None:
    from support.failover import (
        CHURN_RISK,
        Failover,
        check_invariants,
        fail_over,
        leader,
        percentiles,
        start_runtime,
        wait_ready,
    )
    from support.runtimes import PLUGIN_ENV, run_runtimes, setup_bot
    from support.strategies import churn_spec

    hard = int(os.environ.get("BENCH_FAILOVER_HARD", "20"))
    graceful = int(os.environ.get("BENCH_FAILOVER_GRACEFUL", "20"))
    cluster = crds_installed
    ns = cluster.namespace("bench-fo")
    setup = setup_bot(
        cluster, ns, sim_url, postgres, redis_server, tmp_path,
        strategy_spec=churn_spec(), bot_spec={"risk": CHURN_RISK}, extra_env=PLUGIN_ENV,
    )  # fmt: skip
    kinds = ["hard"] * hard + ["graceful"] * graceful
    rng = random.Random(7)
    rng.shuffle(kinds)
    load_start = _loadavg()
    results: list[Failover] = []
    with run_runtimes(setup, tmp_path, "rt-0", "rt-1") as runtimes:
        leader(setup, runtimes, sim_url, timeout=90)
        for rt in runtimes.values():
            wait_ready(rt)
        for n, kind in enumerate(kinds):
            time.sleep(rng.uniform(0.5, 2.5))  # a random phase of bar and renew interval
            result = fail_over(setup, sim_url, runtimes, kind)
            results.append(result)
            print(
                f"{n + 1:3d}/{len(kinds)} {kind:8s} {result.old} (epoch {result.old_epoch}) -> "
                f"{result.new} (epoch {result.new_epoch}): Lease {result.to_lease_s:6.3f} s, "
                f"first order {result.to_order_s:6.3f} s  load {_loadavg()}",
                flush=True,
            )
            wait_ready(start_runtime(setup, tmp_path, runtimes, f"rt-{n + 2}"))
        time.sleep(2)
        summary = check_invariants(setup, sim_url, postgres.dsn)
    load_end = _loadavg()

    print(f"\n== failover benchmark: {len(kinds)} kills, {os.cpu_count()} cores, "
          f"load {load_start} (start) / {load_end} (end) ==")  # fmt: skip
    rows = []
    misses = []
    for kind, bar in (("hard", LEASE_DURATION_S + 1.0), ("graceful", 1.0)):
        mine = [r for r in results if r.kind == kind]
        if not mine:
            continue
        for what, values in (
            ("Lease", [r.to_lease_s for r in mine]),
            ("first order", [r.to_order_s for r in mine]),
        ):
            p = percentiles(values)
            verdict = "PASS" if p["max"] <= bar else "FAIL"
            if verdict == "FAIL":
                misses.append(f"{kind} {what}")
            line = (f"{kind:8s} n={len(mine):3d} kill -> {what:11s} min {p['min']:.3f}  "
                    f"p50 {p['p50']:.3f}  p90 {p['p90']:.3f}  max {p['max']:.3f} s  "
                    f"(bar <= {bar:.0f} s) {verdict}")  # fmt: skip
            print(line)
            rows.append(
                f"| {kind} | {len(mine)} | {what} | {p['min']:.2f} / {p['p50']:.2f} / "
                f"{p['p90']:.2f} / {p['max']:.2f} s | <= {bar:.0f} s | {verdict} |"
            )
    print(f"invariants: 0 duplicate orders, 0 lost fills, positions equal, epochs ordered: "
          f"{summary}")  # fmt: skip
    print("\nmarkdown rows:\n" + "\n".join(rows))
    assert not misses, f"bars missed: {misses}"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--hard", type=int, default=20, help="SIGKILLs of the leader")
    parser.add_argument("--graceful", type=int, default=20, help="SIGTERMs of the leader")
    parser.add_argument("--keep", action="store_true", help="leave the bench cluster running")
    args = parser.parse_args()
    os.environ["BENCH_FAILOVER_HARD"] = str(args.hard)
    os.environ["BENCH_FAILOVER_GRACEFUL"] = str(args.graceful)
    os.environ["TRADEBOT_TEST_CLUSTER"] = CLUSTER  # read when the fixtures are imported
    os.environ.pop("TRADEBOT_KUBECONFIG", None)  # always our own cluster
    if args.keep:
        os.environ["TRADEBOT_KEEP_CLUSTER"] = "1"
    else:
        os.environ.pop("TRADEBOT_KEEP_CLUSTER", None)
    os.chdir(REPO)
    argv = [str(Path(__file__).resolve()), "-q", "-s", "-p", "no:cacheprovider"]
    return int(pytest.main([*argv, "--rootdir", str(REPO)]))


if __name__ == "__main__":
    sys.exit(main())
