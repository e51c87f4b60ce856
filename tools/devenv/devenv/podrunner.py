"""The pod runner (tools/podrunner): owns one node and runs the pods bound to it as local
processes, so runtime pods really trade."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devenv.kube import Kube
from devenv.procs import spawn, stop, wait_until
from podrunner import NODE_LABEL, NODE_TAINT_KEY

NODE_NAME = "pod-runner"


@dataclass(frozen=True)
class PodRunner:
    node: str
    workdir: Path
    log: Path

    def placement(self) -> dict[str, Any]:
        """Pod spec fields (TradingBot: spec.runtime) that schedule a pod onto this node."""
        return {
            "nodeSelector": {NODE_LABEL: "true", "kubernetes.io/hostname": self.node},
            "tolerations": [{"key": NODE_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        }

    @property
    def logs_dir(self) -> Path:
        return self.workdir / "logs"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running(
    kube: Kube, workdir: Path, node: str = NODE_NAME, fast: bool = True
) -> Iterator[PodRunner]:
    """``fast``: short restart back-off and ConfigMap resync (kubelet's defaults are 10 s
    back-off and about a minute of resync)."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    log = workdir / "podrunner.log"
    cmd = [sys.executable, "-m", "podrunner", "--kubeconfig", kube.kubeconfig,
           "--node", node, "--workdir", str(workdir)]  # fmt: skip
    if fast:
        cmd += ["--backoff-initial", "1", "--backoff-max", "8", "--sync-period", "1"]
    proc = spawn(cmd, log=log)

    def ready() -> bool:
        result = kube.kubectl(
            "get", "node", node, "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False,
        )  # fmt: skip
        return result.stdout.strip() == "True"

    try:
        wait_until(ready, 60, "pod runner node", log, proc, interval=0.5)
        yield PodRunner(node=node, workdir=workdir, log=log)
    finally:
        # Stops every pod process gracefully (capped at 30 s) and deletes its node.
        stop(proc, timeout=45)
