"""Operator restart: ``kill -9`` the operator while it reconciles a burst of bots, start it
again, and check that the restart is invisible in the result.

- no duplicate children: exactly one object of each child kind per bot, owned by it;
- no status flapping: every status change of every bot is recorded through a watch for
  the whole run, and no bot ever goes back from reconciled (or Running) to not ready;
- everything reconciled at the end.

Its own operator process, watching only this test's namespace (the session operator,
which watches every namespace, is paused meanwhile). Most bots are suspended (every child
is applied, no pods); a few run, with their Lease heartbeats written as a runtime leader
does, so that Ready=True must survive the restart too.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devenv.procs import DevenvError
from support.chaos import scaled
from support.cluster import Cluster
from support.objects import account, beat, bot, strategy
from support.operator import TEST_TENANCY, _session_operator_paused
from support.procs import free_port, stop, wait_until
from tradebot_contracts.names import lease_name
from tradebot_operator.api import ExchangeAccount, Strategy, TradingBot
from tradebot_operator.builders import desired
from tradebot_operator.settings import OperatorSettings

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

BOTS = scaled(60, 300)
RUNNING = 2  # of which kept Running by heartbeats
LEASE_SECONDS = 10  # generous: a slow kubectl on a loaded machine must not expire a Lease
SLOW = {"TRADEBOT_API_CONCURRENCY": "2", "TRADEBOT_RECONCILE_WORKERS": "2"}
CHILD_KINDS = (
    "serviceaccounts,roles,rolebindings,configmaps,leases,services,deployments,"
    "poddisruptionbudgets,horizontalpodautoscalers,networkpolicies"
)


def _names() -> list[str]:
    return [f"b{i:03d}" for i in range(BOTS)]


def _running(name: str) -> bool:
    return name in _names()[:RUNNING]


def _settled(name: str, obj: dict[str, Any]) -> bool:
    """Reconciled for its generation and in its final phase."""
    status = obj.get("status") or {}
    generation = obj["metadata"].get("generation")
    reconciled = any(
        c.get("type") == "Reconciled"
        and c.get("status") == "True"
        and c.get("observedGeneration") == generation
        for c in status.get("conditions") or []
    )
    return reconciled and status.get("phase") == ("Running" if _running(name) else "Suspended")


class Recorder:
    """Every TradingBot version the watch delivers: (name, settled?, phase)."""

    def __init__(self, cluster: Cluster, ns: str) -> None:
        self.history: dict[str, list[tuple[bool, str | None]]] = defaultdict(list)
        self.first_settled = threading.Event()
        self._lock = threading.Lock()
        cmd = [cluster.kubectl_bin, "--kubeconfig", cluster.kubeconfig, "get", "tradingbots",
               "-n", ns, "--watch", "--output-watch-events", "-o", "json"]  # fmt: skip
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        decoder, buffer = json.JSONDecoder(), ""
        for line in self._proc.stdout:
            buffer += line
            while buffer.strip():
                try:
                    event, end = decoder.raw_decode(buffer.lstrip())
                except json.JSONDecodeError:
                    break  # incomplete object: read more
                buffer = buffer.lstrip()[end:]
                obj = event.get("object") or {}
                name = obj.get("metadata", {}).get("name")
                if event.get("type") in ("ADDED", "MODIFIED") and name:
                    settled = _settled(name, obj)
                    with self._lock:
                        self.history[name].append((settled, (obj.get("status") or {}).get("phase")))
                    if settled:
                        self.first_settled.set()

    def snapshot(self) -> dict[str, list[tuple[bool, str | None]]]:
        with self._lock:
            return {name: list(states) for name, states in self.history.items()}

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(10)


class Heartbeats:
    """The running bots' leaders renewing their Leases (as tests/fixtures beat() does)."""

    def __init__(self, cluster: Cluster, ns: str, bots: list[str]) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(cluster, ns, bots), daemon=True)
        self._thread.start()

    def _run(self, cluster: Cluster, ns: str, bots: list[str]) -> None:
        while not self._stop.is_set():
            for name in bots:
                # the Lease appears once the operator applied the bot's children
                with contextlib.suppress(DevenvError):
                    beat(cluster, ns, lease_name(name, "paper", 0), f"{name}-paper-pod")
            self._stop.wait(2)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)


