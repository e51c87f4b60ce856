"""One container instance as a local process in its own process group.

Its own session/process group means stop() reaches every child the program forks, and no
process outlives its container.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Exit:
    code: int  # as kubelet reports it: 128 + signal number when killed by a signal
    signal: int | None


class LocalProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.pid = proc.pid

    @classmethod
    async def start(
        cls, argv: list[str], env: dict[str, str], cwd: Path, log: Path
    ) -> LocalProcess:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                cwd=cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(proc)

    async def wait(self) -> Exit:
        rc = await self.proc.wait()
        self._kill_group(signal.SIGKILL)  # children the program left behind
        if rc < 0:
            return Exit(code=128 - rc, signal=-rc)
        return Exit(code=rc, signal=None)

    def _kill_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def terminate(self, grace: float) -> None:
        """SIGTERM to the group, SIGKILL after the grace period (kubelet's stop)."""
        if self.proc.returncode is not None:
            return
        self._kill_group(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self.proc.wait()), timeout=max(grace, 0))
        except TimeoutError:
            self._kill_group(signal.SIGKILL)
            await self.proc.wait()
