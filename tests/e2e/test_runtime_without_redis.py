"""A runtime without Redis still throttles through its own limiter: it trades on the
conservative local share of the account's budget (tradebot_ratelimit_local_fallback = 1),
never on ccxt's built-in throttle, and the simulator counts no rate-limit violation."""

from __future__ import annotations

import pytest

from support.objects import eventually
from support.runtimes import SIM_ACCOUNT, RuntimeEnv, http_json, ledger, run_runtimes
from tradebot_contracts import env

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_runtime_without_redis_trades_on_the_local_share(
    runtime_env: RuntimeEnv,
    sim_url: str,
) -> None:
    ns = runtime_env.cluster.namespace("noredis")
    setup = runtime_env.setup_bot(
        ns, sim_url,
        extra_env={env.REDIS_URL: ""},  # no Redis anywhere: the config has none either
    )  # fmt: skip
    with run_runtimes(setup, runtime_env.tmp_path, "nr-a") as runtimes:
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