def _start_operator(
    cluster: Cluster, ns: str, log: Path, extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    env = {
        **os.environ,
        **(extra or {}),
        "KUBECONFIG": cluster.kubeconfig,
        "TRADEBOT_WATCH_NAMESPACES": ns,
        "TRADEBOT_LIVENESS_ENDPOINT": liveness,
        "TRADEBOT_LOG_FORMAT": "json",
        "TRADEBOT_LEASE_DURATION_SECONDS": str(LEASE_SECONDS),
        "TRADEBOT_TENANCY": json.dumps(TEST_TENANCY),  # the session operator's policy
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tradebot_operator"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip

    def alive() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"operator exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with urllib.request.urlopen(liveness, timeout=1) as resp:
            return int(resp.status) == 200

    wait_until(alive, 60, "operator liveness endpoint", log)
    return proc


def _bots(cluster: Cluster, ns: str) -> dict[str, dict[str, Any]]:
    out = cluster.kubectl("get", "tradingbots", "-n", ns, "-o", "json").stdout
    return {item["metadata"]["name"]: item for item in json.loads(out)["items"]}


def _expected_children(suspend: bool) -> Counter[str]:
    """Child kinds of one bot, from the builders (a suspended bot has no PDB)."""
    raw = bot("x", suspend=suspend)
    raw["metadata"].update(namespace="ns", uid="00000000-0000-4000-8000-000000000000")
    acct, strat = account(), strategy()
    for obj in (acct, strat):
        obj["metadata"]["namespace"] = "ns"
    a = ExchangeAccount.model_validate(acct)
    children = desired(
        TradingBot.model_validate(raw), Strategy.model_validate(strat), {"paper": a},
        OperatorSettings(),
    )  # fmt: skip
    return Counter(child["kind"] for child in children)


@pytest.fixture
def ns(cluster: Cluster, crds_installed: Cluster) -> Iterator[str]:
    with _session_operator_paused():
        yield cluster.namespace("oprestart")


def test_kill_9_mid_reconcile_then_restart(cluster: Cluster, ns: str, tmp_path: Path) -> None:
    log = tmp_path / "operator.log"
    cluster.kubectl(
        "apply", "-n", ns, "-f", "-", input=json.dumps({"kind": "List", "apiVersion": "v1",
                                                       "items": [account(), strategy()]})
    )  # fmt: skip
    recorder = Recorder(cluster, ns)
    heartbeats = Heartbeats(cluster, ns, _names()[:RUNNING])
    # Throttled to two requests and two reconciles at a time, so that the burst takes
    # seconds and the kill lands in the middle of it (bots with part of their children).
    proc = _start_operator(cluster, ns, log, SLOW)
    try:
        bots = [bot(name, suspend=not _running(name)) for name in _names()]
        cluster.kubectl(
            "apply", "-n", ns, "-f", "-",
            input=json.dumps({"kind": "List", "apiVersion": "v1", "items": bots}),
        )  # fmt: skip

        # kill -9 as soon as the first bot is reconciled: the rest is in flight
        assert recorder.first_settled.wait(120), "no bot reconciled before the kill"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        settled_at_kill = sum(1 for s in _bots(cluster, ns).values() if s.get("status"))
        assert settled_at_kill < BOTS, "every bot had status before the kill: not mid-reconcile"
        print(f"kill -9 with {settled_at_kill}/{BOTS} bots carrying status")

        proc = _start_operator(cluster, ns, log)
        deadline = time.monotonic() + scaled(120, 300)
        while True:
            current = _bots(cluster, ns)
            unsettled = sorted(n for n in _names() if not _settled(n, current.get(n) or {}))
            if not unsettled:
                break
            assert time.monotonic() < deadline, f"not reconciled after the restart: {unsettled}"
            time.sleep(1)
        time.sleep(3)  # let the watch deliver anything a late write would still do

        # no duplicate children: exactly the builders' set per bot, each owned by its bot
        uids = {name: obj["metadata"]["uid"] for name, obj in current.items()}
        items = json.loads(cluster.kubectl("get", CHILD_KINDS, "-n", ns, "-o", "json").stdout)[
            "items"
        ]
        per_bot: dict[str, Counter[str]] = defaultdict(Counter)
        for item in items:
            owners = [
                o for o in item["metadata"].get("ownerReferences") or []
                if o.get("kind") == "TradingBot" and o.get("controller")
            ]  # fmt: skip
            if owners:
                assert len(owners) == 1, item["metadata"]
                owner = owners[0]
                assert uids.get(owner["name"]) == owner["uid"], item["metadata"]
                per_bot[owner["name"]][item["kind"]] += 1
        expected = {run: _expected_children(suspend=not run) for run in (True, False)}
        wrong = {
            name: dict(per_bot[name])
            for name in _names()
            if per_bot[name] != expected[_running(name)]
        }
        assert not wrong, f"expected {expected} per bot (running?); differing: {wrong}"

        # no flapping: once settled, every later version of the bot is settled too
        history = recorder.snapshot()
        flapped = {
            name: states
            for name, states in history.items()
            if any(a[0] and not b[0] for a, b in itertools.pairwise(states))
        }
        assert not flapped, f"status went back to not ready: {flapped}"
        assert set(history) == set(_names())
        assert all(states[-1][0] for states in history.values())
        versions = sum(len(states) for states in history.values())
        print(f"{versions} bot versions watched, none went back to not ready")
        for name in _names()[:RUNNING]:
            assert any(phase == "Running" for _, phase in history[name]), history[name]
    finally:
        heartbeats.close()
        # Delete while our operator still runs so that its finalizer is released.
        cluster.kubectl("delete", "tradingbots", "--all", "-n", ns, "--timeout=90s", check=False)
        recorder.close()
        if proc.poll() is None:
            stop(proc, timeout=15)
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
