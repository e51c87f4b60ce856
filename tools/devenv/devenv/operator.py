"""The operator (``python -m tradebot_operator``) as a process, configured through the
``TRADEBOT_<FIELD>`` variables of OperatorSettings."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from devenv.kube import Kube
from devenv.procs import free_port, http_ok, spawn, stop, wait_until


@dataclass(frozen=True)
class Operator:
    log: Path
    liveness: str

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


LOCAL_TENANCY: Final = {
    # the local stack's services listen on loopback (simulator): allowed as exchange
    # endpoints; the pod runner's node is reached with a nodeSelector and a toleration of
    # its taint; the paper account
    # reads its simulator keys from a Secret (development only). Vault paths keep the
    # default per-namespace prefix tradebot/<namespace>/.
    "allowedEndpoints": ["127.0.0.0/8"],
    "allowNodePlacement": True,
    "allowTolerations": True,
    "allowSecretRef": True,
}
"""What the local installation lets its namespaces ask for (chart value ``tenancy``)."""


def settings_env(
    *,
    vault_address: str | None = None,
    journal_dsn: str | None = None,
    redis_url: str | None = None,
    lease_duration_seconds: int | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment for OperatorSettings.from_env (only the fields that are set)."""
    env = {
        "TRADEBOT_VAULT_ADDRESS": vault_address,
        "TRADEBOT_JOURNAL_DSN": journal_dsn,
        "TRADEBOT_REDIS_URL": redis_url,
        "TRADEBOT_LEASE_DURATION_SECONDS": (
            str(lease_duration_seconds) if lease_duration_seconds is not None else None
        ),
    }
    return (
        {k: v for k, v in env.items() if v is not None}
        | {"TRADEBOT_TENANCY": json.dumps(LOCAL_TENANCY)}
        | dict(extra or {})
    )


@contextmanager
def running(kube: Kube, log: Path, settings: Mapping[str, str]) -> Iterator[Operator]:
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    env = {
        **os.environ,
        **settings,
        "KUBECONFIG": kube.kubeconfig,
        "TRADEBOT_LIVENESS_ENDPOINT": liveness,
        "TRADEBOT_LOG_FORMAT": "json",
    }
    proc = spawn([sys.executable, "-m", "tradebot_operator"], log=log, env=env)
    try:
        wait_until(lambda: http_ok(liveness), 60, "operator liveness endpoint", log, proc)
        yield Operator(log=log, liveness=liveness)
    finally:
        stop(proc, timeout=15)
