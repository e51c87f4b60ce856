"""Real `python -m tradebot_runtime` processes without the pod runner: a simulator process
with one keyed account, a bot rendered by the real operator (ConfigMap, Leases, credential
files as a pod would see them) and runtime processes started with the env of the Deployment
the operator created (support/pod_env.py). Shared by the runtime e2e tests, the chaos suite
and the failover/rate-limit benchmarks; the fixtures `sim_url` and `runtime_env` are in
tests/fixtures/runtimes.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from support.cluster import Cluster
from support.objects import account, apply, bot, eventually, get, strategy
from support.pod_env import PodFields, process_env
from support.procs import free_port, stop, wait_until
from support.servers import Postgres, Redis
from tradebot_contracts import env as envvars
from tradebot_contracts.names import CREDENTIALS_SECRET_LABEL
from tradebot_contracts.runtime_config import CONFIG_KEY, CREDENTIALS_DIR, RuntimeConfig
from tradebot_runtime.domain import Fill, Side
from tradebot_runtime.positions import PositionBook

API_KEY = "E2EruntimeKey0001"
SECRET = "E2EruntimeSecret0001"  # simulator keys (test data), mounted as files, never env
SIM_ACCOUNT = "e2e"
SYMBOL = "BTC/USDT"
# crosses on 1 s bars: a steady stream of small orders
FAST_SMA = {"type": "sma-crossover", "timeframe": "1s",
            "parameters": {"fastPeriod": 1, "slowPeriod": 2, "orderSize": "20"}}  # fmt: skip


PLUGIN_ENV = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
"""Runtime env that makes ``support.strategies`` importable (plugin strategy tests)."""
LOCAL_NODE = "local"
"""``spec.nodeName`` of the pods the local runtime processes stand for."""


def http_json(url: str, method: str = "GET", body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


@contextmanager
def simulator_process(tmp_path: Path, *extra_args: str) -> Iterator[str]:
    """A simulator process with the keyed account SIM_ACCOUNT; yields its base URL.
    `extra_args` are exchange_sim CLI flags (e.g. faults, rate limits)."""
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps([{
        "name": SIM_ACCOUNT, "api_key": API_KEY, "secret": SECRET,
        "balances": {"USDT": "100000", "BTC": "0"},
    }]))  # fmt: skip
    port = free_port()
    log = tmp_path / "sim.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "exchange_sim", "--port", str(port), "--accounts",
             str(accounts), "--tick-interval", "0.1", "--step-seconds", "30",
             "--stream-interval-ms", "200", "--history-minutes", "30", *extra_args],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_json(url + "/api/v3/ping") == {}, 30, "simulator", log)
        yield url
    finally:
        stop(proc)


def ledger(url: str) -> dict[str, Any]:
    result: dict[str, Any] = http_json(f"{url}/admin/ledger/{SIM_ACCOUNT}")
    return result


class Runtime:
    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self.metrics_url = f"http://127.0.0.1:{env[envvars.METRICS_PORT]}/metrics"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tradebot_runtime"],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def metric(self, name: str, **labels: str) -> float | None:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as resp:
            text = resp.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return None


def lease(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    obj = get(cluster, ns, "lease", name)
    assert obj is not None
    return obj


def net_fill_qty(rows: list[asyncpg.Record]) -> Decimal:
    return sum((r["amount"] if r["side"] == "buy" else -r["amount"] for r in rows), Decimal(0))


async def journal_fills(dsn: str, bot_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch("SELECT * FROM fills WHERE bot = $1", bot_id))
    finally:
        await conn.close()


def _fill_order(fill: Fill) -> tuple[int, int, str]:
    return fill.ts, int(fill.trade_id) if fill.trade_id.isdigit() else 0, fill.trade_id


def sim_fills(book: dict[str, Any]) -> list[Fill]:
    """The account's fills from the simulator's ledger, as the runtime's Fill (fill order)."""
    cids = {o["orderId"]: o["clientOrderId"] for o in book["orders"]}
    fills = [
        Fill(
            trade_id=str(t["id"]),
            client_order_id=cids.get(t["orderId"], ""),
            symbol=f"{t['symbol'][:-4]}/{t['symbol'][-4:]}",  # the simulator quotes in USDT
            side=Side(t["side"].lower()),
            price=Decimal(t["price"]),
            amount=Decimal(t["qty"]),
            fee=Decimal(t["commission"]),
            fee_currency=t["commissionAsset"],
            ts=int(t["time"]),
        )
        for t in book["trades"]
    ]
    return sorted(fills, key=_fill_order)


