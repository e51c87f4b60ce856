"""python -m podrunner --kubeconfig PATH --node NAME --workdir DIR

Registers NAME as a Node and runs the pods scheduled there as local processes until
SIGINT/SIGTERM; then stops every process gracefully and deletes (or parks) the node.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from podrunner import NODE_LABEL, NODE_TAINT_KEY
from podrunner.holder import NodeHeld
from podrunner.kube import Kube, cluster_info
from podrunner.node import NodeAgent
from podrunner.runner import PodRunner
from podrunner.settings import Settings

log = logging.getLogger("podrunner")

EXIT_NODE_HELD = 3
"""Another live runner holds the node (its Lease in kube-node-lease): nothing was started."""
EXIT_NODE_LOST = 4
"""Another runner took the node over while we ran: our pods were stopped."""


def parse_args(argv: list[str] | None = None) -> Settings:
    p = argparse.ArgumentParser(prog="podrunner", description=__doc__.splitlines()[0])
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--node", required=True, help="name of the node this runner registers")
    p.add_argument("--workdir", type=Path, required=True, help="pod dirs and container logs")
    p.add_argument("--python", default=sys.executable, help="interpreter for `python` commands")
    p.add_argument("--backoff-initial", type=float, default=10.0)
    p.add_argument("--backoff-max", type=float, default=300.0)
    p.add_argument("--sync-period", type=float, default=2.0, help="ConfigMap/Secret resync (s)")
    p.add_argument("--on-exit", choices=["delete", "notready"], default="delete")
    p.add_argument("--heartbeat-period", type=float, default=10.0, help="node Lease renewal (s)")
    p.add_argument("--lease-duration", type=int, default=40, help="node Lease duration (s)")
    a = p.parse_args(argv)
    if a.heartbeat_period >= a.lease_duration:
        p.error("--heartbeat-period must be shorter than --lease-duration")
    return Settings(
        kubeconfig=a.kubeconfig.resolve(), node=a.node, workdir=a.workdir.resolve(),
        python=a.python, backoff_initial=a.backoff_initial, backoff_max=a.backoff_max,
        sync_period=a.sync_period, on_exit=a.on_exit, heartbeat_period=a.heartbeat_period,
        lease_duration=a.lease_duration,
    )  # fmt: skip


async def main(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    kube = await Kube.from_kubeconfig(settings.kubeconfig)
    node = NodeAgent(kube, settings)
    runner = PodRunner(kube, settings, cluster_info(settings.kubeconfig))
    try:
        try:
            await node.register()  # NodeHeld before anything of ours exists on disk
        except NodeHeld as exc:
            log.error("%s", exc)
            return EXIT_NODE_HELD
        settings.pods_dir.mkdir(parents=True, exist_ok=True)
        settings.logs_dir.mkdir(parents=True, exist_ok=True)
        log.info(
            "node %s is Ready; pods need nodeSelector %s=true (or kubernetes.io/hostname=%s) "
            "and a toleration for %s:NoSchedule; workdir %s",
            settings.node, NODE_LABEL, settings.node, NODE_TAINT_KEY, settings.workdir,
        )  # fmt: skip
        tasks = [asyncio.create_task(node.heartbeat()), asyncio.create_task(runner.run())]
        lost = asyncio.create_task(node.lost.wait())
        await asyncio.wait(
            [asyncio.create_task(stop.wait()), lost], return_when=asyncio.FIRST_COMPLETED
        )
        log.info("stopping: terminating pods, then leaving the cluster")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.shutdown()
        await node.shutdown()
        return EXIT_NODE_LOST if node.lost.is_set() else 0
    finally:
        await kube.close()
        log.info("pod runner stopped")


def run() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )  # fmt: skip
    code = 0
    with contextlib.suppress(KeyboardInterrupt):
        code = asyncio.run(main(parse_args()))
    sys.exit(code)


if __name__ == "__main__":
    run()
