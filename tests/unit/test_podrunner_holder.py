"""Who may run a node (tools/podrunner/holder.py): the pure verdict on the node Lease."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from podrunner import timefmt
from podrunner.holder import HOLDER_ANNOTATION, Holder, judge, refusal

NOW = timefmt.parse("2026-01-01T12:00:00Z")
ME = Holder(host="h1", boot_id="b1", pid=100, start="555", workdir="/w/me")
OTHER = Holder(host="h1", boot_id="b1", pid=200, start="777", workdir="/w/other")


def _lease(holder: Holder | None, identity: str | None = None, age: float = 1,
           duration: int = 40, parked: bool = False) -> dict[str, Any]:  # fmt: skip
    meta: dict[str, Any] = {"name": "n"}
    if holder is not None:
        meta["annotations"] = {HOLDER_ANNOTATION: holder.annotation(parked=parked)}
    return {
        "metadata": meta,
        "spec": {
            "holderIdentity": identity or (holder.identity if holder else None),
            "leaseDurationSeconds": duration,
            "renewTime": timefmt.micro(NOW - timedelta(seconds=age)),
        },
    }


def alive(_: Holder) -> bool:
    return True


def dead(_: Holder) -> bool:
    return False


def test_free_ours_and_kwok() -> None:
    assert judge(None, ME, "n", NOW)[0] == "free"
    assert judge(_lease(ME), ME, "n", NOW, alive)[0] == "ours"
    assert judge(_lease(None, identity="kwok-controller-1"), ME, "n", NOW)[0] == "free"


def test_live_runner_on_this_host_holds_the_node() -> None:
    verdict, why = judge(_lease(OTHER), ME, "n", NOW, alive)
    assert verdict == "held" and "pid 200" in why and "/w/other" in why
    message = refusal("n", "kube-node-lease", why, OTHER)
    assert "refusing to start" in message and "kill 200" in message


def test_dead_or_reused_pid_is_stale_at_once() -> None:
    assert judge(_lease(OTHER, age=1), ME, "n", NOW, dead)[0] == "stale"
    # pid reused by another process: start time differs (the real check reads /proc)
    reused = Holder(host="h1", boot_id="b1", pid=1, start="not-init's-start", workdir="")
    assert judge(_lease(reused), ME, "n", NOW)[0] == "stale"


def test_expiry_decides_for_other_hosts_and_old_runners() -> None:
    remote = Holder(host="h2", boot_id="b2", pid=200, start="1", workdir="")
    assert judge(_lease(remote, age=5), ME, "n", NOW, dead)[0] == "held"
    assert judge(_lease(remote, age=60), ME, "n", NOW, dead)[0] == "stale"
    rebooted = Holder(host="h1", boot_id="b0", pid=200, start="1", workdir="")
    assert judge(_lease(rebooted, age=5), ME, "n", NOW, dead)[0] == "held"
    # a runner from before the annotation existed used the node name as its identity
    assert judge(_lease(None, identity="n", age=5), ME, "n", NOW)[0] == "held"
    assert judge(_lease(None, identity="n", age=60), ME, "n", NOW)[0] == "stale"
    # alive but no longer renewing (e.g. stopped): stale once expired
    assert judge(_lease(OTHER, age=60), ME, "n", NOW, alive)[0] == "stale"


def test_parked_lease_is_free() -> None:
    assert judge(_lease(OTHER, duration=86400, parked=True), ME, "n", NOW, alive)[0] == "free"
