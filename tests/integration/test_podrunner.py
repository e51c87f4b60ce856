"""The pod runner against a real API server: pods scheduled on its node become real local
processes with their env, files, token and probes; deletion, crashes and ConfigMap edits
behave as kubelet's would."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from devenv.procs import spawn, stop
from support.cluster import Cluster
from support.podrunner import PodRunnerNode

pytestmark = pytest.mark.integration

T = TypeVar("T")

# The workload: an HTTP server on $PORT that reports what it sees to $REPORT_DIR/<pod>.json
# twice a second and leaves <pod>.sigterm when it gets SIGTERM. Shipped in a ConfigMap and
# started as `python /app/app.py`, so the runner must remap the argument too.
APP = r"""
import http.server, json, os, signal, ssl, threading, time, urllib.error, urllib.request
import yaml

report_dir, pod, ns = os.environ["REPORT_DIR"], os.environ["POD_NAME"], os.environ["POD_NAMESPACE"]

def api_status(path):
    cfg = yaml.safe_load(open(os.environ["KUBECONFIG"]))
    cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
    token = open(user["tokenFile"]).read().strip()
    ctx = ssl.create_default_context(cafile=cluster["certificate-authority"])
    headers = {"Authorization": "Bearer " + token}
    req = urllib.request.Request(cluster["server"] + path, headers=headers)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code

api = {
    "own_configmap": api_status(f"/api/v1/namespaces/{ns}/configmaps/app-config"),
    "secrets": api_status(f"/api/v1/namespaces/{ns}/secrets"),
}

def report():
    data = {"pid": os.getpid(), "env": dict(os.environ), "api": api, "cwd": os.getcwd(),
            "config": open(os.environ["CONFIG_PATH"]).read(),
            "token": open(os.environ["TOKEN_PATH"]).read()}
    tmp = f"{report_dir}/{pod}.json.tmp"
    with open(tmp, "w") as out:
        json.dump(data, out)
    os.replace(tmp, f"{report_dir}/{pod}.json")

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass

def on_term(*_):
    with open(f"{report_dir}/{pod}.sigterm", "w") as out:
        out.write(str(os.getpid()))
    os._exit(0)

signal.signal(signal.SIGTERM, on_term)
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print("serving on", os.environ["PORT"], flush=True)
while True:
    report()
    time.sleep(0.5)
