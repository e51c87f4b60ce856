"""``make demo``: the whole system running locally with sample bots trading on the
exchange simulator, until Ctrl-C.

Samples come from manifests/samples/ (paper-simulator.yaml, sandbox-vault.yaml) plus
devenv/samples/*.yaml, with demo-only overlays: every ExchangeAccount's endpoint is the local
simulator, the paper account gets simulator keys from a Kubernetes Secret (development
only: the operator flags it with a Warning condition) so its orders reach the simulator,
the sandbox account's keys are written into OpenBao (the operator then writes each bot's
Vault policy and role with its own token), and every bot is placed on the pod runner's
node.
"""

from __future__ import annotations

import argparse
import copy
import re
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any

import hvac
import yaml

from devenv import openbao
from devenv.procs import REPO_ROOT, DevenvError
from devenv.progress import Progress
from devenv.stack import STEPS, Stack, StackConfig, leftover_processes, running
from tradebot_contracts.names import CREDENTIALS_SECRET_LABEL, vault_role_name

NAMESPACE = "trading"
SAMPLES = REPO_ROOT / "manifests" / "samples"
DEMO_DIR = Path(__file__).resolve().parent / "samples"
SAMPLE_FILES = (SAMPLES / "paper-simulator.yaml", SAMPLES / "sandbox-vault.yaml")
PAPER_SECRET = "binance-sim-keys"
PAPER_SIM_ACCOUNT = "paper"
VAULT_SIM_ACCOUNT = "sandbox"
FIRST_RUN = "first run: ~15-25 min (builds the control plane from Go modules); later: ~1-2 min"
DEMO_STEPS = STEPS + 3
DEMO_TIMEFRAMES = {"sma-fast": "5s", "rsi-swing": "5s"}
"""The samples' candle timeframes are sized for real markets; the runtime closes bars on
the wall clock, so the demo shortens them (5 s bars are built from the trade stream) to
see crossovers within a minute or two."""
DEMO_GRIDS = {"grid-eth": "ETHUSDT"}
"""Grid strategies re-centred on the simulator's current price (+-5 %) at apply time."""


def _load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def demo_objects(stack: Stack) -> list[dict[str, Any]]:
    """Sample objects with the demo overlays applied (see the module docstring)."""
    docs: list[dict[str, Any]] = []
    for path in (*SAMPLE_FILES, *sorted(DEMO_DIR.glob("*.yaml"))):
        docs.extend(copy.deepcopy(_load(path)))
    paper = stack.simulator.account(PAPER_SIM_ACCOUNT)
    prices = stack.simulator.admin("prices")
    out: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": PAPER_SECRET,
                "namespace": NAMESPACE,
                "labels": {CREDENTIALS_SECRET_LABEL: "true"},
            },
            "type": "Opaque",
            "stringData": {"apiKey": paper.api_key, "secret": paper.secret},
        }
    ]
    for doc in docs:
        doc.setdefault("metadata", {})["namespace"] = NAMESPACE
        kind, spec = doc["kind"], doc.setdefault("spec", {})
        if kind == "ExchangeAccount":
            spec["endpoint"] = stack.simulator.url
            if not spec.get("credentials"):
                spec["credentials"] = {"secretRef": {"name": PAPER_SECRET}}
        elif kind == "Strategy" and doc["metadata"]["name"] in DEMO_TIMEFRAMES:
            spec["timeframe"] = DEMO_TIMEFRAMES[doc["metadata"]["name"]]
        elif kind == "Strategy" and doc["metadata"]["name"] in DEMO_GRIDS:
            price = Decimal(prices[DEMO_GRIDS[doc["metadata"]["name"]]])
            spec["parameters"]["lower"] = str((price * Decimal("0.95")).quantize(Decimal(1)))
            spec["parameters"]["upper"] = str((price * Decimal("1.05")).quantize(Decimal(1)))
        elif kind == "TradingBot":
            runtime = spec.setdefault("runtime", {})
            runtime.update(stack.runner.placement())
            spec.setdefault("onDelete", "cancelOrders")
            if doc["metadata"]["name"] == "testnet-rsi":
                spec["replicas"] = 1  # two cores: one standby pair is enough for the demo
        out.append(doc)
    return out


def setup_vault(stack: Stack, objects: list[dict[str, Any]]) -> list[str]:
    """Write the sandbox simulator account's keys where each vault-backed ExchangeAccount
    expects them (what an installation's secret owner does once). The per-bot policy and
    Kubernetes-auth role are the operator's job: it writes them with its own token."""
    sandbox = stack.simulator.account(VAULT_SIM_ACCOUNT)
    values = {"apiKey": sandbox.api_key, "secret": sandbox.secret}
    written = []
    for doc in objects:
        vault = (doc.get("spec", {}).get("credentials") or {}).get("vault")
        if doc["kind"] == "ExchangeAccount" and vault:
            keys = {"apiKey": "apiKey", "secret": "secret", **vault.get("keys", {})}
            mount = vault.get("mount", "secret")
            openbao.put_secret(
                stack.vault, vault["path"], {keys[c]: values[c] for c in values}, mount=mount
            )
            written.append(f"{mount}/{vault['path']} (keys {', '.join(sorted(keys.values()))})")
    return written


