"""Settings of one pod runner, from the command line."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    kubeconfig: Path
    node: str
    workdir: Path
    # Interpreter that replaces `python`/`python3` in container commands (the image is ignored).
    python: str = sys.executable
    # Back-off between restarts of a crashing container (kubelet: 10 s doubling to 300 s).
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    # How often mounted ConfigMaps/Secrets are re-read and rewritten when they changed.
    sync_period: float = 2.0
    # Node heartbeat: Lease renewal and status update period, and the Lease duration.
    heartbeat_period: float = 10.0
    lease_duration: int = 40
    # On exit: "delete" the Node (pods are garbage-collected and re-created elsewhere or stay
    # Pending) or mark it "notready" (pods stay bound; a restarted runner adopts them).
    on_exit: str = "delete"

    @property
    def pods_dir(self) -> Path:
        return self.workdir / "pods"

    @property
    def logs_dir(self) -> Path:
        return self.workdir / "logs"
