"""Who holds a node: one pod runner per node, proven by the node Lease in kube-node-lease.

Two runners for the same node would each start a process for every pod (e.g. an orphan
runner left behind by a killed test run and a fresh one). So the node Lease names its
holder: ``holderIdentity`` is unique per runner process, and the annotation
``HOLDER_ANNOTATION`` records host, boot id, pid, process start time and workdir.

A runner starts only when the Lease is free, its own, or held by a *stale* runner:

* same host (same boot id): the holder's pid is gone or belongs to another process
  (start time differs) -> stale at once, whatever the Lease's renewTime says;
* another host, or a holder without the annotation: stale once the Lease has expired
  (renewTime + leaseDurationSeconds in the past);
* a Lease parked by a runner that exited with ``--on-exit notready`` is free.

kwok's own hold (no annotation, identity not a pod runner's) is not a runner: taken over,
kwok then defers to us. Everything here is pure except ``local_identity`` and
``process_start``, which read /proc.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from podrunner import timefmt

HOLDER_ANNOTATION = "podrunner.tradebot.io/holder"
IDENTITY_PREFIX = "podrunner/"

Verdict = Literal["free", "ours", "stale", "held"]


class NodeHeld(RuntimeError):
    """Another live pod runner holds the node (the message says which and what to do)."""


@dataclass(frozen=True)
class Holder:
    host: str
    boot_id: str
    pid: int
    start: str
    """Start time of the process (/proc/<pid>/stat field 22): tells a reused pid apart."""
    workdir: str
    parked: bool = False

    @property
    def identity(self) -> str:
        return f"{IDENTITY_PREFIX}{self.host}/{self.pid}/{self.start}"

    def annotation(self, parked: bool = False) -> str:
        return json.dumps({**asdict(self), "parked": parked}, sort_keys=True)

    @classmethod
    def from_annotation(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(
                host=str(data["host"]), boot_id=str(data["boot_id"]), pid=int(data["pid"]),
                start=str(data["start"]), workdir=str(data.get("workdir", "")),
                parked=bool(data.get("parked", False)),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return None


def process_start(pid: int) -> str | None:
    """Start time (clock ticks since boot) of ``pid``, None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: split after its closing ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19]  # field 22 overall


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def local_identity(workdir: Path) -> Holder:
    pid = os.getpid()
    return Holder(
        host=socket.gethostname(), boot_id=boot_id(), pid=pid,
        start=process_start(pid) or "0", workdir=str(workdir),
    )  # fmt: skip


def _alive_here(holder: Holder) -> bool:
    return process_start(holder.pid) == holder.start


def expired(lease: dict[str, Any], now: datetime) -> bool:
    spec = lease.get("spec") or {}
    renew, duration = spec.get("renewTime"), spec.get("leaseDurationSeconds")
    if not renew or not duration:
        return True
    return (now - timefmt.parse(str(renew))).total_seconds() > float(duration)


def judge(
    lease: dict[str, Any] | None,
    me: Holder,
    node: str,
    now: datetime,
    alive_here: Callable[[Holder], bool] = _alive_here,
) -> tuple[Verdict, str]:
    """Whether ``me`` may hold ``node``'s Lease, and a sentence about the current holder."""
    if lease is None:
        return "free", "no node Lease yet"
    spec = lease.get("spec") or {}
    identity = spec.get("holderIdentity") or ""
    if not identity:
        return "free", "node Lease has no holder"
    if identity == me.identity:
        return "ours", "node Lease is ours"
    annotations = (lease.get("metadata") or {}).get("annotations") or {}
    other = Holder.from_annotation(str(annotations.get(HOLDER_ANNOTATION, "")))
    is_expired = expired(lease, now)
    renew = spec.get("renewTime") or "never"
    if other is None:
        legacy_runner = identity == node or identity.startswith(IDENTITY_PREFIX)
        if not legacy_runner:
            return "free", f"node Lease held by {identity!r} (not a pod runner, e.g. kwok)"
        if is_expired:
            return "stale", f"pod runner {identity!r} stopped renewing (last {renew})"
        return "held", f"pod runner {identity!r} (renewed {renew})"
    who = f"pod runner pid {other.pid} on {other.host} (workdir {other.workdir or '?'})"
    if other.parked:
        return "free", f"{who} exited and parked the node"
    if other.host == me.host and other.boot_id == me.boot_id:
        if not alive_here(other):
            return "stale", f"{who} is gone"
        if is_expired:
            return "stale", f"{who} is alive but stopped renewing (last {renew})"
        return "held", f"{who} is alive and renewed the node Lease at {renew}"
    if is_expired:
        return "stale", f"{who} stopped renewing (last {renew})"
    return "held", f"{who} renewed the node Lease at {renew}"


def refusal(node: str, lease_namespace: str, why: str, holder: Holder | None) -> str:
    how = (
        f"stop it (kill {holder.pid}) or wait until its Lease expires"
        if holder is not None
        else "stop it or wait until its Lease expires"
    )
    return (
        f"refusing to start: node {node!r} is already run by another pod runner: {why}. "
        f"Two runners would start every pod twice; {how} "
        f"(kubectl get lease {node} -n {lease_namespace} -o yaml)"
    )
