"""Issue 15 ("also wrong"): SIGTERM released the Leases after 2 s while a create could be
on the wire for up to ccxt's 10 s timeout: the standby took over and traded while the old
leader's order was still to land. Now the shutdown waits for in-flight order work up to
the request timeout, and leaves the Leases to expire if it is still busy.

Two real runtime processes on the simulator; the leader's create is held 6 s by the
simulator before it is processed; the leader gets SIGTERM while it waits. The standby may
acquire the Lease only after that order has landed."""

from __future__ import annotations

import signal
import time
from datetime import datetime
from typing import Any

import pytest

from support.failover import CHURN_RISK, ids_for, leader, wait_ready
from support.objects import eventually
from support.runtimes import PLUGIN_ENV, RuntimeEnv, http_json, lease, ledger, run_runtimes
from support.strategies import churn_spec

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
HELD_MS = 6_000


def test_sigterm_keeps_the_lease_until_the_in_flight_create_has_landed(
    runtime_env: RuntimeEnv, sim_url: str
) -> None:
    ns = runtime_env.cluster.namespace("sigterm")
    setup = runtime_env.setup_bot(
        ns, sim_url, strategy_spec=churn_spec(), bot_spec={"risk": CHURN_RISK},
        extra_env=PLUGIN_ENV,
    )  # fmt: skip
    with run_runtimes(setup, runtime_env.tmp_path, "rt-a", "rt-b") as runtimes:
        old, old_epoch = leader(setup, runtimes, sim_url, timeout=90)
        for rt in runtimes.values():
            wait_ready(rt)
        fault = http_json(f"{sim_url}/admin/faults", "POST", {
            "kind": "latency", "endpoint": "POST /api/v3/order", "when": "before",
            "delay_ms": HELD_MS, "count": 1,
        })  # fmt: skip

        def held() -> bool:
            faults: list[dict[str, Any]] = http_json(f"{sim_url}/admin/faults")["faults"]
            mine = [f for f in faults if f["id"] == fault["id"]]
            return not mine or int(mine[0]["hits"]) >= 1  # fired (and used up)

        eventually(held, 30, "the leader's create held by the simulator")
        fired_ms = time.time() * 1000
        runtimes[old].proc.send_signal(signal.SIGTERM)
        assert runtimes[old].proc.wait(timeout=30) == 0

        def taken() -> dict[str, Any] | None:
            spec: dict[str, Any] = lease(setup.cluster, setup.ns, setup.leases[0])["spec"]
            holder = spec.get("holderIdentity")
            return spec if holder and holder != old else None

        spec = eventually(taken, 30, "the standby holding the Lease")
        acquired_ms = (
            datetime.fromisoformat(str(spec["acquireTime"]).replace("Z", "+00:00")).timestamp()
            * 1000
        )
        time.sleep(max(0.0, (fired_ms + HELD_MS + 1000) / 1000 - time.time()))  # it has landed
        ids = ids_for(setup)
        landed_ms = max(  # the old epoch's last order: the held create, processed late
            int(o["time"]) for o in ledger(sim_url)["orders"]
            if ids.owns(o["clientOrderId"]) and ids.parse(o["clientOrderId"]).epoch == old_epoch
        )  # fmt: skip
        assert landed_ms >= fired_ms + HELD_MS - 1000, "the held create never landed"
        assert acquired_ms >= landed_ms - 50, (spec["acquireTime"], landed_ms)
