"""End-to-end: the whole system as `make demo` runs it (tests/fixtures/devenv.py).

apply -> pods -> processes -> Leases held -> orders at the simulator -> status columns
filled -> delete the leader pod -> standby trading again (gap measured) -> 0 duplicates ->
tradingState Halted stops orders live -> delete with onDelete cancelOrders leaves no open
order and every child is garbage-collected. Runs on `e2e_stack` (tests/fixtures/devenv.py).

Alongside, in the same run, a live bot on a sandbox account whose keys live only in
OpenBao (the operator writes its policy and role with its own token; the pod logs in with
its ServiceAccount token): the simulator account keyed with that canary receives its
orders, and at the end the canary is searched for everywhere the system produced (pods,
ConfigMaps, Secrets, custom resources with status, Leases, Events, operator, pod runner
and container logs, /proc environ and cmdline of every runtime process, every pod's
/metrics) and must appear nowhere.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from hvac.exceptions import InvalidPath

from devenv import openbao
from devenv.demo import metrics_urls
from devenv.stack import Stack
from tradebot_contracts.names import CREDENTIALS_SECRET_LABEL, lease_name, vault_role_name

pytestmark = pytest.mark.e2e
T = TypeVar("T")
ACCOUNT = "sim"
VAULT_ACCOUNT = "vault-sim"
VAULT_BOT = "vbot"
VAULT_SIM_ACCOUNT = "sandbox"
"""Simulator account whose keys are written only into OpenBao: the canary."""


def eventually(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # transient API errors while things start
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last})")


def objects(stack: Stack, ns: str, eth_price: Decimal) -> list[dict[str, Any]]:
    paper = stack.simulator.account("paper")
    place = stack.runner.placement()
    risk = {"maxPositionNotional": "1000", "maxOrderNotional": "60", "maxDailyLoss": "200",
            "maxOrdersPerMinute": 120, "priceBandPercent": "10"}  # fmt: skip
    bot = {"mode": "paper", "onDelete": "cancelOrders", "runtime": place, "risk": risk}
    return [
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "sim-keys", "namespace": ns,
                      "labels": {CREDENTIALS_SECRET_LABEL: "true"}},
         "stringData": {"apiKey": paper.api_key, "secret": paper.secret}},
        {"apiVersion": "tradebot.io/v1alpha1", "kind": "ExchangeAccount",
         "metadata": {"name": ACCOUNT, "namespace": ns},
         "spec": {"exchange": "binance", "marketType": "spot", "mode": "paper",
                  "endpoint": stack.simulator.url,
                  "credentials": {"secretRef": {"name": "sim-keys"}}}},
        {"apiVersion": "tradebot.io/v1alpha1", "kind": "Strategy",
         "metadata": {"name": "sma", "namespace": ns},
         "spec": {"type": "sma-crossover", "timeframe": "5s",
                  "parameters": {"fastPeriod": 2, "slowPeriod": 4, "orderSize": "20"}}},
        {"apiVersion": "tradebot.io/v1alpha1", "kind": "Strategy",
         "metadata": {"name": "grid", "namespace": ns},
         "spec": {"type": "grid", "timeframe": "5s",
                  "parameters": {"lower": str(int(eth_price * Decimal("0.97"))),
                                 "upper": str(int(eth_price * Decimal("1.03"))),
                                 "levels": 7, "orderSize": "30"}}},
        {"apiVersion": "tradebot.io/v1alpha1", "kind": "TradingBot",
         "metadata": {"name": "sma", "namespace": ns},
         "spec": {**bot, "strategyRef": {"name": "sma"}, "replicas": 2,
                  "exchanges": [{"account": ACCOUNT, "symbols": ["BTC/USDT"],
                                 "allocation": {"quote": "USDT", "amount": "1000"}}]}},
        {"apiVersion": "tradebot.io/v1alpha1", "kind": "TradingBot",
         "metadata": {"name": "grid", "namespace": ns},
         "spec": {**bot, "strategyRef": {"name": "grid"}, "replicas": 1,
                  "exchanges": [{"account": ACCOUNT, "symbols": ["ETH/USDT"],
                                 "allocation": {"quote": "USDT", "amount": "1000"}}]}},
        {"apiVersion": "tradebot.io/v1alpha1", "kind": "ExchangeAccount",
         "metadata": {"name": VAULT_ACCOUNT, "namespace": ns},
         "spec": {"exchange": "binance", "marketType": "spot", "mode": "sandbox",
                  "endpoint": stack.simulator.url,
                  "credentials": {"vault": {"path": vault_path(ns)}}}},
        {"apiVersion": "tradebot.io/v1alpha1", "kind": "TradingBot",
         "metadata": {"name": VAULT_BOT, "namespace": ns},
         "spec": {**bot, "mode": "live", "strategyRef": {"name": "sma"}, "replicas": 1,
                  "exchanges": [{"account": VAULT_ACCOUNT, "symbols": ["BTC/USDT"],
                                 "allocation": {"quote": "USDT", "amount": "1000"}}]}},
    ]  # fmt: skip


def vault_path(ns: str) -> str:
    return f"tradebot/{ns}/e2e"


def sim_orders(stack: Stack, symbol: str) -> list[dict[str, Any]]:
    orders = stack.simulator.ledger("paper")["orders"]
    return [o for o in orders if o.get("symbol") == symbol]


def lease(stack: Stack, ns: str, name: str) -> dict[str, Any]:
    return dict(stack.kube.get("lease", name, "-n", ns))


def test_bots_trade_fail_over_halt_and_clean_up(e2e_stack: Stack) -> None:
    stack, kube = e2e_stack, e2e_stack.kube
    ns = f"e2e-{uuid.uuid4().hex[:6]}"
    kube.ensure_namespace(ns, {"pod-security.kubernetes.io/enforce": "restricted"})
    stack.simulator.admin("ledger/reset", {})
    eth = Decimal(stack.simulator.admin("prices")["ETHUSDT"])
    # The canary: the sandbox account's keys, written only into OpenBao (the simulator
    # checks every signed request against them).
    sandbox = stack.simulator.account(VAULT_SIM_ACCOUNT)
    openbao.put_secret(stack.vault, vault_path(ns),
                       {"apiKey": sandbox.api_key, "secret": sandbox.secret})  # fmt: skip
    kube.apply(objects(stack, ns, eth))
    try:
        run_scenario(stack, ns)
        assert_bots_use_their_own_data_logins(stack, ns)
        assert_vault_bot_traded_and_no_canary(stack, ns, {
            "vault secret (canary)": sandbox.secret, "vault apiKey": sandbox.api_key,
            "journal owner's password": stack.postgres.password or "",
            "redis admin's password": stack.redis.password or "",
        })  # fmt: skip
    finally:
        kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def run_scenario(stack: Stack, ns: str) -> None:
    kube = stack.kube

    # Pods run as processes on the runner's node; each shard's Lease is held.
    def running_pods() -> list[dict[str, Any]] | None:
        pods = kube.get("pods", "-n", ns)["items"]
        ok = [p for p in pods if p["status"].get("phase") == "Running"]
        return ok if len(ok) == 4 else None

    pods = eventually(running_pods, 90, "4 runtime pods Running (sma x2, grid, vbot)")
    assert {p["spec"]["nodeName"] for p in pods} == {stack.runner.node}
    assert len(list(stack.runner.logs_dir.glob(f"{ns}_*/runtime/0.log"))) == 4
    sma_lease = lease_name("sma", ACCOUNT, 0)
    holder = eventually(
        lambda: lease(stack, ns, sma_lease)["spec"].get("holderIdentity"), 60, "sma Lease held"
    )
    grid_lease = lease_name("grid", ACCOUNT, 0)
    eventually(lambda: lease(stack, ns, grid_lease)["spec"].get("holderIdentity"), 60,
               "grid Lease held")  # fmt: skip

    # Orders reach the simulator; every status column is filled.
    eventually(lambda: sim_orders(stack, "BTCUSDT"), 120, "sma orders at the simulator")
    eventually(lambda: [o for o in sim_orders(stack, "ETHUSDT") if o.get("status") == "NEW"],
               120, "grid's resting orders at the simulator")  # fmt: skip

    def columns_filled() -> bool:
        for tb in kube.get("tradingbots", "-n", ns)["items"]:
            st = tb.get("status") or {}
            ex = (st.get("exchanges") or {}).get(ACCOUNT) or {}
            if not (st.get("summary", {}).get("leader") and st.get("pnl") is not None
                    and st.get("phase") == "Running"):  # fmt: skip
                return False
            if tb["metadata"]["name"] == "grid" and not ex.get("openOrders"):
                return False
        return True

    eventually(columns_filled, 60, "leader, PnL and open orders in every bot's status")

    # Fail-over: delete the leader; the standby takes the Lease and trades again.
    before = len(sim_orders(stack, "BTCUSDT"))
    killed_at = time.monotonic()
    kube.kubectl("delete", "pod", holder, "-n", ns, "--wait=false")

    def new_holder() -> str | None:
        spec = lease(stack, ns, sma_lease)["spec"]
        h = spec.get("holderIdentity")
        return h if h and h != holder else None

    successor = eventually(new_holder, 30, "standby holding the Lease")
    lease_gap = time.monotonic() - killed_at
    eventually(lambda: len(sim_orders(stack, "BTCUSDT")) > before, 90, "orders after failover")
    order_gap = time.monotonic() - killed_at
    print(
        f"\nfailover: {holder} -> {successor}: Lease taken after {lease_gap:.1f}s, first new"
        f" order at the simulator after {order_gap:.1f}s (the next crossover signal)"
    )
    ledger = stack.simulator.ledger("paper")
    assert ledger["duplicates"] == [], ledger["duplicates"]

    # Kill switch: Halted stops new orders without a restart.
    kube.kubectl("patch", "tb", "sma", "-n", ns, "--type", "merge",
                 "-p", '{"spec":{"tradingState":"Halted"}}')  # fmt: skip
    eventually(lambda: kube.get("tb", "sma", "-n", ns).get("status", {}).get("phase") == "Halted",
               30, "sma phase Halted")  # fmt: skip
    time.sleep(3)
    halted = len(sim_orders(stack, "BTCUSDT"))
    time.sleep(15)
    assert len(sim_orders(stack, "BTCUSDT")) == halted, "orders were placed while Halted"
    assert lease(stack, ns, sma_lease)["spec"].get("holderIdentity") == successor  # no restart

    # Delete with onDelete: cancelOrders -> no open order left, every child collected.
    kube.kubectl("delete", "tb", "grid", "-n", ns, "--wait=true", "--timeout=60s")
    open_eth = [
        o for o in sim_orders(stack, "ETHUSDT") if o.get("status") in ("NEW", "PARTIALLY_FILLED")
    ]
    assert open_eth == [], open_eth

    def children_gone() -> bool:
        kinds = (
            "deployments,replicasets,pods,configmaps,leases,services,serviceaccounts,"
            "roles,rolebindings,poddisruptionbudgets"
        )
        items = kube.get(kinds, "-n", ns, "-l", "tradebot.io/bot=grid")["items"]
        return not items

    eventually(children_gone, 60, "grid's children garbage-collected")


def assert_bots_use_their_own_data_logins(stack: Stack, ns: str) -> None:
    """Every running bot's pods are connected to the journal with a login Vault issued for
    that bot (journal_logins), none with the owner's; and no Redis command of a runtime was
    refused by its ACL user (budget and presence keys are all its own)."""
    assert stack.postgres.password and stack.redis.password  # both refuse anonymous logins

    async def read() -> tuple[dict[str, str], set[str]]:
        conn = await asyncpg.connect(stack.postgres.dsn)
        try:
            logins = {r["login"]: r["bot"] for r in await conn.fetch(
                "SELECT login, bot FROM journal_logins WHERE bot LIKE $1", f"{ns}/%")}  # fmt: skip
            active = "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'tradebot'"
            users = {r["usename"] for r in await conn.fetch(active)}
            return logins, users
        finally:
            await conn.close()

    def connected() -> set[str] | None:
        logins, users = asyncio.run(read())
        bots = {logins[u].split("/", 1)[1] for u in users if u in logins}
        return bots if {"sma", VAULT_BOT} <= bots else None

    eventually(connected, 30, "sma and vbot connected with their own journal logins")
    for log in stack.runner.logs_dir.glob(f"{ns}_*/runtime/0.log"):
        refused = [line for line in log.read_text(errors="replace").splitlines()
                   if "no permissions" in line]  # fmt: skip
        assert not refused, f"{log.name}: {refused[:3]}"


def runtime_processes(stack: Stack) -> dict[int, dict[str, str]]:
    """pid -> environ of every runtime process the stack's pod runner started."""
    root = f"PODRUNNER_ROOT={stack.runner.workdir.resolve()}/"
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if b"tradebot_runtime" in cmdline and any(e.startswith(root) for e in environ):
            found[int(entry.name)] = dict(e.partition("=")[::2] for e in environ if e)
    return found