async def journal_fill_list(dsn: str, bot_id: str) -> list[Fill]:
    rows = await journal_fills(dsn, bot_id)
    fills = [
        Fill(
            trade_id=r["trade_id"],
            client_order_id=r["client_order_id"],
            symbol=r["symbol"],
            side=Side(r["side"]),
            price=Decimal(r["price"]),
            amount=Decimal(r["amount"]),
            fee=Decimal(r["fee"]),
            fee_currency=r["fee_currency"],
            ts=int(r["ts_ms"]),
        )
        for r in rows
    ]
    return sorted(fills, key=_fill_order)


def position_book(fills: list[Fill]) -> PositionBook:
    book = PositionBook()
    assert book.apply_all(fills) == len(fills), "duplicate fills"
    return book


def pnl_mismatches(journal: PositionBook, sim: PositionBook, marks: dict[str, Decimal]) -> str:
    """Where the journal's positions and PnL (average cost, fees apart) differ from the
    same accounting over the simulator's ledger; "" when they are equal."""
    out = []
    for symbol in sorted(set(journal.positions()) | set(sim.positions())):
        mine, theirs = journal.position(symbol), sim.position(symbol)
        if mine != theirs:
            out.append(f"{symbol}: journal {mine} != sim {theirs}")
    if journal.realized_pnl() != sim.realized_pnl() or journal.fees() != sim.fees():
        out.append(f"realized/fees: journal {journal.realized_pnl()}/{journal.fees()} "
                   f"!= sim {sim.realized_pnl()}/{sim.fees()}")  # fmt: skip
    if journal.unrealized_pnl(marks) != sim.unrealized_pnl(marks):
        out.append(f"unrealized at {marks}: journal {journal.unrealized_pnl(marks)} "
                   f"!= sim {sim.unrealized_pnl(marks)}")  # fmt: skip
    return "; ".join(out)


def sim_marks(url: str, symbols: list[str]) -> dict[str, Decimal]:
    prices = http_json(f"{url}/admin/prices")
    return {s: Decimal(str(prices[s.replace("/", "")])) for s in symbols}


def compare_pnl(url: str, dsn: str, bot_id: str) -> tuple[str, PositionBook, PositionBook]:
    """(mismatches, journal book, simulator book) of the bot's journal against the
    simulator account's ledger (one bot on the account), marked at the simulator's prices."""
    book = ledger(url)
    sim = position_book(sim_fills(book))
    journal = position_book(asyncio.run(journal_fill_list(dsn, bot_id)))
    marks = sim_marks(url, sorted(set(journal.positions()) | set(sim.positions())))
    return pnl_mismatches(journal, sim, marks), journal, sim


def heartbeat_quantum(hb: Any) -> Decimal:
    """The step the heartbeat's money figures are quantized to (the quote currency's
    precision, e.g. 1E-8 for USDT): the exponent of its decoded figures."""
    exponent = hb.realized_pnl.as_tuple().exponent
    return Decimal(1).scaleb(min(0, exponent))


