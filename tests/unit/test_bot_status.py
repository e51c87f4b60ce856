"""Status aggregation: phase, conditions and printer-column fields from observations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradebot_contracts.heartbeat import Heartbeat
from tradebot_operator.checks import Problem
from tradebot_operator.controllers.tradingbot.status import (
    STARTUP_TIMEOUT,
    ExchangeObservation,
    LeaseObservation,
    Observation,
    compute_status,
    startup_deadline,
)
from tradebot_operator.kube.conditions import find

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def lease(
    shard: int,
    holder: str | None,
    *,
    age: float = 1,
    ready: bool = True,
    state: str = "Trading",
    realized: str = "0",
    unrealized: str = "0",
    open_orders: int = 0,
    quote: str | None = "USDT",
) -> LeaseObservation:
    hb = None
    if holder:
        hb = Heartbeat(
            pod=holder, epoch=3, shard=shard, ts=NOW - timedelta(seconds=age),
            state=state, ready=ready, open_orders=open_orders,
            realized_pnl=Decimal(realized), unrealized_pnl=Decimal(unrealized),
            quote_currency=quote,
        )  # fmt: skip
    return LeaseObservation(
        name=f"bot-acct-{shard}", shard=shard, holder=holder,
        renew_time=NOW - timedelta(seconds=age), duration_seconds=6, heartbeat=hb,
    )  # fmt: skip


def obs(*exchanges: ExchangeObservation, **kw: object) -> Observation:
    base: dict[str, object] = {"generation": 4, "suspended": False, "halted": False}
    base.update(kw)
    return Observation(exchanges=exchanges, **base)  # type: ignore[arg-type]


def test_missing_reference_is_pending_with_the_name_in_the_message() -> None:
    problem = Problem("StrategyNotFound", "spec.strategyRef.name", "Strategy sma-fast not found")
    status = compute_status(obs(problems=[problem]), None, NOW)
    assert status["phase"] == "Pending"
    ready = find(status["conditions"], "Ready")
    assert ready is not None
    assert ready["status"] == "False"
    assert ready["reason"] == "StrategyNotFound"
    assert "sma-fast" in ready["message"]
    assert ready["observedGeneration"] == 4


def test_invalid_spec_is_failed_and_degraded() -> None:
    problem = Problem("InvalidParameters", "spec.parameters.slowPeriod", "must exceed fastPeriod")
    status = compute_status(obs(problems=[problem]), None, NOW)
    assert status["phase"] == "Failed"
    assert find(status["conditions"], "Degraded")["status"] == "True"  # type: ignore[index]
    assert find(status["conditions"], "Reconciled")["status"] == "False"  # type: ignore[index]


def test_all_shards_ready_is_running_with_pnl_leader_and_ready_column() -> None:
    ex = ExchangeObservation(
        account="acct", shards_total=2,
        leases=[lease(0, "pod-a", realized="10.5", unrealized="-0.25", open_orders=2),
                lease(1, "pod-b", realized="1", open_orders=1)],
    )  # fmt: skip
    status = compute_status(obs(ex), None, NOW)
    assert status["phase"] == "Running"
    assert status["pnl"] == "11.25"
    assert status["summary"] == {
        "exchangesReady": "1/1", "reason": "", "leader": "pod-a", "pnl": "11.25 USDT"
    }  # fmt: skip
    acct = status["exchanges"]["acct"]
    assert acct["openOrders"] == 3
    assert acct["readyShards"] == 2
    assert acct["realizedPnl"] == "11.5"


def test_pnl_is_shown_per_currency_when_the_accounts_differ() -> None:
    usdt = ExchangeObservation(account="a", shards_total=1,
                               leases=[lease(0, "pod-a", realized="2.50")])  # fmt: skip
    usdc_lease = lease(0, "pod-b", realized="-1.25", quote="USDC")
    usdc = ExchangeObservation(account="b", shards_total=1, leases=[usdc_lease])
    status = compute_status(obs(usdt, usdc), None, NOW)
    assert "pnl" not in status  # no sum across currencies
    assert status["summary"]["pnl"] == "-1.25 USDC, 2.50 USDT"
    assert status["exchanges"]["b"]["quoteCurrency"] == "USDC"


def test_status_figures_always_fit_the_crd() -> None:
    # Seen live: a 33-character PnL (the heartbeat contract counts digits, the CRD counts
    # the sign too) made the API server refuse every status patch; the bot's status froze
    # at readyShards 0 while it traded.
    figure = "-0.005981294099999999999999981189"
    ex = ExchangeObservation(account="acct", shards_total=2, leases=[
        lease(0, "pod-a", realized=figure), lease(1, "pod-b", unrealized="0.5")])  # fmt: skip
    status = compute_status(obs(ex), None, NOW)
    for text in (status["pnl"], status["exchanges"]["acct"]["realizedPnl"]):
        assert len(text) <= 32, text
    assert abs(Decimal(status["exchanges"]["acct"]["realizedPnl"]) - Decimal(figure)) < Decimal(
        "1e-28"
    )


def test_expired_lease_after_running_is_degraded() -> None:
    ex = ExchangeObservation(account="acct", shards_total=2,
                             leases=[lease(0, "pod-a"), lease(1, "pod-b", age=30)])  # fmt: skip
    status = compute_status(obs(ex, ever_running=True), None, NOW)
    assert status["phase"] == "Degraded"
    assert "acct: 1/2 shards ready" in find(status["conditions"], "Ready")["message"]  # type: ignore[index]


def test_no_heartbeat_yet_is_pending_and_progressing() -> None:
    ex = ExchangeObservation(account="acct", shards_total=1, leases=[lease(0, None)])
    status = compute_status(obs(ex), None, NOW)
    assert status["phase"] == "Pending"
    assert find(status["conditions"], "Progressing")["status"] == "True"  # type: ignore[index]


def test_runtime_still_starting_is_pending_not_degraded() -> None:
    # The Lease is written with a "Starting" heartbeat at acquisition, before the journal is
    # loaded and reconciled: a bot on its way to its first ready heartbeat is Pending.
    for state in ("Starting", "Reconciling"):
        ex = ExchangeObservation(
            account="acct", shards_total=1, leases=[lease(0, "pod-a", ready=False, state=state)]
        )
        status = compute_status(obs(ex), None, NOW)
        assert status["phase"] == "Pending", state
        ready = find(status["conditions"], "Ready")
        assert ready is not None
        assert ready["reason"] == "WaitingForRuntime"
        assert ready["message"] == f"acct: 0/1 shards ready (runtime {state})"
        assert find(status["conditions"], "Degraded")["status"] == "False"  # type: ignore[index]
        assert find(status["conditions"], "Progressing")["status"] == "True"  # type: ignore[index]
        assert status["exchanges"]["acct"]["leader"] == "pod-a"


def test_runtime_error_or_failover_is_degraded() -> None:
    error = ExchangeObservation(
        account="acct", shards_total=1, leases=[lease(0, "pod-a", ready=False, state="Error")]
    )
    status = compute_status(obs(error), None, NOW)
    assert status["phase"] == "Degraded"
    ready = find(status["conditions"], "Ready")
    assert ready is not None
    assert ready["reason"] == "ShardsNotReady"
    assert ready["message"] == "acct: 0/1 shards ready (runtime Error)"
    # after it has run, a new leader that is still starting (failover) is Degraded
    starting = ExchangeObservation(
        account="acct", shards_total=1, leases=[lease(0, "pod-b", ready=False, state="Starting")]
    )
    assert compute_status(obs(starting, ever_running=True), None, NOW)["phase"] == "Degraded"
    # one shard starting, the other's heartbeat stale: not just starting
    mixed = ExchangeObservation(
        account="acct", shards_total=2,
        leases=[lease(0, "pod-a", ready=False, state="Reconciling"), lease(1, "pod-b", age=5)],
    )  # fmt: skip
    status = compute_status(obs(mixed, stale_after=timedelta(seconds=3)), None, NOW)
    assert status["phase"] == "Degraded"
    message = find(status["conditions"], "Ready")["message"]  # type: ignore[index]
    assert message == "acct: 0/2 shards ready (runtime Reconciling, stale heartbeat)"


def test_heartbeat_from_a_pod_that_no_longer_holds_the_lease_does_not_count() -> None:
    stale = lease(0, "pod-a")
    taken = LeaseObservation(stale.name, 0, "pod-b", stale.renew_time, 6, stale.heartbeat)
    ex = ExchangeObservation(account="acct", shards_total=1, leases=[taken])
    status = compute_status(obs(ex, ever_running=True), None, NOW)
    assert status["exchanges"]["acct"]["readyShards"] == 0
    assert status["phase"] == "Degraded"


def test_suspended_and_halted_phases() -> None:
    ex = ExchangeObservation(account="acct", shards_total=1, leases=[lease(0, "pod-a")])
    assert compute_status(obs(ex, suspended=True), None, NOW)["phase"] == "Suspended"
    assert compute_status(obs(ex, halted=True), None, NOW)["phase"] == "Halted"


def test_transition_time_only_moves_when_status_flips() -> None:
    ex = ExchangeObservation(account="acct", shards_total=1, leases=[lease(0, "pod-a")])
    first = compute_status(obs(ex), None, NOW)
    later = NOW + timedelta(seconds=2)
    again = compute_status(obs(ex), first, later)
    assert find(again["conditions"], "Ready") == find(first["conditions"], "Ready")
    broken = ExchangeObservation(account="acct", shards_total=1, leases=[lease(0, None)])
    flipped = compute_status(obs(broken, ever_running=True), again, later)
    ready = find(flipped["conditions"], "Ready")
    assert ready is not None
    assert ready["status"] == "False"
    assert ready["lastTransitionTime"] == "2026-11-22T12:00:02Z"


def test_runtime_stuck_while_starting_turns_degraded_after_the_startup_timeout() -> None:
    ex = ExchangeObservation(
        account="acct", shards_total=1, leases=[lease(0, "pod-a", ready=False, state="Reconciling")]
    )
    first = compute_status(obs(ex), None, NOW)
    assert first["phase"] == "Pending"
    deadline = startup_deadline(obs(ex), first)
    assert deadline == NOW + STARTUP_TIMEOUT  # Ready turned False now, on the first write
    later = deadline - timedelta(seconds=1)
    assert compute_status(obs(ex), first, later)["phase"] == "Pending"
    fresh = ExchangeObservation(  # the runtime keeps renewing, but never gets ready
        account="acct", shards_total=1,
        leases=[lease(0, "pod-a", ready=False, state="Reconciling", age=-299)],
    )  # fmt: skip
    stuck = compute_status(obs(fresh), first, deadline)
    assert stuck["phase"] == "Degraded"
    ready = find(stuck["conditions"], "Ready")
    assert ready is not None and ready["reason"] == "RuntimeStartTimeout"
    assert (
        ready["message"] == "runtime still starting after 5 min: acct: 0/1 shards ready "
        "(runtime Reconciling)"
    )
    # once ready, there is no deadline any more
    running = ExchangeObservation(
        account="acct", shards_total=1, leases=[lease(0, "pod-a", age=-299)]
    )
    status = compute_status(obs(running), stuck, deadline)
    assert status["phase"] == "Running"
    assert startup_deadline(obs(running), status) is None
