"""The whole system in one context manager: cluster, CRDs, PostgreSQL, Redis, OpenBao
(kubernetes auth configured), exchange simulator, pod runner and operator.

``make demo`` and the end-to-end tests both start it; leaving the ``with`` stops every
service in reverse order and checks that no process is left behind.
"""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from devenv import (
    cluster,
    openbao,
    operator,
    podrunner,
    postgres,
    redis,
    simulator,
    vault_database,
)
from devenv.kube import Kube
from devenv.procs import REPO_ROOT
from devenv.progress import Progress, Quiet
from tradebot_contracts.names import OPERATOR_POLICY_NAME

SYSTEM_NAMESPACE = "tradebot-system"
STEPS = 7


@dataclass(frozen=True)
class StackConfig:
    name: str = "tradebot-demo"
    state: Path = REPO_ROOT / ".state" / "tradebot-demo"
    keep_cluster: bool = False
    seed: int = 42
    tick_interval: float = 0.5
    step_seconds: float | None = None
    """Market seconds per price step (None: real time, which the runtime needs: it closes
    bars on the wall clock)."""
    lease_duration_seconds: int | None = None
    simulator_port: int | None = None
    postgres_port: int | None = None
    redis_port: int | None = None
    openbao_port: int | None = None
    accounts: tuple[str, ...] = ("paper", "sandbox")
    balances: dict[str, str] = field(
        default_factory=lambda: {"USDT": "100000", "BTC": "2", "ETH": "30"}
    )


@dataclass(frozen=True)
class Stack:
    config: StackConfig
    kube: Kube
    postgres: postgres.Postgres
    redis: redis.Redis
    vault: openbao.VaultServer
    simulator: simulator.Simulator
    runner: podrunner.PodRunner
    operator: operator.Operator

    @property
    def state(self) -> Path:
        return self.config.state


def leftover_processes(state: Path, exclude: Path | None = None) -> list[int]:
    """Processes whose command line or working directory lies under ``state`` (except
    those under ``exclude``, e.g. a cluster that is kept)."""
    root, found = str(state.resolve()), []
    skip = str(exclude.resolve()) if exclude is not None else None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if skip is not None and (skip in cmdline or cwd.startswith(skip)):
            continue
        if root in cmdline or cwd.startswith(root):
            found.append(int(entry.name))
    return found


def kill_leftovers(state: Path, exclude: Path | None = None) -> list[int]:
    pids = leftover_processes(state, exclude)
    for pid in pids:
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return pids


@contextmanager
def running(config: StackConfig, progress: Progress | None = None) -> Iterator[Stack]:
    p = progress or Quiet(STEPS)
    state = config.state.resolve()
    state.mkdir(parents=True, exist_ok=True)
    with ExitStack() as es:
        es.callback(_sweep, state, p, state / "kwok" if config.keep_cluster else None)
        with p.step(f"Kubernetes control plane (cluster {config.name!r}, state {state})"):
            kube = es.enter_context(cluster.running(config.name, state, keep=config.keep_cluster))
            cluster.install_crds(kube)
            p.detail(f"kubeconfig: {kube.kubeconfig}; CRDs installed from crds/")
        # Both need their admin's password over TCP: the bots use their own logins (Vault).
        with p.step("PostgreSQL (order journal; every bot has its own login)"):
            pg = es.enter_context(postgres.running(
                state / "postgres", config.postgres_port, password=secrets.token_hex(16)
            ))  # fmt: skip
            journal_address = f"postgresql://127.0.0.1:{pg.port}/tradebot"
            p.detail(f"{journal_address} (owner tradebot, password in {state / 'postgres'})")
        with p.step("Redis (shared rate-limit budgets; every bot has its own ACL user)"):
            rd = es.enter_context(
                redis.running(state / "redis", config.redis_port, password=secrets.token_hex(16))
            )
            redis_address = f"redis://127.0.0.1:{rd.port}/0"
            p.detail(redis_address)
        with p.step("OpenBao dev server (Vault API): kubernetes auth, database secrets engine"):
            vault = es.enter_context(openbao.running(state / "openbao", config.openbao_port))
            openbao.configure_kubernetes_auth(vault, kube, SYSTEM_NAMESPACE)
            engine = vault_database.configure(vault, pg.dsn, rd.url)
            operator_token = openbao.operator_token(
                vault, state / "openbao" / "operator-token", database_mount=engine.mount
            )
            p.detail(f"{vault.addr} (root token {vault.root_token}); auth/kubernetes enabled")
            p.detail(f"{engine.mount}/: per-bot journal and Redis logins")
            p.detail(f"operator token (policy {OPERATOR_POLICY_NAME} only): {operator_token}")
        with p.step("Exchange simulator (fake Binance spot, prices moving)"):
            accounts = [
                simulator.Account(name, secrets.token_hex(32), secrets.token_hex(32),
                                  dict(config.balances))
                for name in config.accounts
            ]  # fmt: skip
            sim = es.enter_context(
                simulator.running(
                    state / "simulator", accounts, port=config.simulator_port, seed=config.seed,
                    tick_interval=config.tick_interval, step_seconds=config.step_seconds,
                )
            )  # fmt: skip
            p.detail(f"{sim.url}; accounts: {', '.join(a.name for a in accounts)}")
        with p.step("Pod runner (runs the pods on node 'pod-runner' as local processes)"):
            runner = es.enter_context(podrunner.running(kube, state / "podrunner"))
            p.detail(f"pod logs: {runner.logs_dir}")
        with p.step("Operator (python -m tradebot_operator)"):
            settings = operator.settings_env(
                vault_address=vault.addr, journal_dsn=journal_address, redis_url=redis_address,
                lease_duration_seconds=config.lease_duration_seconds,
                extra={"TRADEBOT_VAULT_TOKEN_FILE": str(operator_token), **engine.operator_env()},
            )  # fmt: skip
            op = es.enter_context(operator.running(kube, state / "operator.log", settings))
            p.detail(f"log: {op.log}; manages Vault policies/roles with {operator_token}")
        yield Stack(config, kube, pg, rd, vault, sim, runner, op)


def _sweep(state: Path, p: Progress, exclude: Path | None) -> None:
    killed = kill_leftovers(state, exclude)
    if killed:
        p.say(f"killed {len(killed)} leftover process(es): {killed}")
