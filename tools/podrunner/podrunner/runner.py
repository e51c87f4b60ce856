"""Watch the pods bound to the runner's node and keep one PodWorker per pod.

Only pods with spec.nodeName == our node are listed and watched (a field selector on the
server), so pods on kwok's nodes are never seen, let alone touched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from podrunner.kube import ClusterInfo, Kube, is_status
from podrunner.pod import PodWorker
from podrunner.settings import Settings

log = logging.getLogger("podrunner.runner")


class PodRunner:
    def __init__(self, kube: Kube, settings: Settings, info: ClusterInfo) -> None:
        self.kube = kube
        self.settings = settings
        self.info = info
        self.workers: dict[str, PodWorker] = {}  # by pod uid

    @property
    def _selector(self) -> dict[str, str]:
        return {"fieldSelector": f"spec.nodeName={self.settings.node}"}

    def _on_pod(self, pod: dict[str, Any]) -> None:
        if pod["spec"].get("nodeName") != self.settings.node:
            return  # defensive: never act on another node's pod
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if worker is None:
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp"):
                return  # finished before we (re)started: nothing to run
            log.info("pod %s/%s assigned to this node", pod["metadata"]["namespace"],
                     pod["metadata"]["name"])  # fmt: skip
            worker = PodWorker(self.kube, self.settings, self.info, pod)
            self.workers[uid] = worker
            worker.task.add_done_callback(self._forget(uid))
        worker.update(pod)

    def _forget(self, uid: str) -> Callable[[asyncio.Task[None]], None]:
        def done(_task: asyncio.Task[None]) -> None:
            self.workers.pop(uid, None)

        return done

    def _on_gone(self, pod: dict[str, Any]) -> None:
        worker = self.workers.get(pod["metadata"]["uid"])
        if worker is not None:
            worker.gone()

    async def run(self) -> None:
        """List, then watch from the list's resourceVersion; relist when the watch expires."""
        while True:
            try:
                listing = await self.kube.get("/api/v1/pods", **self._selector)
                present = set()
                for pod in listing.get("items") or []:
                    present.add(pod["metadata"]["uid"])
                    self._on_pod(pod)
                for uid, worker in list(self.workers.items()):
                    if uid not in present:
                        worker.gone()
                version = listing["metadata"]["resourceVersion"]
                query = {**self._selector, "resourceVersion": version,
                         "allowWatchBookmarks": "true", "timeoutSeconds": "300"}  # fmt: skip
                async for event in self.kube.watch("/api/v1/pods", query):
                    kind, obj = event["type"], event["object"]
                    if kind in ("ADDED", "MODIFIED"):
                        self._on_pod(obj)
                    elif kind == "DELETED":
                        self._on_gone(obj)
                    elif kind == "ERROR":
                        log.info("watch ended (%s): relisting", obj.get("message"))
                        break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_status(exc, 410):
                    log.warning("pod watch failed (relisting in 1s): %s", exc)
                await asyncio.sleep(1)

    async def shutdown(self) -> None:
        workers = list(self.workers.values())
        if workers:
            log.info("stopping %d pod(s)", len(workers))
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
