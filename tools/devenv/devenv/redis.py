"""redis-server (Debian package) on a loopback port, no persistence: the rate budgets."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devenv.procs import DevenvError, pick_port, port_open, spawn, stop, wait_until


@dataclass(frozen=True)
class Redis:
    url: str
    port: int


@contextmanager
def running(workdir: Path, port: int | None = None) -> Iterator[Redis]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise DevenvError(
            "redis-server is not installed (apt package redis-server); run `make setup`"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    port = pick_port(port, "Redis", "--redis-port")
    log = workdir / "redis.log"
    proc = spawn(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--logfile", str(log)],
        log=workdir / "redis.out",
    )  # fmt: skip
    try:
        wait_until(lambda: port_open(port), 15, "redis-server", log, proc)
        yield Redis(url=f"redis://127.0.0.1:{port}/0", port=port)
    finally:
        stop(proc)
