"""Scratch (to be deleted): dump every event of a full bot lifecycle."""
from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from support.cluster import Cluster
from support.objects import account, apply, beat, bot, eventually, get, phase_is, strategy
from support.operator import OperatorProcess

pytestmark = pytest.mark.integration


def test_dump(cluster: Cluster, operator_process: OperatorProcess) -> None:
    ns = cluster.namespace("scratch")
    apply(cluster, ns, account(), bot(strategy_name="sma"))
    eventually(phase_is(cluster, ns, "btc", "Pending"), what="Pending")
    time.sleep(3)
    apply(cluster, ns, strategy())
    eventually(lambda: get(cluster, ns, "lease", "btc-paper-0"), what="lease")
    time.sleep(3)
    beat(cluster, ns, "btc-paper-0", "btc-paper-abc", open_orders=1, realized_pnl=Decimal("1"))
    eventually(phase_is(cluster, ns, "btc", "Running"), what="Running")
    time.sleep(40)
    events = json.loads(cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
    for e in sorted(events, key=lambda e: e["metadata"]["creationTimestamp"]):
        io = e["involvedObject"]
        print("EVT", e["metadata"]["creationTimestamp"], io["kind"], io["name"], e["type"],
              e["reason"], e.get("count"), e.get("source"), e.get("reportingComponent"), e["message"][:100])