def operator_grants(stack: Stack) -> list[str]:
    """The policies and Kubernetes-auth roles the operator wrote for the demo's bots."""
    admin = stack.vault.admin()
    grants = []
    for doc in bots(stack):
        name = vault_role_name(NAMESPACE, doc["metadata"]["name"])
        try:
            role = admin.auth.kubernetes.read_role(name, mount_point="kubernetes")
            rules = admin.sys.read_policy(name=name)["data"]["rules"]
        except hvac.exceptions.InvalidPath:
            continue
        paths = re.findall(r'path "([^"]+/data/[^"]+)"', str(rules))
        sa = ",".join(role.get("bound_service_account_names") or [])
        grants.append(f"{name}: ServiceAccount {NAMESPACE}/{sa} may read {', '.join(paths)}")
    return grants


def bots(stack: Stack) -> list[dict[str, Any]]:
    return list(stack.kube.get("tradingbots", "-n", NAMESPACE).get("items", []))


def trading_report(stack: Stack) -> dict[str, str]:
    """Per bot: what it is doing right now (leader, orders at the simulator)."""
    ledger = stack.simulator.ledger().get("accounts", {})
    report = {}
    for bot in bots(stack):
        name = bot["metadata"]["name"]
        status = bot.get("status") or {}
        exchanges = status.get("exchanges") or {}
        parts = [f"phase={status.get('phase', '-')}"]
        ready: dict[str, Any] = next(
            (c for c in status.get("conditions") or [] if c["type"] == "Ready"), {}
        )
        if status.get("phase") != "Running" and ready.get("reason"):
            parts.append(f"({ready['reason']}: {ready.get('message', '')})")
        for account, ex in exchanges.items():
            parts.append(
                f"{account}: leader={ex.get('leader') or '-'} open={ex.get('openOrders', 0)}"
                f" pnl={ex.get('realizedPnl', '-')}/{ex.get('unrealizedPnl', '-')}"
            )
        report[name] = " ".join(parts)
    for account, summary in ledger.items():
        report[f"simulator:{account}"] = (
            f"orders={summary.get('orders', 0)} open={summary.get('open_orders', 0)}"
            f" trades={summary.get('trades', 0)} duplicates={summary.get('duplicate_intents', 0)}"
        )
    return report


def not_running(bot: dict[str, Any]) -> str | None:
    """Why a bot is not Running with Ready True for its current spec (None when it is):
    phase, the Ready condition's reason and message, and what its runtime reports."""
    meta, status = bot.get("metadata") or {}, bot.get("status") or {}
    phase = status.get("phase") or "no status yet"
    conditions = status.get("conditions") or []
    ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
    exchanges = status.get("exchanges") or {}
    current = status.get("observedGeneration") == meta.get("generation")
    leaders = bool(exchanges) and all(ex.get("leader") for ex in exchanges.values())
    if phase == "Running" and ready.get("status") == "True" and current and leaders:
        return None
    parts = [f"phase {phase}"]
    if ready:
        parts.append(f"Ready={ready.get('status')} {ready.get('reason')}: {ready.get('message')}")
    if status and not current:
        parts.append(f"status is for generation {status.get('observedGeneration')}, "
                     f"spec is {meta.get('generation')}")  # fmt: skip
    for account, ex in exchanges.items():
        if not ex.get("leader"):
            parts.append(f"{account}: no leader")
        if ex.get("message"):
            parts.append(f"{account} runtime {ex.get('state', '-')}: {ex['message']}")
    return "; ".join(parts)


def not_ready(stack: Stack) -> dict[str, str]:
    """What the demo still waits for: bot (or simulator account) -> why. Empty once every
    bot is Running (Ready True, a leader per account) and the paper account has orders."""
    items = bots(stack)
    waiting = {} if items else {"bots": "no TradingBot found"}
    for bot in items:
        why = not_running(bot)
        if why is not None:
            waiting[bot["metadata"]["name"]] = why
    ledger = stack.simulator.ledger().get("accounts", {})
    for account in (PAPER_SIM_ACCOUNT,):
        if ledger.get(account, {}).get("orders", 0) <= 0:
            waiting[f"simulator:{account}"] = "no order received yet"
    return waiting


def is_trading(stack: Stack) -> bool:
    """Every bot is Running (Ready True, a leader per account) and the paper account has
    accepted orders."""
    return not not_ready(stack)


