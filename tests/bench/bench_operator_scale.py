"""Operator scale benchmark: N TradingBots applied at once -> time until every bot is
reconciled (every child applied, status written), next to the API server's raw write rate
measured in the same run with a plain client creating the same objects.

    .venv/bin/python tests/bench/bench_operator_scale.py --bots 100 300 1000 [--idle 60]
        [--settle 15] [--profile /tmp/operator.txt|.svg]   # py-spy raw stacks or flamegraph

Starts its own local cluster (hack/cluster.sh, name tradebot-bench) and the operator as a
real process; prints one line per size and a markdown table for tests/bench/RESULTS.md.
"Reconciled" means condition Reconciled=True for the current generation. Bots are created
suspended: the operator still applies every child (ServiceAccount, RBAC, ConfigMap, Leases,
Service, Deployment at 0 replicas, ...), but no pods are created in either phase, so the
figures measure the operator and the API server rather than kwok's pod churn (which, at
thousands of fake pods on 2 cores, takes minutes by itself). Ready needs runtime heartbeats
and is measured by the end-to-end benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config, watch

REPO = Path(__file__).resolve().parents[2]
STATE = REPO / ".state" / "tradebot-bench"
sys.path.insert(0, str(REPO / "tests"))

from support.objects import account, bot, strategy  # noqa: E402
from support.operator import TEST_TENANCY  # noqa: E402
from tradebot_contracts.names import LABEL_MANAGED_BY  # noqa: E402
from tradebot_operator.api import ExchangeAccount, Strategy, TradingBot  # noqa: E402
from tradebot_operator.builders import desired  # noqa: E402
from tradebot_operator.settings import OperatorSettings  # noqa: E402

GROUP, VERSION = "tradebot.io", "v1alpha1"
LIVENESS = "http://127.0.0.1:18088/healthz"


def sh(*args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout


def cluster_up() -> str:
    cluster_down()  # a fresh cluster for every run
    env = {**os.environ, "TRADEBOT_CLUSTER_NAME": "tradebot-bench", "TRADEBOT_STATE": str(STATE)}
    return sh("bash", str(REPO / "hack" / "cluster.sh"), "up", env=env).strip().splitlines()[-1]


def cluster_down() -> None:
    env = {**os.environ, "TRADEBOT_CLUSTER_NAME": "tradebot-bench", "TRADEBOT_STATE": str(STATE)}
    subprocess.run(
        ["bash", str(REPO / "hack" / "cluster.sh"), "down"],
        env=env,
        check=False,
        capture_output=True,
    )


def rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pids() -> list[int]:
    """kube-apiserver and etcd of the bench cluster (their CPU is the write cost)."""
    bins = STATE / "kwok" / "clusters" / "tradebot-bench" / "bin"
    wanted = {str(bins / "kube-apiserver"), str(bins / "etcd")}
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv0 = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode()
            except OSError:
                continue
            if argv0 in wanted:
                pids.append(int(proc.name))
    return pids


def server_cpu() -> float:
    return sum(cpu_seconds(pid) for pid in server_pids())


async def create_all(api: client.ApiClient, objs: list[dict[str, Any]], concurrency: int) -> float:
    """Create objects with a plain client, `concurrency` in flight; returns seconds."""
    dyn = client.CustomObjectsApi(api)
    slots = asyncio.Semaphore(concurrency)

    async def one(obj: dict[str, Any]) -> None:
        ns = obj["metadata"]["namespace"]
        group, _, version = obj["apiVersion"].rpartition("/")
        async with slots:
            if obj["apiVersion"].startswith(GROUP):
                plural = {
                    "TradingBot": "tradingbots",
                    "Strategy": "strategies",
                    "ExchangeAccount": "exchangeaccounts",
                }[obj["kind"]]
                await dyn.create_namespaced_custom_object(GROUP, VERSION, ns, plural, obj)
            else:
                path = f"/api/{version}" if not group else f"/apis/{group}/{version}"
                plural = obj["kind"].lower() + ("es" if obj["kind"].endswith("s") else "s")
                if obj["kind"] == "PodDisruptionBudget":
                    plural = "poddisruptionbudgets"
                await api.call_api(
                    f"{path}/namespaces/{ns}/{plural}",
                    "POST",
                    body=obj,
                    header_params={"Content-Type": "application/json"},
                    auth_settings=["BearerToken"],
                    _return_http_data_only=True,
                )

    start = time.perf_counter()
    await asyncio.gather(*(one(o) for o in objs))
    return time.perf_counter() - start


def children_of(
    bots: list[dict[str, Any]], strat: dict[str, Any], acct: dict[str, Any]
) -> list[dict[str, Any]]:
    """What the operator would create, for the raw-write baseline (owner refs dropped).

    Leases lose the managed-by label too: the operator watches labelled Leases, and
    seeing the baseline's would have it work (on the same cores) during the raw phase.
    """
    out: list[dict[str, Any]] = []
    settings = OperatorSettings()
    s = Strategy.model_validate(strat)
    a = ExchangeAccount.model_validate(acct)
    for b in bots:
        raw = json.loads(json.dumps(b))
        raw["metadata"]["uid"] = "00000000-0000-4000-8000-000000000000"
        for child in desired(TradingBot.model_validate(raw), s, {a.metadata.name: a}, settings):
            child["metadata"].pop("ownerReferences", None)
            if child["kind"] == "Lease":
                child["metadata"].get("labels", {}).pop(LABEL_MANAGED_BY, None)
            out.append(child)
    return out


async def namespace(api: client.ApiClient, name: str) -> None:
    await client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})


def reconciled(item: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Reconciled"
        and c["status"] == "True"
        and c.get("observedGeneration") == item["metadata"]["generation"]
        for c in (item.get("status") or {}).get("conditions", [])
    )


async def wait_reconciled(api: client.ApiClient, ns: str, n: int) -> None:
    """Until every one of the n bots in `ns` has been seen Reconciled (through a watch)."""
    dyn = client.CustomObjectsApi(api)
    done: set[str] = set()
    while True:  # the server ends a watch after timeout_seconds: open it again
        async with watch.Watch().stream(
            dyn.list_namespaced_custom_object, GROUP, VERSION, ns, "tradingbots",
            timeout_seconds=120,
        ) as stream:  # fmt: skip
            async for event in stream:
                obj = event["object"]
                name = obj["metadata"]["name"]
                if event["type"] != "DELETED" and reconciled(obj):
                    done.add(name)
                else:
                    done.discard(name)
                if len(done) == n:
                    return


async def run_size(api: client.ApiClient, n: int, pid: int) -> dict[str, Any]:
    ns_raw, ns_op = f"raw-{n}", f"op-{n}"
    await namespace(api, ns_raw)
    await namespace(api, ns_op)
    acct, strat = account(), strategy()
    for obj in (acct, strat):
        obj["metadata"]["namespace"] = ns_op
    bots = [bot(f"b{i:04d}", suspend=True) for i in range(n)]
    for b in bots:
        b["metadata"]["namespace"] = ns_op

    # Baseline: the same children created by a plain client (the API server's write ceiling).
    raw_children = children_of(bots, strat, acct)
    for child in raw_children:
        child["metadata"]["namespace"] = ns_raw
    server_before = server_cpu()
    raw_seconds = await create_all(api, raw_children, concurrency=16)
    raw_rate = len(raw_children) / raw_seconds
    raw_server_cpu = server_cpu() - server_before

    # The operator: apply account, strategy and N bots; wait until all are Reconciled.
    await create_all(api, [acct, strat], 2)
    cpu_before = cpu_seconds(pid)
    server_before = server_cpu()
    # Watched, not polled: LISTing 1,000 bots several times a second would load the API
    # server (the system under test) in the operator phase only.
    watching = asyncio.create_task(wait_reconciled(api, ns_op, n))
    await asyncio.sleep(0.5)  # the watch is open before the first bot exists
    start = time.perf_counter()
    await create_all(api, bots, concurrency=16)
    try:
        await asyncio.wait_for(watching, 600)
    except TimeoutError:
        raise SystemExit(f"not every one of {n} bots reconciled after 600 s") from None
    op_seconds = time.perf_counter() - start
    op_server_cpu = server_cpu() - server_before
    children = len(raw_children)
    op_rate = children / op_seconds
    return {
        "bots": n,
        "children": children,
        "operator_s": op_seconds,
        "raw_s": raw_seconds,
        "operator_writes_per_s": op_rate,
        "raw_writes_per_s": raw_rate,
        "ratio": op_rate / raw_rate,
        "operator_cpu_s": cpu_seconds(pid) - cpu_before,
        "rss_peak_mb": rss_peak_mb(pid),
        # API server + etcd CPU-s per phase: what the writes cost the server, independent
        # of what else the (shared) machine runs
        "raw_server_cpu_s": raw_server_cpu,
        "operator_server_cpu_s": op_server_cpu,
    }


def start_operator(kubeconfig: str) -> subprocess.Popen[bytes]:
    sh(
        str(REPO / ".venv/bin/python"),
        "-m",
        "tradebot_operator.crdgen",
        "--check",
        "--out",
        str(REPO / "crds"),
    )
    kubectl = f'"$(bin_path kubectl)" --kubeconfig {kubeconfig}'
    sh(
        "bash",
        "-c",
        f"source {REPO}/hack/lib.sh && {kubectl} apply --server-side -f "
        f"{REPO}/crds/ && {kubectl} wait --for=condition=Established crd --all --timeout=60s",
    )
    log = STATE / "operator-bench.log"
    env = {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "TRADEBOT_LIVENESS_ENDPOINT": LIVENESS,
        "TRADEBOT_TENANCY": json.dumps(TEST_TENANCY),  # the sample account's loopback endpoint
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tradebot_operator"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    for _ in range(120):
        try:
            urllib.request.urlopen(LIVENESS, timeout=1)
            return proc
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"operator did not start; see {log}")


async def measure(
    kubeconfig: str, sizes: list[int], idle: float, pid: int, settle: float = 15
) -> None:
    cfg = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    cfg.connection_pool_maxsize = 32
    async with client.ApiClient(cfg) as api:
        rows = []
        for n in sizes:
            row = await run_size(api, n, pid)
            rows.append(row)
            print(
                f"{n} bots: {row['children']} children; operator {row['operator_s']:.1f}s "
                f"({row['operator_writes_per_s']:.0f} writes/s) vs raw {row['raw_s']:.1f}s "
                f"({row['raw_writes_per_s']:.0f} writes/s) ratio {row['ratio']:.2f}; "
                f"operator peak RSS {row['rss_peak_mb']:.0f} MB, "
                f"operator CPU {row['operator_cpu_s']:.1f} s; API server+etcd CPU "
                f"{row['operator_server_cpu_s']:.1f} s (operator phase) vs "
                f"{row['raw_server_cpu_s']:.1f} s (raw); load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        if idle:
            # Let the trailing work of the last size finish (Events are posted in the
            # background, kopf's per-object workers exit after their idle timeout).
            await asyncio.sleep(settle)
            before = cpu_seconds(pid)
            await asyncio.sleep(idle)
            used = cpu_seconds(pid) - before
            print(
                f"idle: {used:.2f} CPU-s over {idle:.0f}s ({100 * used / idle:.1f}% of one "
                f"core) with {sum(sizes)} bots",
                flush=True,
            )
    print("\n| bots | children | operator s | raw s | operator/raw | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['bots']} | {r['children']} | {r['operator_s']:.1f} | {r['raw_s']:.1f} "
            f"| {r['ratio']:.2f} | {r['rss_peak_mb']:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bots", type=int, nargs="+", default=[100])
    parser.add_argument("--idle", type=float, default=0, help="seconds of idle CPU sampling")
    parser.add_argument(
        "--settle", type=float, default=15, help="seconds to wait before the idle sampling"
    )
    parser.add_argument("--keep", action="store_true", help="leave the bench cluster running")
    parser.add_argument(
        "--profile", type=Path, help="record the operator with py-spy into this SVG"
    )
    args = parser.parse_args()
    print("starting the bench cluster ...", flush=True)
    kubeconfig = cluster_up()
    proc = start_operator(kubeconfig)
    spy = None
    if args.profile:  # sampling profiler attached to the running operator (no code change)
        spy = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(proc.pid),
             "--rate", "50", "--format", "raw" if args.profile.suffix == ".txt" else "flamegraph",
             "-o", str(args.profile)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        asyncio.run(measure(kubeconfig, args.bots, args.idle, proc.pid, args.settle))
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes the SVG on SIGINT
            spy.wait(60)
        proc.terminate()
        proc.wait(15)
        if not args.keep:
            cluster_down()


if __name__ == "__main__":
    main()
