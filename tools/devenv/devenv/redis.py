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
    password: str | None = None


@contextmanager
def running(workdir: Path, port: int | None = None, password: str | None = None) -> Iterator[Redis]:
    """redis-server in ``workdir``; with ``password`` the default user needs it (then only
    ACL users, e.g. the per-bot ones Vault creates, reach anything else)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise DevenvError(
            "redis-server is not installed (apt package redis-server); run `make setup`"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    port = pick_port(port, "Redis", "--redis-port")
    log = workdir / "redis.log"
    conf = workdir / "redis.conf"  # the password in a file, not in the process's argv
    conf.write_text("" if password is None else f"requirepass {password}\n")
    conf.chmod(0o600)
    proc = spawn(
        [binary, str(conf), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir), "--logfile", str(log)],
        log=workdir / "redis.out",
    )  # fmt: skip
    try:
        wait_until(lambda: port_open(port), 15, "redis-server", log, proc)
        login = "" if password is None else f"default:{password}@"
        yield Redis(url=f"redis://{login}127.0.0.1:{port}/0", port=port, password=password)
    finally:
        stop(proc)