_PORTS = re.compile(r"pod (?P<ref>\S+): volumes ready, ports (?P<ports>.*?), logs in")


def metrics_urls(stack: Stack, namespace: str = NAMESPACE) -> dict[str, str]:
    """Running pod -> base URL of its metrics port (the runner maps containerPorts to
    free local ports and logs the mapping)."""
    pods = {f"{namespace}/{pod['metadata']['name']}"
            for pod in stack.kube.get("pods", "-n", namespace)["items"]
            if pod.get("status", {}).get("phase") == "Running"
            and not pod["metadata"].get("deletionTimestamp")}  # fmt: skip
    urls = {}
    for match in _PORTS.finditer(stack.runner.log.read_text(errors="replace")):
        ref = match["ref"]
        for pair in match["ports"].split(", "):
            container_port, _, local = pair.partition("->")
            if ref in pods and container_port == "9090" and local:
                urls[ref] = f"http://127.0.0.1:{local}"
    return urls


def write_env(stack: Stack) -> Path:
    """A shell file that puts the demo's kubectl, kubeconfig and URLs in a shell."""
    path = stack.state / "env.sh"
    kubectl_dir = Path(stack.kube.kubectl_bin).parent
    path.write_text(
        f'export KUBECONFIG="{stack.kube.kubeconfig}"\n'
        f'export PATH="{kubectl_dir}:$PATH"\n'
        f'export SIM="{stack.simulator.url}"\n'
        f'export VAULT_ADDR="{stack.vault.addr}" VAULT_TOKEN="{stack.vault.root_token}"\n'
    )
    return path


def guide(stack: Stack) -> str:
    env = write_env(stack)
    logs = stack.runner.logs_dir
    lease = stack.config.lease_duration_seconds or 6
    urls = metrics_urls(stack)
    metrics = (
        "\n".join(
            f"    curl -s {url}/metrics | grep ^trading_   # {pod}"
            for pod, url in sorted(urls.items())
        )
        or f"    (no runtime pod running yet; ports are logged in {stack.runner.log})"
    )
    leader = "kubectl get tb paper-btc-eth -o jsonpath='{.status.summary.leader}'"
    halt = """'{"spec":{"tradingState":"Halted"}}'"""
    rsi_policy = vault_role_name(NAMESPACE, "testnet-rsi")
    return f"""
Everything is running. In another terminal:

  source {env}    # KUBECONFIG, kubectl on PATH, $SIM (simulator), $VAULT_ADDR
  kubectl config set-context --current --namespace {NAMESPACE}

Watch the bots (LEADER, PHASE, PNL):
    kubectl get tradingbots -o wide -w
    kubectl get tb paper-btc-eth -o yaml      # status.exchanges: leader, open orders, PnL
    kubectl get leases                        # one Lease per shard; holder = active pod
Kill the leader; the standby takes its Lease within ~{lease}s and trades on:
    kubectl delete pod $({leader})
    curl -s $SIM/admin/ledger                 # duplicate_intents stays 0
Flip the kill switch (applied live, no restart; back with "Active"):
    kubectl patch tb paper-btc-eth --type merge -p {halt}
    kubectl patch xa binance-sim --type merge -p {halt}    # the whole account
Watch PnL and the market:
    kubectl get tb -o custom-columns=BOT:.metadata.name,PNL:.status.pnl -w
    curl -s $SIM/admin/prices; curl -s $SIM/admin/ledger/paper
Read metrics (each pod's port 9090 is mapped to a local port):
{metrics}
Vault: the operator (its own token: policy tradebot-operator only) wrote a policy and a
    Kubernetes-auth role per bot; the sandbox bot (testnet-rsi) logs in to OpenBao with
    its ServiceAccount token and reads secret/tradebot/trading/binance-testnet:
    {stack.vault.addr} (root token {stack.vault.root_token})
    curl -s -H "X-Vault-Token: $VAULT_TOKEN" $VAULT_ADDR/v1/sys/policy/{rsi_policy}

Logs:
    runtime pods  {logs}/<namespace>_<pod>_<uid>/runtime/<restart>.log
    operator      {stack.operator.log}
    pod runner    {stack.runner.log}
    simulator     {stack.simulator.log}
    everything    {stack.state}

Note: the paper account's simulator keys come from the Kubernetes Secret {PAPER_SECRET!r}:
development only. The operator says so on ExchangeAccount binance-sim (condition
CredentialsReady, reason SecretRefDevelopmentOnly); real accounts use vault, like
binance-testnet here.

Press Ctrl-C to stop: every process the demo started is stopped and the cluster deleted.
"""


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    # One Ctrl-C stops the demo; further ones must not interrupt the cleanup.
    signal.signal(signal.SIGINT, _ignore_during_cleanup)
    signal.signal(signal.SIGTERM, _ignore_during_cleanup)
    raise _Stop