def heartbeat_pnl_mismatches(hb: Any, journal: PositionBook, price: Decimal) -> str:
    """The heartbeat's PnL against the journal's book (one symbol): realized exactly at
    the heartbeat's precision; notional and unrealized consistent with one mark near the
    simulator's ``price`` (each figure is rounded by at most half a quantum)."""
    out = []
    quantum = heartbeat_quantum(hb)
    if hb.realized_pnl != journal.realized_pnl().quantize(quantum):
        out.append(f"heartbeat realized {hb.realized_pnl} != journal {journal.realized_pnl()}")
    (position,) = journal.positions().values() or [None]
    if position is None or position.amount == 0:
        if hb.position_notional != 0 or hb.unrealized_pnl != 0:
            out.append(f"flat but heartbeat {hb.position_notional}/{hb.unrealized_pnl}")
        return "; ".join(out)
    mark = hb.position_notional / abs(position.amount)
    expected = position.amount * (mark - position.avg_entry_price)
    if abs(hb.unrealized_pnl - expected) > quantum + Decimal("1e-9"):
        out.append(f"heartbeat unrealized {hb.unrealized_pnl} != {expected} at mark {mark}")
    if abs(mark - price) > price * Decimal("0.05"):
        out.append(f"heartbeat mark {mark} far from the simulator's {price}")
    return "; ".join(out)


@dataclass
class BotSetup:
    """One bot on the simulator account, rendered by the real operator: what a runtime
    pod would see (env, ConfigMap file, credential files). ``env(pod)`` is the env of the
    operator's Deployment for that pod name (support/pod_env.py)."""

    cluster: Cluster
    ns: str
    leases: list[str]
    env: Callable[[str], dict[str, str]]
    bot: str = "rtbot"

    @property
    def bot_id(self) -> str:
        return f"{self.ns}/{self.bot}"


def setup_bot(
    cluster: Cluster,
    ns: str,
    sim_url: str,
    postgres: Postgres,
    redis_server: Redis,
    tmp_path: Path,
    *,
    strategy_spec: dict[str, Any] | None = None,
    bot_spec: dict[str, Any] | None = None,
    extra_env: dict[str, str] | None = None,
    account_spec: dict[str, Any] | None = None,
    bot_name: str = "rtbot",
    shared: bool = True,
) -> BotSetup:
    """Apply account, strategy and bot; wait for the operator's ConfigMap, Leases and
    Deployment (the runtimes' env is the Deployment's, see support/pod_env.py).
    `strategy_spec` replaces the fast sma-crossover; `bot_spec` is merged into the bot's
    spec (e.g. other risk limits or replicas); `extra_env` is added to every runtime's env
    (e.g. PLUGIN_ENV for the plugin strategies in support/strategies.py), names the
    Deployment does not set (development-only settings of tradebot_contracts.env, such as
    env.POLL_INTERVAL, or PYTHONPATH); `account_spec`
    is merged into the account's spec (e.g. mode sandbox, a rateLimit). `bot_name` and
    `shared=False` add another bot to the Secret, account and strategy of an earlier call
    in the same namespace (several bots sharing one account's budget)."""
    shared_objects: list[dict[str, Any]] = []
    if shared:
        cluster.kubectl("create", "secret", "generic", "sim-keys", "-n", ns,
                        f"--from-literal=key={API_KEY}",
                        f"--from-literal=secret={SECRET}")  # fmt: skip
        cluster.kubectl("label", "secret", "sim-keys", "-n", ns, f"{CREDENTIALS_SECRET_LABEL}=true")
        keys = {"apiKey": "key", "secret": "secret"}
        secret_ref = {"secretRef": {"name": "sim-keys", "keys": keys}}
        sim_account = account("sim", endpoint=sim_url, credentials=secret_ref)
        sim_account["spec"] |= account_spec or {}
        shared_objects = [sim_account, strategy("fast") | {"spec": strategy_spec or FAST_SMA}]
    apply(
        cluster, ns,
        *shared_objects,
        bot(bot_name, strategy_name="fast", **({
            "onDelete": "cancelOrders",
            "exchanges": [{"account": "sim", "symbols": [SYMBOL],
                           "allocation": {"quote": "USDT", "amount": "1000"}}],
            "risk": {"maxPositionNotional": "500", "maxOrderNotional": "50",
                     "maxDailyLoss": "100", "maxOrdersPerMinute": 120},
        } | (bot_spec or {}))),
    )  # fmt: skip

    def configmap() -> dict[str, Any] | None:
        out = cluster.kubectl("get", "configmaps", "-n", ns, "-o", "json")
        for item in json.loads(out.stdout)["items"]:
            text = (item.get("data") or {}).get(CONFIG_KEY)
            if text is not None and RuntimeConfig.loads(text).bot == bot_name:
                return dict(item)
        return None

    cm = eventually(configmap, 60, "runtime ConfigMap")
    config = RuntimeConfig.loads(cm["data"][CONFIG_KEY])
    assert config.credentials.source == "file"
    assert config.mode == (bot_spec or {}).get("mode", "paper")
    leases = [s.lease_name for s in config.shards]
    eventually(lambda: all(get(cluster, ns, "lease", n) for n in leases), 30, "leases")

    def deployment() -> dict[str, Any] | None:
        out = cluster.kubectl("get", "deployments", "-n", ns, "-o", "json")
        for item in json.loads(out.stdout)["items"]:
            if _mounts_configmap(item, cm["metadata"]["name"]):
                return dict(item)
        return None

    # what desired() rendered, as the operator under test applied it
    rendered = eventually(deployment, 60, "runtime Deployment")

    # the files a pod would see: the ConfigMap volume and the Secret volume
    if bot_name != "rtbot":
        tmp_path = tmp_path / bot_name
        tmp_path.mkdir()
    root = tmp_path / "rootfs"
    creds = root / CREDENTIALS_DIR.lstrip("/")
    creds.mkdir(parents=True)
    (creds / "apiKey").write_text(API_KEY)
    (creds / "secret").write_text(SECRET)
    config_file = tmp_path / CONFIG_KEY
    config_file.write_text(cm["data"][CONFIG_KEY])

    def env(pod: str) -> dict[str, str]:
        return process_env(
            rendered,
            PodFields(namespace=ns, name=pod, uid=pod, node_name=LOCAL_NODE),
            local={envvars.CONFIG_PATH: str(config_file), envvars.METRICS_PORT: str(free_port())},
            extra={
                "PATH": os.environ.get("PATH", ""),
                "KUBECONFIG": cluster.kubeconfig,
                envvars.PODRUNNER_ROOT: str(root),
                # the operator under test runs without journal/redis settings
                envvars.JOURNAL_DSN: postgres.dsn,
                envvars.REDIS_URL: redis_server.url,
                **(extra_env or {}),
            },
        )

    return BotSetup(cluster, ns, leases, env, bot_name)


