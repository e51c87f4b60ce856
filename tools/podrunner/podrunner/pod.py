"""One pod on the runner's node: prepare its files, run its containers, report, tear down."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shutil
from pathlib import Path
from typing import Any

from podrunner import envvars, kubeconfig, ports, timefmt
from podrunner.container import ContainerRunner, Launch
from podrunner.envvars import EnvError
from podrunner.kube import MERGE_PATCH, ClusterInfo, Kube, is_status
from podrunner.paths import PodPaths, link_mounts
from podrunner.settings import Settings
from podrunner.status import ConditionClock, pod_status
from podrunner.volumes import PodVolumes, VolumeError

log = logging.getLogger("podrunner.pod")

DEFAULT_GRACE = 30


class LaunchError(Exception):
    """The container cannot be started as declared (no command): CreateContainerError."""


def _argv(container: dict[str, Any], env: dict[str, str], argv0: dict[str, str]) -> list[str]:
    argv = [*(container.get("command") or []), *(container.get("args") or [])]
    if not container.get("command"):
        raise LaunchError("podrunner ignores images: the container needs an explicit command")
    argv = [envvars.expand(a, env) for a in argv]
    argv[0] = argv0.get(argv[0]) or shutil.which(argv[0]) or argv[0]
    return argv


class PodWorker:
    def __init__(self, kube: Kube, settings: Settings, info: ClusterInfo, pod: dict[str, Any]):
        self.kube = kube
        self.settings = settings
        self.info = info
        self.pod = pod
        meta = pod["metadata"]
        self.namespace, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.paths = PodPaths.for_pod(settings.pods_dir, settings.logs_dir, pod)
        self.volumes = PodVolumes(kube, pod, self.paths)
        policy = pod["spec"].get("restartPolicy", "Always")
        self.runners = [
            ContainerRunner(
                spec,
                pod_name=self.name,
                restart_policy=policy,
                backoff=(settings.backoff_initial, settings.backoff_max),
                grace=self._grace,
                on_change=self.mark,
            )
            for spec in pod["spec"]["containers"]
        ]
        if pod["spec"].get("initContainers"):
            log.warning("pod %s: initContainers are not supported and will not run", self.ref)
        self.clock = ConditionClock()
        self.start_time = (pod.get("status") or {}).get("startTime") or timefmt.rfc3339()
        self.prepared = False
        self.message = ""
        self.port_map: dict[int, int] = {}
        self._dirty = asyncio.Event()
        self._deleting = asyncio.Event()
        self._shutdown = False  # runner exit: stop processes, keep the pod object
        self._gone = False  # the pod object no longer exists
        self.task = asyncio.create_task(self._run(), name=f"pod {self.namespace}/{self.name}")

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def _grace(self) -> float:
        meta, spec = self.pod["metadata"], self.pod["spec"]
        value = meta.get("deletionGracePeriodSeconds")
        if value is None:
            value = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE)
        return float(value)

    def mark(self) -> None:
        self._dirty.set()

    # -- events from the watch ----------------------------------------------------------
    def update(self, pod: dict[str, Any]) -> None:
        self.pod = pod
        self.volumes.pod = pod  # downwardAPI files follow label/annotation edits
        if pod["metadata"].get("deletionTimestamp"):
            self._deleting.set()

    def gone(self) -> None:
        self._gone = True
        self._deleting.set()

    async def shutdown(self) -> None:
        """The runner is exiting: stop the processes gracefully, leave the pod object."""
        self._shutdown = True
        self._deleting.set()
        await self.task

    # -- lifecycle ------------------------------------------------------------------------
    async def _run(self) -> None:
        writer = asyncio.create_task(self._status_writer())
        runs: list[asyncio.Task[None]] = []
        try:
            log.info("pod %s: preparing (dir %s)", self.ref, self.paths.root)
            self.mark()
            launches = await self._prepare()
            if launches is not None:
                runs = [
                    asyncio.create_task(runner.run(launch))
                    for runner, launch in zip(self.runners, launches, strict=True)
                ]
                await self._sync_until_deleted()
        except Exception:
            log.exception("pod %s: unexpected error", self.ref)
            await self._deleting.wait()
        finally:
            await self._stop(runs)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            await self._finish()

    async def _prepare(self) -> list[Launch] | None:
        """Materialise volumes and build every container's launch; retry until it works."""
        while not self._deleting.is_set():
            try:
                launches = await self._build()
            except (VolumeError, EnvError, LaunchError) as exc:
                reason = (
                    "CreateContainerError" if isinstance(exc, LaunchError)
                    else "CreateContainerConfigError" if isinstance(exc, EnvError)
                    else "ContainerCreating"
                )  # fmt: skip
                log.warning("pod %s: waiting: %s", self.ref, exc)
                for runner in self.runners:
                    runner.set_waiting(reason, str(exc))
            else:
                self.prepared = True
                self.mark()
                return launches
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._deleting.wait(), self.settings.sync_period)
        return None

    async def _build(self) -> list[Launch]:
        await self.volumes.sync()
        if not self.port_map:
            self.port_map = ports.allocate(self.pod)
        argv0 = {"python": self.settings.python, "python3": self.settings.python}
        launches = []
        for runner in self.runners:
            container = runner.spec
            remapper = link_mounts(self.paths, container)
            token = kubeconfig.token_file(container, remapper)
            config = (
                kubeconfig.write(self.paths, self.info, self.namespace, token) if token else None
            )
            declared = await envvars.pod_env(self.kube, self.pod, container)
            env = envvars.process_env(
                pod=self.pod, container=container, declared=declared, remapper=remapper,
                ports=self.port_map, kubeconfig=config, python=self.settings.python,
            )  # fmt: skip
            argv = [remapper.remap_arg(a) for a in _argv(container, declared, argv0)]
            workdir = container.get("workingDir")
            cwd = Path(remapper.remap(workdir)) if workdir else remapper.rootfs
            if not cwd.is_dir():
                cwd = remapper.rootfs
            name = container["name"]
            launches.append(
                Launch(
                    argv=argv, env=env, cwd=cwd, ports=self.port_map, argv0=argv0,
                    log_for=functools.partial(self.paths.log, name),
                )
            )  # fmt: skip
        mapped = ", ".join(f"{c}->{p}" for c, p in self.port_map.items()) or "none"
        log.info("pod %s: volumes ready, ports %s, logs in %s", self.ref, mapped, self.paths.logs)
        return launches

    async def _sync_until_deleted(self) -> None:
        while not self._deleting.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._deleting.wait(), self.settings.sync_period)
            if self._deleting.is_set():
                return
            try:
                await self.volumes.sync()
            except Exception as exc:
                log.warning("pod %s: volume sync failed (will retry): %s", self.ref, exc)

    async def _stop(self, runs: list[asyncio.Task[None]]) -> None:
        grace = self._grace()
        if self._shutdown:
            grace = min(grace, DEFAULT_GRACE)
        if runs:
            log.info("pod %s: stopping (grace %.0fs)", self.ref, grace)
        await asyncio.gather(*(runner.stop(grace) for runner in self.runners))
        await asyncio.gather(*runs, return_exceptions=True)
        for runner in self.runners:
            if runner.state.terminated is None and runner.state.last_terminated is not None:
                runner.state.terminated = runner.state.last_terminated
            runner.state.ready = False

    async def _finish(self) -> None:
        ports.release(self.port_map)
        if self._gone:
            self.paths.remove()
            return
        await self._write_status()
        if self._shutdown:
            # Tokens must not outlive the runner; a restarted runner rebuilds the directory.
            self.paths.remove()
            return
        # As kubelet does once the containers are gone: remove the object for good, so the
        # ReplicaSet's replacement counts.
        try:
            await self.kube.request(
                "DELETE",
                f"/api/v1/namespaces/{self.namespace}/pods/{self.name}",
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}},
            )
            log.info("pod %s: stopped and deleted", self.ref)
        except Exception as exc:
            if not is_status(exc, 404, 409):
                log.warning("pod %s: delete failed: %s", self.ref, exc)
        self.paths.remove()

    # -- status -----------------------------------------------------------------------------
    async def _status_writer(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(0.05)  # coalesce bursts (several containers, probe + start)
            self._dirty.clear()
            try:
                await self._write_status()
            except Exception as exc:
                log.warning("pod %s: status update failed (will retry): %s", self.ref, exc)
                await asyncio.sleep(1)
                self._dirty.set()

    async def _write_status(self) -> None:
        if self._gone:
            return
        status = pod_status(
            prepared=self.prepared,
            containers=[runner.status() for runner in self.runners],
            clock=self.clock,
            start_time=self.start_time,
        )
        try:
            await self.kube.request(
                "PATCH",
                f"/api/v1/namespaces/{self.namespace}/pods/{self.name}/status",
                body={"metadata": {"uid": self.uid}, "status": status},
                content_type=MERGE_PATCH,
            )
        except Exception as exc:
            if is_status(exc, 404):
                return
            raise
