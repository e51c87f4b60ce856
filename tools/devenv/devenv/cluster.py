"""The local control plane (hack/cluster.sh: kwokctl with real kube-apiserver,
controller-manager, scheduler and etcd) under a cluster name and state directory."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from devenv.kube import Kube
from devenv.procs import HACK, REPO_ROOT, DevenvError, hack_bin

CRD_DIR = REPO_ROOT / "crds"


def _env(name: str, state: Path) -> dict[str, str]:
    return {**os.environ, "TRADEBOT_CLUSTER_NAME": name, "TRADEBOT_STATE": str(state.resolve())}


def up(name: str, state: Path, log: Path) -> Kube:
    """Start (or reuse) the cluster; builds missing binaries first (slow the first time)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.run(
            ["bash", str(HACK / "cluster.sh"), "up"], env=_env(name, state),
            stdout=subprocess.PIPE, stderr=out, text=True,
        )  # fmt: skip
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise DevenvError(f"could not start the cluster {name!r} (log: {log}):\n{tail}")
    kubeconfig = proc.stdout.strip().splitlines()[-1]
    return Kube(kubeconfig=kubeconfig, kubectl_bin=str(hack_bin("kubectl")))


def down(name: str, state: Path, log: Path) -> None:
    with log.open("ab") as out:
        subprocess.run(
            ["bash", str(HACK / "cluster.sh"), "down"], env=_env(name, state),
            stdout=out, stderr=out, check=False,
        )  # fmt: skip


@contextmanager
def running(name: str, state: Path, keep: bool = False) -> Iterator[Kube]:
    log = state / "cluster.log"
    kube = up(name, state, log)
    try:
        yield kube
    finally:
        if not keep:
            down(name, state, log)


def install_crds(kube: Kube) -> list[str]:
    """Apply crds/*.yaml server-side and wait until they are Established."""
    files = sorted(CRD_DIR.glob("*.yaml"))
    if not files:
        raise DevenvError(f"no CRDs in {CRD_DIR}; run `make crds`")
    kube.kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager=tradebot-devenv",
        *[f"--filename={f}" for f in files],
    )  # fmt: skip
    names = [
        f"customresourcedefinition/{yaml.safe_load(f.read_text())['metadata']['name']}"
        for f in files
    ]
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
    return names
