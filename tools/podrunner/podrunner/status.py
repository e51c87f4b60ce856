"""Pod status from container states: phase, conditions, IPs (pure, like kubelet's)."""

from __future__ import annotations

from typing import Any

from podrunner import timefmt
from podrunner.envvars import POD_IP


def phase(prepared: bool, containers: list[dict[str, Any]]) -> str:
    if not prepared or not containers:
        return "Pending"
    states = [c["state"] for c in containers]
    if all("terminated" in s for s in states):
        codes = [s["terminated"]["exitCode"] for s in states]
        return "Succeeded" if all(code == 0 for code in codes) else "Failed"
    if any("running" in s for s in states):
        return "Running"
    never_started = [
        c
        for c in containers
        if "waiting" in c["state"] and not c["lastState"] and not c["restartCount"]
    ]
    return "Pending" if never_started else "Running"  # else: restarting after a crash


class ConditionClock:
    """lastTransitionTime per condition: moves only when the condition's status does."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, str]] = {}

    def condition(self, kind: str, ok: bool, reason: str = "") -> dict[str, Any]:
        status = "True" if ok else "False"
        previous = self._seen.get(kind)
        if previous is None or previous[0] != status:
            previous = (status, timefmt.rfc3339())
            self._seen[kind] = previous
        out = {"type": kind, "status": status, "lastProbeTime": None,
               "lastTransitionTime": previous[1]}  # fmt: skip
        if reason and not ok:
            out["reason"] = reason
        return out


def pod_status(
    *,
    prepared: bool,
    containers: list[dict[str, Any]],
    clock: ConditionClock,
    start_time: str,
    message: str = "",
) -> dict[str, Any]:
    current = phase(prepared, containers)
    all_ready = bool(containers) and all(c["ready"] for c in containers)
    not_ready = [c["name"] for c in containers if not c["ready"]]
    reason = "PodCompleted" if current in ("Succeeded", "Failed") else "ContainersNotReady"
    status: dict[str, Any] = {
        "phase": current,
        "conditions": [
            clock.condition("PodReadyToStartContainers", prepared),
            clock.condition("Initialized", True),
            clock.condition("Ready", all_ready, reason),
            clock.condition("ContainersReady", all_ready, reason),
            clock.condition("PodScheduled", True),
        ],
        "hostIP": POD_IP,
        "hostIPs": [{"ip": POD_IP}],
        "podIP": POD_IP,
        "podIPs": [{"ip": POD_IP}],
        "startTime": start_time,
        "containerStatuses": containers,
        "message": message or None,
    }
    if not_ready and current == "Running":
        status["message"] = message or f"containers with unready status: [{' '.join(not_ready)}]"
    return status
