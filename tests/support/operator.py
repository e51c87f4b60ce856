"""The real operator (`python -m tradebot_operator`) as a separate process against a
cluster, with its log in a file: `_operator` starts one (the fixtures in
tests/fixtures/operator.py and tests with a cluster of their own), and
`_session_operator_paused` pauses the session's operator (SIGSTOP) while another one must
be the only one reconciling."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.cluster import Cluster
from support.procs import free_port, stop, wait_until


@dataclass(frozen=True)
class OperatorProcess:
    log: Path
    liveness: str
    pid: int = 0
    namespace: str = ""
    """The only namespace it watches ("" = all)."""

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


TEST_TENANCY: dict[str, object] = {
    # The session operator lets the tests ask for what their objects need (loopback
    # simulator endpoints, development Secrets, placement on the pod runner's node, env
    # overrides, any Vault path under the mount). The tenancy tests run their own operator
    # with the installation defaults (tests/integration/test_tenancy.py).
    "vaultPathPrefix": "",
    "allowedEndpoints": ["127.0.0.0/8"],
    "allowSecretRef": True,
    "allowNodePlacement": True,
    "allowTolerations": True,
    "allowedEnv": ["*"],
    "allowedImages": ["*"],
    "allowedPriorityClasses": ["*"],
}

SESSION_OPERATOR_PIDS: list[int] = []
"""The session operator's pid while the `operator_process` fixture runs it."""


@contextlib.contextmanager
def _session_operator_paused() -> Iterator[None]:
    for pid in SESSION_OPERATOR_PIDS:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in SESSION_OPERATOR_PIDS:
            os.kill(pid, signal.SIGCONT)


def _operator(
    cluster: Cluster, log: Path, extra_env: dict[str, str], namespace: str = ""
) -> Generator[OperatorProcess, None, None]:
    port = free_port()
    liveness = f"http://127.0.0.1:{port}/healthz"
    env = {
        **os.environ,
        "KUBECONFIG": cluster.kubeconfig,
        "TRADEBOT_LIVENESS_ENDPOINT": liveness,
        "TRADEBOT_LOG_FORMAT": "json",
        "TRADEBOT_TENANCY": json.dumps(TEST_TENANCY),
        **extra_env,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tradebot_operator"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # stop() signals the process group
        )

    def alive() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"operator exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with urllib.request.urlopen(liveness, timeout=1) as resp:
            return int(resp.status) == 200

    try:
        wait_until(alive, 60, "operator liveness endpoint", log)
        yield OperatorProcess(log=log, liveness=liveness, pid=proc.pid, namespace=namespace)
    finally:
        stop(proc, timeout=15)
        if proc.returncode not in (0, -15):
            print(f"operator exited with {proc.returncode}; log: {log}")