def _ignore_during_cleanup(signum: int, frame: FrameType | None) -> None:
    print("\n[demo] still cleaning up; please wait (no process will be left behind)",
          file=sys.stderr, flush=True)  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m devenv demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--name", default="tradebot-demo", help="cluster name (default tradebot-demo)")
    p.add_argument("--state", type=Path, default=None, help="state dir (default .state/<name>)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--tick-interval", type=float, default=0.5, help="simulator wall s per step")
    p.add_argument(
        "--step-seconds", type=float, default=None,
        help="simulator market seconds per step (default: real time; bars close on the wall clock)",
    )  # fmt: skip
    p.add_argument("--simulator-port", type=int, default=0)
    p.add_argument("--postgres-port", type=int, default=0)
    p.add_argument("--redis-port", type=int, default=0)
    p.add_argument("--openbao-port", type=int, default=0)
    p.add_argument(
        "--trade-timeout", type=float, default=180,
        help="wait for orders and for every bot to be Running (s)",
    )  # fmt: skip
    p.add_argument(
        "--exit-when-ready", action="store_true",
        help="stop and clean up once the bots trade (a smoke test of the demo)",
    )  # fmt: skip
    return p.parse_args(argv)


def _wait_for_trading(stack: Stack, p: Progress, timeout: float) -> bool:
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        try:
            if is_trading(stack):
                return True
            report = trading_report(stack)
        except DevenvError as exc:
            report = {"error": str(exc)}
        line = "; ".join(f"{k} {v}" for k, v in report.items())
        if line != last:
            p.detail(line)
            last = line
        time.sleep(3)
    return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    state = args.state or REPO_ROOT / ".state" / args.name
    config = StackConfig(
        name=args.name, state=state, seed=args.seed, tick_interval=args.tick_interval,
        step_seconds=args.step_seconds, simulator_port=args.simulator_port or None,
        postgres_port=args.postgres_port or None, redis_port=args.redis_port or None,
        openbao_port=args.openbao_port or None,
    )  # fmt: skip
    p = Progress(DEMO_STEPS)
    p.say(f"tradebot demo: {DEMO_STEPS} steps; {FIRST_RUN}")
    p.say(f"state and logs: {state.resolve()}")
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    code = 0
    try:
        with running(config, p) as stack:
            try:
                code = _demo(stack, p, args)
            finally:
                signal.signal(signal.SIGINT, _ignore_during_cleanup)
                signal.signal(signal.SIGTERM, _ignore_during_cleanup)
                p.say("stopping: operator, pod runner (and its pods), simulator, OpenBao, "
                      "Redis, PostgreSQL, cluster ...")  # fmt: skip
    except _Stop:
        pass
    except DevenvError as exc:
        p.say(f"error: {exc}")
        code = 1
    left = leftover_processes(state)
    if left:
        p.say(f"WARNING: processes still running under {state}: {left}")
        return 1
    p.say(f"stopped; no process left behind (after {p.elapsed():.0f}s)")
    return code


def _demo(stack: Stack, p: Progress, args: argparse.Namespace) -> int:
    with p.step(f"Sample bots in namespace {NAMESPACE!r} (+ their keys in OpenBao)"):
        stack.kube.ensure_namespace(NAMESPACE, {"pod-security.kubernetes.io/enforce": "restricted"})
        objects = demo_objects(stack)
        for secret in setup_vault(stack, objects):
            p.detail(f"OpenBao secret {secret}")
        stack.kube.apply(objects)
        for doc in objects:
            p.detail(f"{doc['kind']}/{doc['metadata']['name']}")
    with p.step(f"Waiting until the bots trade and are Running (up to {args.trade_timeout:.0f}s)"):
        traded = _wait_for_trading(stack, p, args.trade_timeout)
        for line in trading_report(stack).items():
            p.detail(" ".join(line))
        for grant in operator_grants(stack):
            p.detail(f"OpenBao policy+role written by the operator: {grant}")
        if not traded:
            p.say(f"after {args.trade_timeout:.0f}s, still not Running or not trading:")
            for name, why in not_ready(stack).items():
                p.say(f"  {name}: {why}")
            stays = "" if args.exit_when_ready else "; the demo stays up so you can look"
            p.say(f"runtime logs in {stack.runner.logs_dir}, operator log in "
                  f"{stack.operator.log}{stays}")  # fmt: skip
    with p.step("Status"):
        out = stack.kube.kubectl("get", "tradingbots", "-n", NAMESPACE, "-o", "wide")
        print(out.stdout, flush=True)
    print(guide(stack), flush=True)
    if args.exit_when_ready:
        return 0 if traded else 2
    while True:
        time.sleep(3600)
