"""Dependency outages while real runtime processes trade (issue 9, chaos).

Each test stops one dependency of `python -m tradebot_runtime` processes (rendered by
the real operator, trading through the simulator) and checks the documented behaviour
against the simulator's ledger, the journal and the runtime's own metrics:

* PostgreSQL restarted mid-trading: no order at the exchange without a journal entry,
  trading resumes on the same process once the journal is back.
* Redis down: the conservative local share of the account's budget (metric
  ``tradebot_ratelimit_local_fallback`` 1) and 0 rate-limit violations at the exchange
  at full demand; Redis back: the shared budget again (metric 0).
* API server stopped: leaders stop sending before their Lease expires (nothing accepted
  later than the last possible renewal + lease duration), epochs never interleave,
  trading resumes when it is back.
* OpenBao down: cached credentials until the Vault token expires, then no private calls,
  fail closed and reported (metric, heartbeat); recovery when it is back.

Every destructive part runs on a dedicated instance (its own PostgreSQL, Redis, OpenBao,
and its own small cluster for the API-server stop), so the session fixtures stay healthy.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chaos_invariants import (
    alive,
    assert_invariants,
    epochs_in_exchange_order,
    interleaved_epochs,
    journal_snapshot,
    metric,
    problems,
    wait_for,
)

from devenv import openbao as devenv_openbao
from devenv import postgres as devenv_postgres
from devenv import redis as devenv_redis
from support.chaos import scaled
from support.cluster import Cluster
from support.crds import FIELD_MANAGER, crd_files, crd_names
from support.objects import apply, bot, get
from support.operator import OperatorProcess, _operator
from support.procs import HACK, REPO_ROOT, free_port, hack_bin
from support.runtimes import (
    SIM_ACCOUNT,
    BotSetup,
    Runtime,
    RuntimeEnv,
    http_json,
    ledger,
    run_runtimes,
    setup_bot,
    simulator_process,
)
from support.servers import Postgres, Redis
from tradebot_contracts import env
from tradebot_contracts.heartbeat import heartbeat_from_annotations
from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_contracts.runtime_config import (
    CONFIG_KEY,
    CREDENTIALS_DIR,
    CredentialsConfig,
    RuntimeConfig,
    VaultCredentials,
)
from tradebot_operator.builders.vault_policy import SecretPath, policy_hcl
from tradebot_runtime.ratelimit import SAFETY

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


def _orders(sim_url: str) -> list[dict[str, Any]]:
    return list(ledger(sim_url)["orders"])


def _orders_after(sim_url: str, since_ms: float) -> int:
    return sum(1 for o in _orders(sim_url) if o["time"] > since_ms)


def _now_ms() -> float:
    return time.time() * 1000


# -- PostgreSQL restarted mid-trading -----------------------------------------------------


def _pg_ctl(pg: Postgres, workdir: Path, *args: str) -> None:
    bins = devenv_postgres.bindir()
    cmd = [str(bins / "pg_ctl"), "-D", str(workdir / "data"), *args]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"pg_ctl {args[0]}: {proc.stderr}"


def test_postgres_restart_mid_trading(
    crds_installed: Cluster,
    operator_process: OperatorProcess,
    redis_server: Redis,
    tmp_path: Path,
) -> None:
    cluster = crds_installed
    workdir = Path(tempfile.mkdtemp(prefix="tradebot-pg-chaos-"))
    outage_s = scaled(6, 20)
    try:
        with (
            devenv_postgres.running(workdir) as pg,
            simulator_process(tmp_path) as sim_url,
        ):
            ns = cluster.namespace("pgchaos")
            setup = setup_bot(cluster, ns, sim_url, pg, redis_server, tmp_path)
            with run_runtimes(setup, tmp_path, "pg-a") as runtimes:
                rt = runtimes["pg-a"]
                wait_for(lambda: len(_orders(sim_url)) >= 3, 90, "first orders", runtimes)
                for _round in range(scaled(1, 3)):
                    # immediate: like a crash (no checkpoint, connections cut)
                    _pg_ctl(pg, workdir, "-m", "immediate", "stop")
                    stopped = _now_ms()
                    # the outage is reported through the heartbeat (bot status), not hidden
                    wait_for(lambda: _journal_reported(setup), outage_s,
                             "journal outage in the heartbeat", runtimes)  # fmt: skip
                    time.sleep(max(0.0, outage_s - (_now_ms() - stopped) / 1000))
                    alive(runtimes)
                    # nothing reached the exchange that the journal does not hold
                    sent_while_down = _orders_after(sim_url, stopped)
                    opts = (f"-p {pg.port} -k {workdir} -c listen_addresses=127.0.0.1 "
                            "-c fsync=on -c max_connections=200")  # fmt: skip
                    _pg_ctl(pg, workdir, "-l", str(workdir / "postgres.log"), "-o", opts,
                            "-w", "start")  # fmt: skip
                    back = _now_ms()
                    print(f"postgres down {outage_s}s: {sent_while_down} orders accepted "
                          "meanwhile (journaled before the crash)")  # fmt: skip
                    found = problems(sim_url, pg.dsn, setup.bot_id, settled=False)
                    assert not found, "\n".join(found)
                    # trading resumes on the same process
                    wait_for(lambda: _orders_after(sim_url, back) >= 2, 60,  # noqa: B023
                             "orders after the restart", runtimes)  # fmt: skip
                    wait_for(lambda: not _journal_reported(setup), 30,
                             "the outage report cleared", runtimes)  # fmt: skip
                assert_invariants(sim_url, pg.dsn, setup.bot_id)
                orders, _ = journal_snapshot(pg.dsn, setup.bot_id)
                assert {o["clientOrderId"] for o in _orders(sim_url)} <= set(orders)
                assert rt.metric("tradebot_leader", shard="0") == 1.0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _journal_reported(setup: BotSetup) -> bool:
    return "journal unreachable" in _heartbeat_message(setup.cluster, setup.ns, setup.leases[0])


# -- Redis down ---------------------------------------------------------------------------

BUDGET_UNITS = 240  # the account's budget in ccxt units per minute (binance: 5 weight each)
WEIGHT_LIMIT = 1200  # the exchange's limit: one budget (x SAFETY) fits, two do not


def _violations(sim_url: str) -> int:
    summary = http_json(f"{sim_url}/admin/ledger")
    total = summary["accounts"][SIM_ACCOUNT]["rate_limit_violations"]
    return int(total) + sum(v["violations"] for v in summary["unattributed_rate_limit"].values())


BINANCE_WEIGHT_PER_UNIT = 5  # ccxt's binance costs are request weight / 5
BURST_WEIGHT = 25  # a local share's bucket holds at least the largest request (5 units)


def _account_weight(sim_url: str) -> tuple[float, int, int]:
    """(time, minute, weight the exchange charged the account's key this minute)."""
    now = time.time()
    buckets = http_json(f"{sim_url}/admin/ratelimits")
    used = sum(b["used_weight_1m"] for k, b in buckets.items() if k.startswith("key:"))
    return now, int(now // 60), int(used)


def _weight_rate(samples: list[tuple[float, int, int]]) -> tuple[int, float]:
    """Weight charged and seconds covered, over consecutive samples in the same minute
    window (the exchange's counter restarts at every minute)."""
    weight, seconds = 0, 0.0
    # samples close to a minute boundary may have been read in the next window: skipped
    clear = [x for x in samples if 0.3 < x[0] % 60 < 59.7]
    for (t0, m0, w0), (t1, m1, w1) in itertools.pairwise(clear):
        if m0 == m1 and w1 >= w0:
            weight += w1 - w0
            seconds += t1 - t0
    return weight, seconds


def _rest_requests(sim_url: str) -> int:
    return int(http_json(f"{sim_url}/admin/state")["rest_requests"])


def _with_env(setup: BotSetup, **extra: str) -> BotSetup:
    return BotSetup(setup.cluster, setup.ns, setup.leases, lambda pod: setup.env(pod) | extra)


def _rendered_config(setup: BotSetup, ready: Any, out: Path) -> tuple[str, RuntimeConfig]:
    """Wait until the operator renders a runtime ConfigMap that satisfies ``ready`` (e.g.
    after a spec change); write its config to ``out``; return (ConfigMap name, config)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = setup.cluster.kubectl("get", "configmaps", "-n", setup.ns, "-o", "json")
        for item in json.loads(listed.stdout)["items"]:
            text = (item.get("data") or {}).get(CONFIG_KEY)
            if text is not None and ready(RuntimeConfig.loads(text)):
                out.write_text(text)
                return str(item["metadata"]["name"]), RuntimeConfig.loads(text)
        time.sleep(0.5)
    raise AssertionError("the operator never rendered the expected runtime config")


def _second_bot(setup: BotSetup, tmp_path: Path, name: str, symbol: str) -> BotSetup:
    """Another bot on the same ExchangeAccount (same namespace: same budget key), with
    the env its pods would get."""
    apply(setup.cluster, setup.ns, bot(name, strategy_name="fast", **{
        "exchanges": [{"account": "sim", "symbols": [symbol],
                       "allocation": {"quote": "USDT", "amount": "1000"}}],
        "risk": {"maxPositionNotional": "500", "maxOrderNotional": "50",
                 "maxDailyLoss": "100", "maxOrdersPerMinute": 120},
    }))  # fmt: skip
    path = tmp_path / f"{name}.json"
    configmap, config = _rendered_config(
        setup, lambda c: c.bot == name and c.rate_limit.requests_per_minute == BUDGET_UNITS, path
    )
    leases = [s.lease_name for s in config.shards]
    deadline = time.monotonic() + 30
    while not all(get(setup.cluster, setup.ns, "lease", n) for n in leases):
        assert time.monotonic() < deadline, f"leases {leases}"
        time.sleep(0.5)
    extra = {env.BOT: name, env.CONFIGMAP: configmap,
             env.CONFIG_PATH: str(path), env.LEASES: ",".join(leases)}  # fmt: skip
    return BotSetup(setup.cluster, setup.ns, leases, lambda pod: setup.env(pod) | extra)


def _leads(rt: Runtime, shards: int) -> int:
    return sum(int(metric(rt, "tradebot_leader", shard=str(i))) for i in range(shards))


def test_redis_down_local_share_then_shared_again(
    crds_installed: Cluster,
    operator_process: OperatorProcess,
    postgres: Postgres,
    tmp_path: Path,
) -> None:
    """Two bots on one account, one pod each, polling as fast as the budget lets them
    (full demand): the account's budget is the bottleneck. Redis down: each pod falls
    back to its share of the budget (half: two pods use the account, although each
    bot's own presence sees one), so together they still fit the exchange's limit."""
    cluster = crds_installed
    workdir = Path(tempfile.mkdtemp(prefix="tradebot-redis-chaos-"))
    outage_s = scaled(20, 70)
    first = devenv_redis.running(workdir / "first")
    redis = first.__enter__()
    redis_up = True
    try:
        with simulator_process(tmp_path, "--weight-limit", str(WEIGHT_LIMIT)) as sim_url:
            ns = cluster.namespace("rdchaos")
            setup = setup_bot(cluster, ns, sim_url, postgres, redis, tmp_path)
            cluster.kubectl("patch", "exchangeaccount", "sim", "-n", ns, "--type=merge", "-p",
                            json.dumps({"spec": {"rateLimit": {
                                "requestsPerMinute": BUDGET_UNITS}}}))  # fmt: skip
            _rendered_config(
                setup,
                lambda c: c.bot == "rtbot" and c.rate_limit.requests_per_minute == BUDGET_UNITS,
                tmp_path / CONFIG_KEY,
            )
            other = _second_bot(setup, tmp_path, "rtbot2", "ETH/USDT")
            fast = {env.POLL_INTERVAL: "0.05"}
            with (
                run_runtimes(_with_env(setup, **fast), tmp_path, "rd-a") as bot_a,
                run_runtimes(_with_env(other, **fast), tmp_path, "rd-b") as bot_b,
            ):
                runtimes = bot_a | bot_b
                wait_for(lambda: len(_orders(sim_url)) >= 1, 90, "first orders", runtimes)
                wait_for(lambda: all(_leads(rt, 1) == 1 for rt in runtimes.values()), 60,
                         "each pod leads its bot's shard", runtimes)  # fmt: skip
                # both see the other bot's pod on the account's budget
                wait_for(lambda: all(metric(rt, "tradebot_ratelimit_account_pods") == 2
                                     for rt in runtimes.values()), 30,
                         "two pods registered on the account", runtimes)  # fmt: skip
                http_json(f"{sim_url}/admin/ratelimits/reset", "POST")
                http_json(f"{sim_url}/admin/ledger/reset", "POST")
                time.sleep(scaled(5, 20))  # shared budget, full demand
                for rt in runtimes.values():
                    assert metric(rt, "tradebot_ratelimit_local_fallback") == 0
                    assert metric(rt, "tradebot_ratelimit_wait_seconds_total") > 0  # full demand
                assert _violations(sim_url) == 0

                first.__exit__(None, None, None)  # Redis stops
                redis_up = False
                down_at = time.monotonic()

                def fallback() -> bool:
                    return all(
                        metric(rt, "tradebot_ratelimit_local_fallback") == 1
                        for rt in runtimes.values()
                    )

                wait_for(fallback, 15, "local fallback on both pods", runtimes)
                requests = _rest_requests(sim_url)
                waited = [metric(rt, "tradebot_ratelimit_wait_seconds_total")
                          for rt in runtimes.values()]  # fmt: skip
                # the account's weight at the exchange, sampled: its rate while both pods
                # run on local shares must stay within one budget (the exchange's fixed
                # minute windows alone would hide a doubled rate in a short outage)
                samples: list[tuple[float, int, int]] = []
                while time.monotonic() - down_at < outage_s:
                    samples.append(_account_weight(sim_url))
                    time.sleep(1.0)
                assert fallback(), "a pod left the local share while Redis was down"
                weight, seconds = _weight_rate(samples)
                budget_w_per_s = float(BUDGET_UNITS * SAFETY) / 60 * BINANCE_WEIGHT_PER_UNIT
                print(f"redis down {outage_s}s: {weight} weight in {seconds:.1f}s at the "
                      f"exchange ({weight / max(seconds, 1):.1f}/s; one budget "
                      f"{budget_w_per_s:.1f}/s)")  # fmt: skip
                assert seconds >= outage_s / 3
                assert weight <= budget_w_per_s * seconds * 1.1 + 2 * BURST_WEIGHT
                assert _violations(sim_url) == 0
                assert _rest_requests(sim_url) > requests, "no requests while Redis was down"
                for rt, before in zip(runtimes.values(), waited, strict=True):
                    # still the bottleneck: the local share is what limits the pod
                    assert metric(rt, "tradebot_ratelimit_wait_seconds_total") > before

                # Redis back (same port, empty): the shared bucket again
                with devenv_redis.running(workdir / "again", port=redis.port):

                    def shared() -> bool:
                        return all(
                            metric(rt, "tradebot_ratelimit_local_fallback") == 0
                            for rt in runtimes.values()
                        )

                    wait_for(shared, 30, "shared budget again on both pods", runtimes)
                    time.sleep(scaled(5, 15))
                    assert shared()
                    assert _violations(sim_url) == 0
                    alive(runtimes)
    finally:
        if redis_up:
            first.__exit__(None, None, None)
        shutil.rmtree(workdir, ignore_errors=True)


# -- API server stopped -------------------------------------------------------------------


@contextlib.contextmanager
def _dedicated_cluster(name: str) -> Iterator[Cluster]:
    """A small cluster of our own (hack/cluster.sh), deleted afterwards: its API server is
    paused, which the session cluster's controller-manager would not survive."""
    state = REPO_ROOT / ".state" / name
    cluster_env = {**os.environ, "TRADEBOT_CLUSTER_NAME": name, "TRADEBOT_STATE": str(state),
           "TRADEBOT_NODES": "1"}  # fmt: skip
    try:
        up = subprocess.run(["bash", str(HACK / "cluster.sh"), "up"], env=cluster_env,
                            capture_output=True, text=True)  # fmt: skip
        if up.returncode != 0:
            pytest.fail(f"could not start cluster {name}:\n{up.stderr[-4000:]}", pytrace=False)
        kubectl = os.environ.get("TRADEBOT_KUBECTL") or str(hack_bin("kubectl"))
        cluster = Cluster(kubeconfig=up.stdout.strip().splitlines()[-1], kubectl_bin=kubectl)
        files = crd_files()
        args = [f"--filename={p}" for p in files]
        cluster.kubectl("apply", "--server-side", "--force-conflicts",
                        f"--field-manager={FIELD_MANAGER}", *args)  # fmt: skip
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                        *[f"customresourcedefinition/{n}" for n in crd_names(files)])  # fmt: skip
        yield cluster
    finally:
        subprocess.run(["bash", str(HACK / "cluster.sh"), "down"], env=cluster_env,
                       capture_output=True, check=False)  # fmt: skip


def _apiserver_pid(cluster_name: str) -> int:
    """The kube-apiserver process of exactly this cluster (by its binary's path)."""
    binary = f"/kwok/clusters/{cluster_name}/bin/kube-apiserver"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        if argv0.endswith(binary):
            found.append(int(entry.name))
    assert len(found) == 1, f"kube-apiserver of {cluster_name}: {found}"
    return found[0]


def test_api_server_stopped_leaders_stop_before_lease_expiry(
    postgres: Postgres, redis_server: Redis, tmp_path: Path
) -> None:
    from support.cluster import TEST_CLUSTER

    name = f"{TEST_CLUSTER}-api"
    with _dedicated_cluster(name) as cluster, simulator_process(tmp_path) as sim_url:
        operator = _operator(cluster, tmp_path / "operator.log", {})
        next(operator)
        try:
            ns = cluster.namespace("apichaos")
            setup = setup_bot(cluster, ns, sim_url, postgres, redis_server, tmp_path)
            duration_ms = RuntimeConfig.load(tmp_path / CONFIG_KEY).lease_duration_seconds * 1000
            ids = ClientOrderIds("binance", setup.bot_id, "sim")
            with run_runtimes(setup, tmp_path, "api-a", "api-b") as runtimes:
                for _round in range(scaled(1, 3)):
                    _pause_api_server(name, sim_url, duration_ms, runtimes)
                assert interleaved_epochs(sim_url, ids) == []
                assert_invariants(sim_url, postgres.dsn, setup.bot_id)
                epochs = {e for _, e in epochs_in_exchange_order(sim_url, ids)}
                print(f"api server chaos: epochs at the exchange {sorted(epochs)}")
        finally:
            operator.close()
        # the cluster we paused answers again (it is deleted on exit)
        assert cluster.kubectl("get", "--raw", "/readyz", check=False).returncode == 0


def _pause_api_server(
    name: str, sim_url: str, duration_ms: int, runtimes: dict[str, Runtime]
) -> None:
    pause_s = scaled(3, 5) * duration_ms / 1000
    # orders are flowing right before the stop (else the check below proves nothing)
    wait_for(lambda: _orders_after(sim_url, _now_ms() - 3000) >= 1, 90,
             "an order in the last 3 s", runtimes)  # fmt: skip
    pid = _apiserver_pid(name)
    os.kill(pid, signal.SIGSTOP)
    stopped = _now_ms()
    try:
        time.sleep(pause_s)
        alive(runtimes)
        # no pod claims leadership once its Lease may have expired (the gauge follows the
        # same fail-closed check that stops sending)
        leading = {n: rt.metric("tradebot_leader", shard="0") for n, rt in runtimes.items()}
        assert all(v in (None, 0.0) for v in leading.values()), leading
    finally:
        os.kill(pid, signal.SIGCONT)
    resumed = _now_ms()
    # every renewal that succeeded happened before the stop: nothing may be accepted
    # later than stop + lease duration while the API server is away
    late = [o for o in _orders(sim_url) if stopped + duration_ms < o["time"] < resumed]
    last = max((o["time"] for o in _orders(sim_url) if o["time"] < resumed), default=0)
    print(f"api server paused {pause_s:.0f}s: last order {(last - stopped) / 1000:+.2f}s after "
          f"the stop (lease {duration_ms / 1000:.0f}s)")  # fmt: skip
    assert late == [], f"orders after the Lease could have expired: {late}"
    # trading resumes once the API server is back
    wait_for(lambda: _orders_after(sim_url, resumed) >= 2, 60, "orders after the API server "
             "is back", runtimes)  # fmt: skip


# -- OpenBao down ---------------------------------------------------------------------------

VAULT_TTL_S = 10
VAULT_ROOT = "chaos-root"  # the dedicated dev server's root token (test data)


def _configure_vault(
    vault: devenv_openbao.VaultServer, cluster: Cluster, ns: str, sa: str, path: str
) -> str:
    """Kubernetes auth, the exchange keys at ``path`` and a short-TTL role for ``sa``;
    what the operator sets up (done again after a restart: the dev server is in memory)."""
    from support.runtimes import API_KEY, SECRET

    devenv_openbao.configure_kubernetes_auth(vault, cluster, ns)
    devenv_openbao.put_secret(vault, path, {"apiKey": API_KEY, "secret": SECRET})
    admin = vault.admin()
    role = f"chaos-{ns}"
    # the operator's own policy: read on the secret's data and metadata paths
    admin.sys.create_or_update_policy(name=role, policy=policy_hcl((SecretPath("secret", path),)))
    admin.auth.kubernetes.create_role(
        name=role, bound_service_account_names=[sa], bound_service_account_namespaces=[ns],
        policies=[role], audience="vault", ttl=f"{VAULT_TTL_S}s", max_ttl=f"{4 * VAULT_TTL_S}s",
        mount_point="kubernetes",
    )  # fmt: skip
    return role


def _heartbeat_message(cluster: Cluster, ns: str, lease: str) -> str:
    obj = get(cluster, ns, "lease", lease) or {}
    hb = heartbeat_from_annotations((obj.get("metadata") or {}).get("annotations"))
    return (hb.message or "") if hb is not None else ""


def _private_calls(rt: Runtime) -> float:
    return metric(rt, "exchange_api_latency_seconds_count", method="fetch_my_trades")


def _key_bucket_used(sim_url: str) -> bool:
    """Whether a signed (API-key) request was charged since the last rate-limit reset."""
    buckets: dict[str, Any] = http_json(f"{sim_url}/admin/ratelimits")
    return any(key.startswith("key:") for key in buckets)


def test_openbao_down_cached_credentials_then_fail_closed_then_recover(
    runtime_env: RuntimeEnv,
) -> None:
    ns = runtime_env.cluster.namespace("vbchaos")
    sa = "chaos-runtime"
    runtime_env.cluster.kubectl("create", "serviceaccount", sa, "-n", ns)
    path = f"tradebot/{ns}/sim"
    workdir = Path(tempfile.mkdtemp(prefix="tradebot-openbao-chaos-"))
    port = free_port()
    first = devenv_openbao.running(workdir / "first", port=port, root_token=VAULT_ROOT)
    vault = first.__enter__()
    vault_up = True
    try:
        role = _configure_vault(vault, runtime_env.cluster, ns, sa, path)
        with simulator_process(runtime_env.tmp_path) as sim_url:
            setup = runtime_env.setup_bot(ns, sim_url)
            # the runtime reads the keys from OpenBao (the credential files are removed)
            config = RuntimeConfig.load(runtime_env.tmp_path / CONFIG_KEY)
            vault_config = CredentialsConfig(source="vault", vault=VaultCredentials(
                address=vault.addr, auth_mount="kubernetes", role=role, kv_mount="secret",
                path=path, keys={"apiKey": "apiKey", "secret": "secret"},
            ))  # fmt: skip
            (runtime_env.tmp_path / CONFIG_KEY).write_text(
                config.model_copy(update={"credentials": vault_config}).dumps()
            )
            shutil.rmtree(runtime_env.tmp_path / "rootfs" / CREDENTIALS_DIR.lstrip("/"))
            jwt = runtime_env.tmp_path / "sa-token"
            jwt.write_text(runtime_env.cluster.token(ns, sa, "vault", "1h"))
            vault_env = _with_env(setup, **{env.VAULT_TOKEN_PATH: str(jwt),
                                            env.CREDENTIALS_POLL_SECONDS: "0.5"})  # fmt: skip
            with run_runtimes(vault_env, runtime_env.tmp_path, "vb-a") as runtimes:
                rt = runtimes["vb-a"]
                wait_for(lambda: len(_orders(sim_url)) >= 2, 90, "first orders", runtimes)
                assert metric(rt, "tradebot_credentials_usable") == 1

                # OpenBao down: the cached keys keep working until the token expires
                first.__exit__(None, None, None)
                vault_up = False
                down = time.monotonic()
                calls = _private_calls(rt)
                wait_for(lambda: "vault unreachable, using cached credentials"
                         in _heartbeat_message(runtime_env.cluster, ns, setup.leases[0]), 15,
                         "heartbeat: cached credentials", runtimes)  # fmt: skip
                assert metric(rt, "tradebot_credentials_usable") == 1
                # private calls go on (the fill poll runs about once a second)
                wait_for(lambda: _private_calls(rt) > calls, VAULT_TTL_S / 2,
                         "private calls on cached credentials", runtimes)  # fmt: skip
                assert time.monotonic() - down < VAULT_TTL_S - 1  # well before expiry

                # then fail closed: no private call, no order; reported
                wait_for(lambda: metric(rt, "tradebot_credentials_usable") == 0,
                         VAULT_TTL_S + 10, "credentials unusable", runtimes)  # fmt: skip
                closed = time.monotonic()
                print(f"openbao down: fail closed after {closed - down:.1f}s (TTL {VAULT_TTL_S}s)")
                assert closed - down > 1.0, "failed closed although the token was still valid"
                time.sleep(1.0)  # a request in flight at the switch may still land
                http_json(f"{sim_url}/admin/ratelimits/reset", "POST")
                orders = len(_orders(sim_url))
                wait_for(lambda: "credentials unusable, private calls stopped"
                         in _heartbeat_message(runtime_env.cluster, ns, setup.leases[0]), 15,
                         "heartbeat: credentials unusable", runtimes)  # fmt: skip
                time.sleep(scaled(5, 20))
                assert not _key_bucket_used(sim_url), "a signed request reached the exchange"
                assert len(_orders(sim_url)) == orders, "orders sent without usable credentials"
                assert "private exchange calls stopped (fail closed)" in rt.tail() or (
                    "fail closed" in rt.log.read_text(errors="replace")
                )

                # OpenBao back (same address, configured again): usable, trading resumes
                again = devenv_openbao.running(workdir / "again", port=port, root_token=VAULT_ROOT)
                with again as vault2:
                    _configure_vault(vault2, runtime_env.cluster, ns, sa, path)
                    wait_for(lambda: metric(rt, "tradebot_credentials_usable") == 1, 30,
                             "credentials usable again", runtimes)  # fmt: skip
                    back = _now_ms()
                    wait_for(lambda: _orders_after(sim_url, back) >= 1, 60,
                             "orders after OpenBao is back", runtimes)  # fmt: skip
                    assert_invariants(sim_url, runtime_env.postgres.dsn, setup.bot_id)
    finally:
        if vault_up:
            first.__exit__(None, None, None)
        shutil.rmtree(workdir, ignore_errors=True)
