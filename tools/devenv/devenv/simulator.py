"""The exchange simulator (tools/exchange-sim) as a process: a fake Binance spot exchange
whose seeded prices move on their own, with accounts whose keys the bots use."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devenv.procs import http_ok, pick_port, spawn, stop, wait_until


@dataclass(frozen=True)
class Account:
    name: str
    api_key: str
    secret: str
    balances: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Simulator:
    url: str
    accounts: tuple[Account, ...]
    log: Path

    def account(self, name: str) -> Account:
        return next(a for a in self.accounts if a.name == name)

    def admin(self, path: str, body: Any = None, method: str | None = None) -> Any:
        """JSON call to the admin API (``/admin/...``), e.g. ``admin("ledger")``."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/admin/{path.lstrip('/')}",
            data=data,
            method=method or ("GET" if data is None else "POST"),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def ledger(self, account: str | None = None) -> Any:
        return self.admin(f"ledger/{account}" if account else "ledger")


@contextmanager
def running(
    workdir: Path,
    accounts: list[Account],
    *,
    port: int | None = None,
    seed: int = 42,
    tick_interval: float = 0.5,
    step_seconds: float | None = None,
    extra_args: list[str] | None = None,
) -> Iterator[Simulator]:
    """``python -m exchange_sim``: ``tick_interval`` wall seconds per price step and
    ``step_seconds`` market seconds per step (raise it to make candles close faster)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = pick_port(port, "the exchange simulator", "--simulator-port")
    accounts_file = workdir / "accounts.json"
    accounts_file.write_text(
        json.dumps(
            [{"name": a.name, "api_key": a.api_key, "secret": a.secret, "balances": a.balances}
             for a in accounts], indent=2,
        )
    )  # fmt: skip
    log = workdir / "exchange-sim.log"
    cmd = [sys.executable, "-m", "exchange_sim", "--port", str(port), "--seed", str(seed),
           "--accounts", str(accounts_file), "--tick-interval", str(tick_interval)]  # fmt: skip
    if step_seconds is not None:
        cmd += ["--step-seconds", str(step_seconds)]
    proc = spawn(cmd + (extra_args or []), log=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{url}/admin/health"), 30, "exchange simulator", log, proc)
        yield Simulator(url=url, accounts=tuple(accounts), log=log)
    finally:
        stop(proc)