"""

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def wait_for(fn: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except (OSError, ValueError, KeyError, AssertionError) as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last})")


def get_json(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Web:
    cluster: Cluster
    runner: PodRunnerNode
    namespace: str
    reports: Path

    def pods(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = get_json(
            self.cluster, "pods", "-n", self.namespace, "-l", "app=web"
        )["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def ready_pod(self) -> dict[str, Any] | None:
        for pod in self.pods():
            conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
            if conditions.get("Ready") == "True":
                return pod
        return None

    def report(self, pod: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.reports / f"{pod}.json").read_text())
        return data


def manifests(namespace: str, placement: dict[str, Any], reports: Path) -> list[dict[str, Any]]:
    meta = {"namespace": namespace}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app", **meta}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "app", **meta},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                    "resourceNames": ["app-config"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "app", **meta},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "app"},
         "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": namespace}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config", **meta},
         "data": {"config.txt": "version-1"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-script", **meta},
         "data": {"app.py": APP}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-secret", **meta},
         "stringData": {"greeting": "s3cret"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", **meta},
         "spec": {
             "replicas": 1,
             "selector": {"matchLabels": {"app": "web"}},
             "template": {
                 "metadata": {"labels": {"app": "web"}},
                 "spec": {
                     **placement,
                     "serviceAccountName": "app",
                     "terminationGracePeriodSeconds": 5,
                     "securityContext": RESTRICTED_POD,
                     "containers": [{
                         "name": "web",
                         "image": "ignored.example/web:1",
                         "command": ["python"],
                         "args": ["/app/app.py"],
                         "ports": [{"name": "http", "containerPort": 8080}],
                         "env": [
                             {"name": "PORT", "value": "8080"},
                             {"name": "REPORT_DIR", "value": str(reports)},
                             {"name": "CONFIG_PATH", "value": "/etc/app/config.txt"},
                             {"name": "TOKEN_PATH", "value": "/var/run/secrets/tokens/api-token"},
                             {"name": "POD_NAME",
                              "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                             {"name": "POD_NAMESPACE",
                              "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                             {"name": "POD_UID",
                              "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                             {"name": "NODE_NAME",
                              "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                             {"name": "GREETING", "valueFrom": {
                                 "secretKeyRef": {"name": "app-secret", "key": "greeting"}}},
                             {"name": "GREETING_FILE", "value": "$(CONFIG_PATH).bak"},
                         ],
                         "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                                            "periodSeconds": 1},
                         "securityContext": RESTRICTED_CONTAINER,
                         "volumeMounts": [
                             {"name": "config", "mountPath": "/etc/app", "readOnly": True},
                             {"name": "script", "mountPath": "/app", "readOnly": True},
                             {"name": "tokens", "mountPath": "/var/run/secrets/tokens"},
                             {"name": "tmp", "mountPath": "/tmp"},
                         ],
                     }],
                     "volumes": [
                         {"name": "config", "configMap": {"name": "app-config"}},
                         {"name": "script", "configMap": {"name": "app-script"}},
                         {"name": "tmp", "emptyDir": {}},
                         {"name": "tokens", "projected": {"sources": [{"serviceAccountToken": {
                             "audience": "tradebot-test", "expirationSeconds": 600,
                             "path": "api-token"}}]}},
                     ],
                 },
             },
         }},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def web(cluster: Cluster, pod_runner: PodRunnerNode) -> Iterator[Web]:
    namespace = cluster.namespace("podrunner")
    # Not under /tmp: the runner remaps env values under any mountPath (here /tmp).
    reports = pod_runner.workdir / "test-reports" / namespace
    reports.mkdir(parents=True)
    docs = manifests(namespace, pod_runner.placement(), reports)
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    app = Web(cluster, pod_runner, namespace, reports)
    try:
        pod = wait_for(app.ready_pod, 60, "a Ready web pod")
        wait_for(lambda: app.report(pod["metadata"]["name"]), 15, "the first report")
        yield app
    finally:
        cluster.kubectl("delete", "deployment", "web", "-n", namespace, "--wait=false", check=False)


def test_pod_runs_as_local_process_with_env_files_and_ports(web: Web) -> None:
    pod = wait_for(web.ready_pod, 30, "a Ready web pod")
    name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    assert pod["spec"]["nodeName"] == web.runner.node
    status = pod["status"]
    assert status["phase"] == "Running"
    assert status["podIP"] == "127.0.0.1"
    (container,) = status["containerStatuses"]
    assert container["ready"] is True
    assert "running" in container["state"]

    report = web.report(name)
    assert pid_alive(report["pid"])
    env = report["env"]
    root = env["PODRUNNER_ROOT"]
    assert root.startswith(str(web.runner.workdir))
    # fieldRefs and secretKeyRef resolved; $(VAR) expanded before remapping
    assert (env["POD_NAME"], env["POD_NAMESPACE"], env["POD_UID"]) == (name, web.namespace, uid)
    assert env["NODE_NAME"] == web.runner.node
    assert env["GREETING"] == "s3cret"
    # mount paths remapped under the pod's root; files materialised there
    assert env["CONFIG_PATH"] == f"{root}/etc/app/config.txt"
    assert env["GREETING_FILE"] == f"{root}/etc/app/config.txt.bak"
    assert report["config"] == "version-1"
    assert env["TMPDIR"] == f"{root}/tmp" and Path(env["TMPDIR"]).is_dir()
    # containerPort 8080 became a free local port, announced both ways; the probe used it
    assert env["PORT"] == env["PODRUNNER_PORT_HTTP"] != "8080"
    # the runner's own credentials do not leak into the pod
    assert Path(env["KUBECONFIG"]).is_relative_to(web.runner.workdir)
    # the container's output is in the log file the runner keeps
    log = web.runner.workdir / "logs" / f"{web.namespace}_{name}_{uid}" / "web" / "0.log"
    assert f"serving on {env['PORT']}" in log.read_text()


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def test_token_authenticates_as_the_pods_service_account(web: Web) -> None:
    pod = wait_for(web.ready_pod, 30, "a Ready web pod")
    report = web.report(pod["metadata"]["name"])
    # The kubeconfig the runner wrote authenticates as system:serviceaccount:<ns>:app: its
    # Role allows getting app-config and nothing else.
    assert report["api"] == {"own_configmap": 200, "secrets": 403}
    claims = _claims(report["token"])
    assert claims["aud"] == ["tradebot-test"]
    assert claims["sub"] == f"system:serviceaccount:{web.namespace}:app"
    assert claims["kubernetes.io"]["pod"]["uid"] == pod["metadata"]["uid"]
    assert 500 <= claims["exp"] - claims["iat"] <= 700


def test_configmap_update_reaches_the_file(web: Web) -> None:
    pod = wait_for(web.ready_pod, 30, "a Ready web pod")
    name = pod["metadata"]["name"]
    web.cluster.kubectl(
        "patch", "configmap", "app-config", "-n", web.namespace, "--type=merge",
        "-p", json.dumps({"data": {"config.txt": "version-2"}}),
    )  # fmt: skip
    wait_for(lambda: web.report(name)["config"] == "version-2", 20, "the new config file")


def test_deleted_pod_gets_sigterm_and_is_replaced(web: Web) -> None:
    pod = wait_for(web.ready_pod, 30, "a Ready web pod")
    name = pod["metadata"]["name"]
    old_pid = web.report(name)["pid"]
    web.cluster.kubectl("delete", "pod", name, "-n", web.namespace, "--wait=false")

    term = web.reports / f"{name}.sigterm"
    wait_for(term.exists, 15, "SIGTERM to reach the process")
    assert int(term.read_text()) == old_pid
    wait_for(lambda: not pid_alive(old_pid), 10, "the old process to exit")
    # the runner removed the pod object once its process was gone (as kubelet does)
    wait_for(
        lambda: (
            web.cluster.kubectl("get", "pod", name, "-n", web.namespace, check=False).returncode
            != 0
        ),
        15,
        "the old pod object to disappear",
    )
    new = wait_for(
        lambda: (p := web.ready_pod()) and p["metadata"]["name"] != name and p, 60, "a replacement"
    )
    new_report = wait_for(
        lambda: web.report(new["metadata"]["name"]), 15, "the replacement's report"
    )
    assert new_report["pid"] != old_pid and pid_alive(new_report["pid"])


def test_crashing_container_restarts_with_backoff(
    cluster: Cluster, pod_runner: PodRunnerNode
) -> None:
    namespace = cluster.namespace("podrunner-crash")
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crash", "namespace": namespace},
        "spec": {
            **pod_runner.placement(), "restartPolicy": "Always",
            "securityContext": RESTRICTED_POD, "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "crash", "image": "ignored", "securityContext": RESTRICTED_CONTAINER,
                "command": ["python", "-c", "import sys; print('crashing'); sys.exit(3)"],
            }],
        },
    }  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
    seen_backoff = False
    restart_times: dict[int, float] = {}

    def restarted_enough() -> dict[str, Any] | None:
        nonlocal seen_backoff
        status = get_json(cluster, "pod", "crash", "-n", namespace)["status"]
        statuses = status.get("containerStatuses") or []
        if not statuses:
            return None
        (container,) = statuses
        waiting = container["state"].get("waiting") or {}
        seen_backoff = seen_backoff or waiting.get("reason") == "CrashLoopBackOff"
        restart_times.setdefault(container["restartCount"], time.monotonic())
        return container if container["restartCount"] >= 3 and seen_backoff else None

    container = wait_for(restarted_enough, 45, "three restarts")
    assert container["lastState"]["terminated"]["exitCode"] == 3
    assert container["lastState"]["terminated"]["reason"] == "Error"
    # back-off doubles (1s, 2s, 4s with the fixture's settings): later gaps are longer
    assert restart_times[3] - restart_times[2] > restart_times[2] - restart_times[1]
    assert get_json(cluster, "pod", "crash", "-n", namespace)["status"]["phase"] == "Running"
    cluster.kubectl("delete", "pod", "crash", "-n", namespace, "--wait=true", "--timeout=30s")


def test_pods_on_kwok_nodes_are_left_alone(cluster: Cluster, pod_runner: PodRunnerNode) -> None:
    namespace = cluster.namespace("podrunner-kwok")
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fake", "namespace": namespace},
        "spec": {
            "nodeName": "kwok-node-0", "securityContext": RESTRICTED_POD,
            "containers": [{"name": "c", "image": "ignored", "command": ["python", "-c", "1"],
                            "securityContext": RESTRICTED_CONTAINER}],
        },
    }  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
    obj = wait_for(
        lambda: (
            (p := get_json(cluster, "pod", "fake", "-n", namespace))["status"].get("phase")
            == "Running"
            and p
        ),
        30,
        "kwok to run its fake pod",
    )
    assert obj["status"]["podIP"] != "127.0.0.1"  # kwok's, not ours
    uid = obj["metadata"]["uid"]
    assert not (pod_runner.workdir / "pods" / uid).exists()
    assert uid not in pod_runner.log_text()
    assert all(uid not in p.name for p in (pod_runner.workdir / "logs").iterdir())


def _start_runner(
    cluster: Cluster, node: str, workdir: Path, *extra: str
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "podrunner", "--kubeconfig", cluster.kubeconfig,
           "--node", node, "--workdir", str(workdir), *extra]  # fmt: skip
    return spawn(cmd, log=workdir.parent / f"{workdir.name}.log")


def _node_lease(cluster: Cluster, node: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", "lease", node, "-n", "kube-node-lease", "-o", "json",
                             check=False)  # fmt: skip
    return json.loads(result.stdout) if result.returncode == 0 else None


def _holder_pid(cluster: Cluster, node: str) -> int | None:
    lease = _node_lease(cluster, node)
    if lease is None:
        return None
    annotation = lease["metadata"].get("annotations", {}).get("podrunner.tradebot.io/holder")
    return int(json.loads(annotation)["pid"]) if annotation else None


def test_second_runner_for_a_node_refuses_and_takes_over_a_dead_one(
    cluster: Cluster, tmp_path: Path
) -> None:
    """One runner per node: a second one for the same node (e.g. an orphan of a killed
    run) exits with a clear message instead of starting every pod twice; once the holder
    is dead, a new runner takes the node over at once (same host: its pid is gone)."""
    node = f"pr-dup-{os.urandom(3).hex()}"
    first = _start_runner(cluster, node, tmp_path / "first")
    procs = [first]
    try:
        wait_for(lambda: _holder_pid(cluster, node) == first.pid, 60, "the first runner's Lease")

        second = _start_runner(cluster, node, tmp_path / "second")
        procs.append(second)
        assert second.wait(timeout=60) == 3
        log = (tmp_path / "second.log").read_text()
        assert "refusing to start" in log and f"pid {first.pid}" in log, log
        assert f"kill {first.pid}" in log
        assert not (tmp_path / "second" / "pods").exists()  # nothing of its own started
        assert first.poll() is None and _holder_pid(cluster, node) == first.pid

        # The holder dies without cleaning up (SIGKILL): its Lease is still unexpired,
        # but its pid is gone, so the next runner takes over without waiting.
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        third = _start_runner(cluster, node, tmp_path / "third")
        procs.append(third)
        started = time.monotonic()
        wait_for(lambda: _holder_pid(cluster, node) == third.pid, 30, "the takeover")
        assert time.monotonic() - started < 20  # well under the 40 s Lease duration
        assert "taking node" in (tmp_path / "third.log").read_text()
        assert _node_ready(cluster, node) == "True"
    finally:
        for proc in procs:
            stop(proc, timeout=20)
        _delete_node(cluster, node)


def test_a_runner_that_stopped_renewing_loses_the_node_and_exits(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A live holder that stops renewing (SIGSTOP) is stale once its Lease expires: a new
    runner takes the node; the old one, resumed, sees the new holder at its next heartbeat
    and exits (status 4) without touching the node."""
    node = f"pr-stop-{os.urandom(3).hex()}"
    fast = ("--heartbeat-period", "1", "--lease-duration", "3")
    first = _start_runner(cluster, node, tmp_path / "first", *fast)
    procs = [first]
    try:
        wait_for(lambda: _holder_pid(cluster, node) == first.pid, 60, "the first runner's Lease")
        wait_for(lambda: "is Ready" in (tmp_path / "first.log").read_text(), 30, "registration")
        os.killpg(first.pid, signal.SIGSTOP)
        time.sleep(4)  # past the 3 s Lease
        second = _start_runner(cluster, node, tmp_path / "second", *fast)
        procs.append(second)
        wait_for(lambda: _holder_pid(cluster, node) == second.pid, 30, "the takeover")
        assert "stopped renewing" in (tmp_path / "second.log").read_text()
        os.killpg(first.pid, signal.SIGCONT)
        assert first.wait(timeout=30) == 4
        assert "another pod runner took the node over" in (tmp_path / "first.log").read_text()
        time.sleep(2)  # the loser left node and Lease alone
        assert _holder_pid(cluster, node) == second.pid and second.poll() is None
        assert _node_ready(cluster, node) == "True"
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)
            stop(proc, timeout=20)
        _delete_node(cluster, node)


def _node_ready(cluster: Cluster, node: str) -> str:
    return cluster.kubectl(
        "get", "node", node, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"
    ).stdout


def _delete_node(cluster: Cluster, node: str) -> None:
    cluster.kubectl("delete", "node", node, "--ignore-not-found", check=False)
    cluster.kubectl("delete", "lease", node, "-n", "kube-node-lease", "--ignore-not-found",
                    check=False)  # fmt: skip


def _processes_of_pod(uid: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if f"POD_UID={uid}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
    return pids


def test_second_runner_for_a_busy_node_starts_no_second_process(web: Web, tmp_path: Path) -> None:
    """The defect this guards against: an orphan runner plus a fresh one for the same node
    made two processes per pod. The second one is refused; the pod keeps one process."""
    pod = wait_for(web.ready_pod, 30, "a Ready web pod")
    uid = pod["metadata"]["uid"]
    before = _processes_of_pod(uid)
    assert len(before) == 1
    second = _start_runner(web.cluster, web.runner.node, tmp_path / "second")
    try:
        assert second.wait(timeout=60) == 3
    finally:
        stop(second)
    assert "refusing to start" in (tmp_path / "second.log").read_text()
    time.sleep(2)
    assert _processes_of_pod(uid) == before