def runner_story(stack: Stack, pods: set[str]) -> str:
    """What the pod runner logged about these pods, and who holds its node Lease."""
    lines = [line for line in stack.runner.log_text().splitlines()
             if any(pod in line for pod in pods) or "node Lease" in line]  # fmt: skip
    node_lease = stack.kube.kubectl(
        "get", "lease", stack.runner.node, "-n", "kube-node-lease", "-o", "yaml", check=False
    ).stdout
    return "\n".join(["pod runner log:", *lines[-40:], "node Lease:", node_lease])


def assert_vault_bot_traded_and_no_canary(stack: Stack, ns: str, canaries: dict[str, str]) -> None:
    kube, started = stack.kube, time.monotonic()
    # The product path: the operator (its own least-privilege token) wrote the bot's
    # policy and role, checked the account, and the pod's login got the canary keys, which
    # the simulator account keyed with them proves by accepting signed orders.
    admin = stack.vault.admin()
    role_name = vault_role_name(ns, VAULT_BOT)

    def role() -> dict[str, Any] | None:
        try:
            return dict(admin.auth.kubernetes.read_role(role_name, mount_point="kubernetes"))
        except InvalidPath:
            return None

    bound = eventually(role, 30, "the operator's Kubernetes-auth role for vbot")
    assert bound["bound_service_account_namespaces"] == [ns]
    conditions = kube.get("xa", VAULT_ACCOUNT, "-n", ns)["status"]["conditions"]
    ready = next(c for c in conditions if c["type"] == "CredentialsReady")
    assert (ready["status"], ready["reason"]) == ("True", "VaultKeysPresent"), ready
    eventually(lambda: stack.simulator.ledger(VAULT_SIM_ACCOUNT)["orders"], 120,
               "vbot's orders at the simulator account keyed with the canary")  # fmt: skip
    assert stack.simulator.ledger(VAULT_SIM_ACCOUNT)["duplicates"] == []

    # Everything the system produced during the run.
    places: dict[str, str] = {}
    for kinds in ("pods", "configmaps", "secrets", "events", "leases", "deployments",
                  "replicasets", "tradingbots", "strategies", "exchangeaccounts"):  # fmt: skip
        places[f"kubectl get {kinds} -A"] = kube.kubectl("get", kinds, "-A", "-o", "json").stdout
    assert f'"name": "{VAULT_BOT}"' in places["kubectl get tradingbots -A"]  # scanned
    places["operator log"] = stack.operator.log_text()
    places["pod runner log"] = stack.runner.log_text()
    container_logs = sorted(stack.runner.logs_dir.glob("*/*/*.log"))
    assert any(f"{ns}_{VAULT_BOT}-" in str(p) for p in container_logs), container_logs
    for log in container_logs:
        places[str(log.relative_to(stack.state))] = log.read_text(errors="replace")

    # pods still running (a deleted bot's pod may linger terminating after its process
    # exited: the runner reports the end within the grace period)
    running = [p["metadata"]["name"] for p in kube.get("pods", "-n", ns)["items"]
               if p["status"].get("phase") == "Running"
               and not p["metadata"].get("deletionTimestamp")]  # fmt: skip
    processes = runtime_processes(stack)
    in_ns = {pid: env for pid, env in processes.items() if env.get("TRADEBOT_NAMESPACE") == ns}
    with_process = sorted(env["TRADEBOT_POD_NAME"] for env in in_ns.values())
    assert with_process == sorted(running), runner_story(stack, set(with_process) ^ set(running))
    for pid in processes:
        proc = Path(f"/proc/{pid}")
        for part in ("environ", "cmdline"):
            with_nul = (proc / part).read_bytes().decode(errors="replace")
            places[f"/proc/{pid}/{part}"] = with_nul.replace("\0", " ")

    urls = metrics_urls(stack, ns)
    assert sorted(urls) == sorted(f"{ns}/{name}" for name in running), urls
    for pod, url in urls.items():
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        places[f"{pod} /metrics"] = text
        if f"/{VAULT_BOT}-" in pod:
            assert "tradebot_credentials_usable 1.0" in text

    # Positive control: the exchange (simulator) and the servers' own files hold the same
    # values, and the scan finds them there.
    exchange_side = "".join(
        (stack.state / name).read_text()
        for name in ("simulator/accounts.json", "postgres/pwfile", "redis/redis.conf")
    )
    assert all(value and value in exchange_side for value in canaries.values())
    leaks = [f"{what} in {where}" for where, text in places.items()
             for what, value in canaries.items() if value in text]  # fmt: skip
    scanned, took = sum(len(t) for t in places.values()), time.monotonic() - started
    print(f"\ncanary scan: {len(places)} places, {scanned} characters, {len(processes)} "
          f"runtime processes, {took:.1f}s: {leaks or 'no leak'}")  # fmt: skip
    assert leaks == [], f"canary found: {leaks}"
