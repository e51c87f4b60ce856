"""A runtime without Redis still throttles through its own limiter: it trades on the
conservative local share of the account's budget (tradebot_ratelimit_local_fallback = 1),
never on ccxt's built-in throttle, and the simulator counts no rate-limit violation."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.cluster import Cluster
from fixtures.objects import eventually
from fixtures.operator import OperatorProcess
from fixtures.runtimes import SIM_ACCOUNT, http_json, ledger, run_runtimes, setup_bot
from fixtures.servers import Postgres, Redis

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_runtime_without_redis_trades_on_the_local_share(
    crds_installed: Cluster,
    operator_process: OperatorProcess,
    postgres: Postgres,
    redis_server: Redis,
    sim_url: str,
    tmp_path: Path,
) -> None:
    cluster = crds_installed
    ns = cluster.namespace("noredis")
    setup = setup_bot(
        cluster, ns, sim_url, postgres, redis_server, tmp_path,
        extra_env={"TRADEBOT_REDIS_URL": ""},  # no Redis anywhere: the config has none either
    )  # fmt: skip
    with run_runtimes(setup, tmp_path, "nr-a") as runtimes:
        rt = runtimes["nr-a"]

        def traded() -> bool:
            assert rt.proc.poll() is None, rt.tail()
            return len(ledger(sim_url)["orders"]) >= 2

        eventually(traded, 90, "orders at the simulator")
        assert rt.metric("tradebot_ratelimit_local_fallback") == 1.0
        assert "no Redis configured" in rt.tail()
        assert ledger(sim_url)["duplicates"] == []
        summary = http_json(f"{sim_url}/admin/ledger")
        assert summary["accounts"][SIM_ACCOUNT]["rate_limit_violations"] == 0
