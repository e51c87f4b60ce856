"""PostgreSQL (Debian package) in its own data directory on a loopback port: the journal."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devenv.procs import DevenvError, pick_port


@dataclass(frozen=True)
class Postgres:
    dsn: str
    """The superuser's DSN (with its password when there is one: a test/dev harness value,
    never handed to the operator)."""
    port: int
    password: str | None = None


def bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        raise DevenvError("PostgreSQL is not installed (apt package postgresql); run `make setup`")
    return Path(candidates[-1]).parent


def _as_postgres_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the `postgres` system user when root."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@contextmanager
def running(
    workdir: Path, port: int | None = None, password: str | None = None
) -> Iterator[Postgres]:
    """initdb + pg_ctl start in ``workdir`` (removed afterwards); database ``tradebot``,
    superuser ``tradebot``, on 127.0.0.1 only. Without ``password`` every login is trusted
    (a development box); with it every login needs its password (SCRAM), as in an
    installation: bots then reach the journal only with the logins Vault issues them."""
    bins = bindir()
    workdir.mkdir(parents=True, exist_ok=True)
    data, log = workdir / "data", workdir / "postgres.log"
    shutil.rmtree(data, ignore_errors=True)
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        os.chown(workdir, pg.pw_uid, pg.pw_gid)
    port = pick_port(port, "PostgreSQL", "--postgres-port")
    auth = ["--auth=trust"]
    if password is not None:
        pwfile = workdir / "pwfile"
        pwfile.touch(mode=0o600)
        pwfile.write_text(password + "\n")
        if os.geteuid() == 0:
            os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
        auth = ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
    init = subprocess.run(
        _as_postgres_user(
            [str(bins / "initdb"), "-D", str(data), "-U", "tradebot", *auth, "-E", "UTF8"]
        ),
        capture_output=True,
        text=True,
    )
    if init.returncode != 0:
        raise DevenvError(f"initdb failed: {init.stderr}")
    opts = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=on"
    opts += " -c max_connections=200"
    start = subprocess.run(
        _as_postgres_user(
            [str(bins / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "start"]
        ),
        capture_output=True,
        text=True,
    )
    if start.returncode != 0:
        tail = log.read_text(errors="replace") if log.exists() else ""
        raise DevenvError(f"PostgreSQL did not start: {start.stderr}\n{tail}")
    try:
        subprocess.run(
            _as_postgres_user([str(bins / "createdb"), "-h", str(workdir), "-p", str(port),
                               "-U", "tradebot", "tradebot"]),
            check=True, capture_output=True,
            env={**os.environ, **({"PGPASSWORD": password} if password else {})},
        )  # fmt: skip
        login = "tradebot" if password is None else f"tradebot:{password}"
        dsn = f"postgresql://{login}@127.0.0.1:{port}/tradebot"
        yield Postgres(dsn=dsn, port=port, password=password)
    finally:
        subprocess.run(
            _as_postgres_user([str(bins / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)
