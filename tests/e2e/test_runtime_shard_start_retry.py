"""A shard whose start keeps failing is retried with exponential back-off (not every ~2 s
under a new epoch), visible in the metrics and the log; once the cause is gone it starts,
trades, and the back-off is reset. Real runtime process, operator, simulator: the start
fails because the simulator refuses GET openOrders (reconciliation) with a final error."""

from __future__ import annotations

import itertools
import json
import time
from datetime import datetime

import pytest

from support.objects import eventually
from support.runtimes import Runtime, RuntimeEnv, http_json, lease, ledger, run_runtimes

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
SHARD = {"shard": "0"}


def _metric(rt: Runtime, name: str) -> float:
    if rt.proc.poll() is not None:
        pytest.fail(f"runtime exited {rt.proc.returncode}:\n{rt.tail()}")
    try:
        value = rt.metric(name, **SHARD)
    except OSError:  # the metrics port is not up yet
        return 0.0
    return value if value is not None else 0.0


def _failures(rt: Runtime) -> list[dict[str, object]]:
    out = []
    for line in rt.log.read_text(errors="replace").splitlines():
        if "shard start failed" in line and line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_failing_shard_start_backs_off_then_recovers(
    runtime_env: RuntimeEnv,
    sim_url: str,
) -> None:
    ns = runtime_env.cluster.namespace("rtbackoff")
    setup = runtime_env.setup_bot(ns, sim_url)
    fault = http_json(f"{sim_url}/admin/faults", method="POST", body={
        "kind": "error", "endpoint": "GET /api/v3/openOrders", "code": -1100,
    })  # fmt: skip

    def epoch() -> int:
        return int((lease(runtime_env.cluster, ns, setup.leases[0]).get("spec") or {}).get(
            "leaseTransitions") or 0)  # fmt: skip

    with run_runtimes(setup, runtime_env.tmp_path, "bo-a") as runtimes:
        rt = runtimes["bo-a"]
        # 1. four failed starts in a row: the delays grow (1 s x 2^(n-1), jittered [d/2, d])
        eventually(lambda: _metric(rt, "tradebot_shard_start_failures_total") >= 4, 90,
                   "four failed starts")  # fmt: skip
        failures = _failures(rt)
        delays = [float(str(f["retry_in_s"])) for f in failures]
        print(f"start back-off: delays {delays}, epoch {epoch()}")
        assert [f["failures"] for f in failures[:4]] == [1, 2, 3, 4], failures
        for n, delay in enumerate(delays[:4], start=1):
            ceiling = 2.0 ** (n - 1)
            assert ceiling / 2 - 0.01 <= delay <= ceiling + 0.01, (n, delays)
        assert _metric(rt, "tradebot_shard_start_backoff_seconds") >= 4.0
        assert _metric(rt, "tradebot_leader") == 0.0
        # the retries really waited: each failed start came at least its predecessor's
        # delay later (the old fixed policy retried every ~2 s whatever the count)
        times = [datetime.fromisoformat(str(f["ts"])) for f in failures[:4]]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        print(f"start back-off: gaps between failed starts {gaps}")
        assert all(gap >= delay for gap, delay in zip(gaps, delays, strict=False)), (gaps, delays)
        # one epoch per attempt, no more
        assert epoch() <= len(_failures(rt)) + 1

        # 2. the cause goes away: the shard starts, trades, and the back-off is reset
        http_json(f"{sim_url}/admin/faults/{fault['id']}", method="DELETE")
        started = time.monotonic()
        eventually(lambda: _metric(rt, "tradebot_leader") == 1.0, 60, "shard started")
        print(f"start back-off: shard trading {time.monotonic() - started:.1f}s after the fix")
        # tradebot_leader is the Lease; the back-off is reset once the start has completed
        eventually(lambda: _metric(rt, "tradebot_shard_start_backoff_seconds") == 0.0, 30,
                   "the back-off reset once the shard trades")  # fmt: skip
        eventually(lambda: len(ledger(sim_url)["orders"]) >= 1, 60, "orders after recovery")
        assert len(_failures(rt)) == _metric(rt, "tradebot_shard_start_failures_total")