def _mounts_configmap(deployment: dict[str, Any], name: str) -> bool:
    volumes = deployment["spec"]["template"]["spec"].get("volumes") or []
    return any((v.get("configMap") or {}).get("name") == name for v in volumes)


@dataclass(frozen=True)
class RuntimeEnv:
    """What a test of runtime processes stands on: the cluster with the CRDs and the real
    operator running, PostgreSQL, Redis and the test's scratch directory."""

    cluster: Cluster
    postgres: Postgres
    redis: Redis
    tmp_path: Path

    def setup_bot(self, ns: str, sim_url: str, **options: Any) -> BotSetup:
        """``setup_bot`` in this environment (the same keyword options)."""
        return setup_bot(
            self.cluster, ns, sim_url, self.postgres, self.redis, self.tmp_path, **options
        )


@contextmanager
def run_runtimes(setup: BotSetup, tmp_path: Path, *pods: str) -> Iterator[dict[str, Runtime]]:
    runtimes = {p: Runtime(p, setup.env(p), tmp_path / f"{p}.log") for p in pods}
    try:
        yield runtimes
    finally:
        for rt in runtimes.values():
            if rt.proc.poll() is None:
                rt.proc.send_signal(signal.SIGCONT)  # a stopped process cannot handle SIGTERM
                rt.proc.send_signal(signal.SIGTERM)
        for rt in runtimes.values():
            try:
                rt.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                rt.proc.kill()
                rt.proc.wait()
        print({rt.name: rt.proc.returncode for rt in runtimes.values()})
