"""One container: start, probe, restart with back-off, stop. Its state is a ContainerStatus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podrunner import probes, timefmt
from podrunner.process import Exit, LocalProcess

log = logging.getLogger("podrunner.container")

# A container that ran this long without crashing starts its back-off afresh (kubelet: 10 min).
BACKOFF_RESET_SECONDS = 600


@dataclass
class Launch:
    """Everything needed to start the container's process."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log_for: Callable[[int], Path]  # restart count -> log file
    ports: dict[int, int]
    argv0: dict[str, str]


@dataclass
class ContainerState:
    waiting: tuple[str, str] | None = ("ContainerCreating", "")
    running_since: str | None = None
    terminated: dict[str, Any] | None = None
    last_terminated: dict[str, Any] | None = None
    restart_count: int = 0
    ready: bool = False
    container_id: str = ""
    history: list[float] = field(default_factory=list)  # start times (monotonic)


def terminated_state(exit: Exit, started: str, container_id: str) -> dict[str, Any]:
    state: dict[str, Any] = {
        "exitCode": exit.code,
        "reason": "Completed" if exit.code == 0 else "Error",
        "startedAt": started,
        "finishedAt": timefmt.rfc3339(),
        "containerID": container_id,
    }
    if exit.signal is not None:
        state["signal"] = exit.signal
    return state


class ContainerRunner:
    def __init__(
        self,
        spec: dict[str, Any],
        *,
        pod_name: str,
        restart_policy: str,
        backoff: tuple[float, float],
        grace: Callable[[], float],
        on_change: Callable[[], None],
    ) -> None:
        self.spec = spec
        self.name: str = spec["name"]
        self.pod_name = pod_name
        self.restart_policy = restart_policy
        self.backoff_initial, self.backoff_max = backoff
        self.grace = grace
        self.on_change = on_change
        self.state = ContainerState()
        self._proc: LocalProcess | None = None
        self._stopping = asyncio.Event()
        self._liveness_failed = False

    # -- status -----------------------------------------------------------------------
    def set_waiting(self, reason: str, message: str = "") -> None:
        if self.state.waiting != (reason, message):
            self.state.waiting = (reason, message)
            self.on_change()

    def status(self) -> dict[str, Any]:
        s = self.state
        state: dict[str, Any]
        if s.running_since is not None:
            state = {"running": {"startedAt": s.running_since}}
        elif s.terminated is not None:
            state = {"terminated": s.terminated}
        else:
            reason, message = s.waiting or ("ContainerCreating", "")
            state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        out: dict[str, Any] = {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": "",
            "ready": s.ready,
            "started": s.running_since is not None,
            "restartCount": s.restart_count,
            "state": state,
            "lastState": {"terminated": s.last_terminated} if s.last_terminated else {},
        }
        if s.container_id:
            out["containerID"] = s.container_id
        return out

    @property
    def finished(self) -> bool:
        """Terminated for good (will not be restarted)."""
        return self.state.terminated is not None

    # -- lifecycle --------------------------------------------------------------------
    async def run(self, launch: Launch) -> None:
        backoff = self.backoff_initial
        while not self._stopping.is_set():
            exit, ran_for = await self._run_once(launch)
            if self._stopping.is_set():
                return
            if not self._should_restart(exit):
                log.info("%s/%s exited with %d: not restarting (restartPolicy %s)",
                         self.pod_name, self.name, exit.code, self.restart_policy)  # fmt: skip
                return
            if ran_for >= BACKOFF_RESET_SECONDS:
                backoff = self.backoff_initial
            delay, backoff = backoff, min(backoff * 2, self.backoff_max)
            s = self.state
            s.last_terminated, s.terminated = s.terminated, None
            log.info("%s/%s exited with %d: restarting in %.0fs",
                     self.pod_name, self.name, exit.code, delay)  # fmt: skip
            self.set_waiting(
                "CrashLoopBackOff",
                f"back-off {delay:.0f}s restarting failed container={self.name} "
                f"pod={self.pod_name}",
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if not self._stopping.is_set():
                s.restart_count += 1

    def _should_restart(self, exit: Exit) -> bool:
        if self._liveness_failed:
            return self.restart_policy != "Never"
        return self.restart_policy == "Always" or (
            self.restart_policy == "OnFailure" and exit.code != 0
        )

    async def _run_once(self, launch: Launch) -> tuple[Exit, float]:
        s = self.state
        log_path = launch.log_for(s.restart_count)
        try:
            proc = await LocalProcess.start(launch.argv, launch.env, launch.cwd, log_path)
        except OSError as exc:
            log.error("%s/%s cannot start %s: %s", self.pod_name, self.name, launch.argv, exc)
            exit = Exit(code=128, signal=None)
            s.waiting, s.running_since = None, None
            s.terminated = {**terminated_state(exit, timefmt.rfc3339(), ""),
                            "reason": "StartError", "message": str(exc)}  # fmt: skip
            self.on_change()
            return exit, 0.0
        started_mono = time.monotonic()
        self._proc, self._liveness_failed = proc, False
        s.container_id = f"podrunner://{proc.pid}"
        s.waiting, s.terminated, s.running_since = None, None, timefmt.rfc3339()
        s.ready = "readinessProbe" not in self.spec
        log.info("%s/%s started: pid %d, log %s", self.pod_name, self.name, proc.pid, log_path)
        self.on_change()
        if self._stopping.is_set():  # stop() ran while the process was being spawned
            await proc.terminate(self.grace())
        probe_tasks = [
            asyncio.create_task(self._probe_loop(kind, launch))
            for kind in ("readinessProbe", "livenessProbe")
            if kind in self.spec
        ]
        try:
            exit = await proc.wait()
        finally:
            for task in probe_tasks:
                task.cancel()
            await asyncio.gather(*probe_tasks, return_exceptions=True)
        s.terminated = terminated_state(exit, s.running_since, s.container_id)
        s.running_since, s.ready, self._proc = None, False, None
        self.on_change()
        return exit, time.monotonic() - started_mono

    async def _probe_loop(self, kind: str, launch: Launch) -> None:
        probe = self.spec[kind]
        period = float(probe.get("periodSeconds", 10))
        success_needed = int(probe.get("successThreshold", 1))
        failure_limit = int(probe.get("failureThreshold", 3))
        successes = failures = 0
        await asyncio.sleep(float(probe.get("initialDelaySeconds", 0)))
        while True:
            ok = await probes.check(probe, self.spec, launch.ports, launch.env, launch.argv0)
            successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
            if kind == "readinessProbe":
                if ok and successes >= success_needed and not self.state.ready:
                    self.state.ready = True
                    log.info("%s/%s is ready", self.pod_name, self.name)
                    self.on_change()
                elif not ok and failures >= failure_limit and self.state.ready:
                    self.state.ready = False
                    log.info(
                        "%s/%s is not ready (readiness probe failed)", self.pod_name, self.name
                    )
                    self.on_change()
            elif not ok and failures >= failure_limit and self._proc is not None:
                log.warning("%s/%s failed its liveness probe: restarting", self.pod_name, self.name)
                self._liveness_failed = True
                await self._proc.terminate(self.grace())
                return
            await asyncio.sleep(period)

    async def stop(self, grace: float) -> None:
        self._stopping.set()
        proc = self._proc
        if proc is not None:
            log.info("%s/%s: SIGTERM to pid %d (grace %.0fs)",
                     self.pod_name, self.name, proc.pid, grace)  # fmt: skip
            await proc.terminate(grace)
