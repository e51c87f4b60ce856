"""When a bot needs its next pass, which status writes are skipped, when a finalizer is
needed, and what the indexes keep of a body: the pure parts of the reconcile controller."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tradebot_contracts.heartbeat import Heartbeat
from tradebot_operator.controllers.tradingbot.finalize import needs_finalizer
from tradebot_operator.controllers.tradingbot.status import (
    DEADLINE_MARGIN_SECONDS,
    ExchangeObservation,
    LeaseObservation,
    _heartbeat_age,
    _heartbeat_only,
    next_status_change,
)
from tradebot_operator.kube.bodies import slim_body
from tradebot_operator.kube.status import status_patch

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
STALE = timedelta(seconds=18)


def lease(
    holder: str | None, renewed_ago: float, beat_ago: float | None, duration: int = 6
) -> LeaseObservation:
    hb = None
    if holder and beat_ago is not None:
        hb = Heartbeat(pod=holder, epoch=1, shard=0, ts=NOW - timedelta(seconds=beat_ago),
                       state="Trading", ready=True)  # fmt: skip
    renew = NOW - timedelta(seconds=renewed_ago) if holder else None
    return LeaseObservation("b-x-0", 0, holder, renew, duration, hb)


def ex(*leases: LeaseObservation) -> list[ExchangeObservation]:
    return [ExchangeObservation("x", len(leases), leases)]


def test_nothing_held_means_no_scheduled_pass() -> None:
    assert next_status_change([], NOW, STALE) is None
    assert next_status_change(ex(lease(None, 0, None)), NOW, STALE) is None
    # held once, expired long ago: nothing can change until a Lease event
    assert next_status_change(ex(lease("p", 60, 60)), NOW, STALE) is None


def test_a_held_lease_is_rechecked_when_it_expires() -> None:
    delay = next_status_change(ex(lease("p", 2, 2)), NOW, STALE)
    assert delay == 4 + DEADLINE_MARGIN_SECONDS


def test_a_stale_heartbeat_deadline_can_come_before_the_lease_expiry() -> None:
    # renewed just now (expires in 6 s) but the heartbeat is 15 s old: stale in 3 s
    delay = next_status_change(ex(lease("p", 0, 15)), NOW, STALE)
    assert delay == 3 + DEADLINE_MARGIN_SECONDS


def test_the_earliest_deadline_over_every_exchange_wins() -> None:
    exchanges = ex(lease("p", 1, 1)) + ex(lease("q", 5, 5))
    assert next_status_change(exchanges, NOW, STALE) == 1 + DEADLINE_MARGIN_SECONDS


def test_only_a_heartbeat_time_change_is_recognised() -> None:
    old = {"phase": "Running", "exchanges": {"x": {"lastHeartbeat": "A", "openOrders": 1}}}
    beat = {"phase": "Running", "exchanges": {"x": {"lastHeartbeat": "B", "openOrders": 1}}}
    orders = {"phase": "Running", "exchanges": {"x": {"lastHeartbeat": "B", "openOrders": 2}}}
    assert _heartbeat_only(status_patch(old, beat))
    assert not _heartbeat_only(status_patch(old, orders))
    assert not _heartbeat_only(status_patch(old, {**beat, "phase": "Degraded"}))
    assert not _heartbeat_only({})


def test_heartbeat_age_is_the_oldest_written_beat() -> None:
    status = {
        "exchanges": {
            "x": {"lastHeartbeat": "2026-11-22T11:59:50Z"},
            "y": {"lastHeartbeat": "2026-11-22T11:59:20Z"},
        }
    }
    assert _heartbeat_age(status, NOW) == 40
    assert _heartbeat_age({"exchanges": {"x": {}}}, NOW) == float("inf")


def test_finalizer_only_when_deletion_has_work() -> None:
    running = {"spec": {"onDelete": "cancelOrders"}}
    assert needs_finalizer(running, vault_managed=False)
    assert needs_finalizer({"spec": {}}, vault_managed=False)  # default onDelete
    assert not needs_finalizer({"spec": {"onDelete": "leave"}}, vault_managed=False)
    assert not needs_finalizer({"spec": {"suspend": True}}, vault_managed=False)
    # the Vault grant must always be removed
    assert needs_finalizer({"spec": {"suspend": True}}, vault_managed=True)


def test_slim_body_keeps_what_the_reconcile_reads_and_drops_copies() -> None:
    body = {
        "apiVersion": "tradebot.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {
            "name": "b", "namespace": "n", "uid": "u", "generation": 3,
            "resourceVersion": "9", "finalizers": ["f"], "labels": {"a": "1"},
            "annotations": {
                "team": "x",
                "kubectl.kubernetes.io/last-applied-configuration": "{...}",
                "tradebot.io/last-handled-configuration": "{...}",
            },
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"suspend": True, "exchanges": [{"account": "a"}]},
        "status": {"phase": "Suspended"},
    }  # fmt: skip
    slim = slim_body(body, status=True)
    assert slim["metadata"]["annotations"] == {"team": "x"}
    assert "managedFields" not in slim["metadata"]
    assert slim["metadata"]["finalizers"] == ["f"]
    assert slim["spec"] == body["spec"] and slim["status"] == body["status"]
    assert "status" not in slim_body(body, status=False)
    body["spec"]["exchanges"][0]["account"] = "changed"  # a copy, not a view
    assert slim["spec"]["exchanges"][0]["account"] == "a"
