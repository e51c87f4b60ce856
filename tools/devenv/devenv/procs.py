"""Child processes, ports and binaries shared by every service module."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
"""The checkout (tools/devenv/devenv/procs.py -> four levels up): devenv runs from a clone."""
HACK = REPO_ROOT / "hack"


class DevenvError(RuntimeError):
    """A service could not start; the message says why and how to fix it."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def pick_port(port: int | None, what: str, option: str) -> int:
    """``port`` when it is free (0/None: any free port); a clear error otherwise."""
    if not port:
        return free_port()
    if port_open(port):
        raise DevenvError(
            f"port {port} for {what} is already in use (see `ss -ltnp 'sport = :{port}'`); "
            f"stop whatever listens there or choose another port with {option}"
        )
    return port


def log_tail(log: Path | None, lines: int = 30) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- {log} (last {len(text)} lines) ---\n" + "\n".join(text)


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    log: Path | None = None,
    proc: subprocess.Popen[bytes] | None = None,
    interval: float = 0.2,
) -> None:
    """Poll ``check`` until true; DevenvError with the log tail on timeout or early exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DevenvError(f"{what}: the process exited with {proc.returncode}{log_tail(log)}")
        try:
            if check():
                return
        except Exception:  # still starting
            pass
        time.sleep(interval)
    raise DevenvError(f"{what} did not become ready within {timeout:.0f}s{log_tail(log)}")


def hack_bin(name: str) -> Path:
    """Path of a cached control-plane binary, as hack/lib.sh resolves it."""
    out = subprocess.run(
        ["bash", "-c", f'source "{HACK}/lib.sh" && bin_path {name}'],
        check=True,
        capture_output=True,
        text=True,
    )
    path = Path(out.stdout.strip())
    if not os.access(path, os.X_OK):
        raise DevenvError(f"{name} is not built ({path}); run `make setup`")
    return path


def spawn(
    cmd: list[str],
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own process group (Ctrl-C in the terminal reaches only the
    orchestrator, which then stops the services in order), output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM the process (its whole group when it leads one, as ``spawn`` arranges),
    SIGKILL after ``timeout``; reap it."""
    try:
        leads_group = os.getpgid(proc.pid) == proc.pid
    except ProcessLookupError:
        leads_group = False

    def send(sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if leads_group:
                os.killpg(proc.pid, sig)
            elif proc.poll() is None:
                proc.send_signal(sig)

    if proc.poll() is None:
        send(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            proc.wait()
    if leads_group:
        send(signal.SIGKILL)  # children that outlived their leader (same group) go too


def http_ok(url: str, timeout: float = 1.0) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return 200 <= int(resp.status) < 300
