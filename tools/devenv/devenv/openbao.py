"""OpenBao (Vault API) dev server, and the Vault side of an installation: the kubernetes
auth method checking tokens against our API server, KV v2 secrets, and the operator's own
least-privilege token (the operator then writes a policy + role per bot itself)."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import hvac

from devenv.kube import Kube
from devenv.procs import hack_bin, http_ok, pick_port, spawn, stop, wait_until
from tradebot_contracts.names import OPERATOR_POLICY_NAME

REVIEWER_SA = "vault-token-reviewer"
REVIEWER_AUDIENCE = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class VaultServer:
    """A Vault-API server (OpenBao) and its root token."""

    addr: str
    root_token: str
    ca_cert: str | None = None
    """With TLS: the file holding the CA that signed the listener's certificate."""

    def admin(self) -> hvac.Client:
        return hvac.Client(url=self.addr, token=self.root_token, verify=self.ca_cert or True)


def _healthy(addr: str, ca_cert: str | None) -> bool:
    if ca_cert is None:
        return http_ok(f"{addr}/v1/sys/health")
    with urllib.request.urlopen(
        f"{addr}/v1/sys/health", timeout=1, context=ssl.create_default_context(cafile=ca_cert)
    ) as resp:
        return 200 <= int(resp.status) < 300


@contextmanager
def running(
    workdir: Path, port: int | None = None, root_token: str = "tradebot-dev-root",
    tls: bool = False,
) -> Iterator[VaultServer]:  # fmt: skip
    """``bao server -dev``: in-memory, unsealed, KV v2 at secret/, on loopback. ``tls``:
    an https listener with a CA and certificate OpenBao generates (``-dev-tls``) into
    ``workdir/tls``; ``VaultServer.ca_cert`` is the CA file."""
    binary = hack_bin("bao")
    workdir.mkdir(parents=True, exist_ok=True)
    port = pick_port(port, "OpenBao", "--openbao-port")
    log = workdir / "openbao.log"
    cmd = [str(binary), "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}",
           f"-dev-root-token-id={root_token}", "-dev-no-store-token"]  # fmt: skip
    ca_cert = None
    if tls:
        (workdir / "tls").mkdir(exist_ok=True)
        cmd += ["-dev-tls", f"-dev-tls-cert-dir={workdir / 'tls'}"]
        ca_cert = str(workdir / "tls" / "vault-ca.pem")
    proc = spawn(cmd, log=log, env={**os.environ, "HOME": str(workdir)})
    addr = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(addr, ca_cert), 30, "OpenBao dev server", log, proc)
        yield VaultServer(addr=addr, root_token=root_token, ca_cert=ca_cert)
    finally:
        stop(proc)
        shutil.rmtree(workdir / ".bao-token", ignore_errors=True)


def configure_kubernetes_auth(
    vault: VaultServer,
    kube: Kube,
    namespace: str,
    mount: str = "kubernetes",
    reviewer_duration: str = "48h",
) -> None:
    """Enable the kubernetes auth method at ``mount``; OpenBao validates pod tokens with
    TokenReview, authenticated as a ServiceAccount bound to system:auth-delegator."""
    kube.ensure_namespace(namespace)
    kube.apply(
        [
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": REVIEWER_SA, "namespace": namespace}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": f"{namespace}-{REVIEWER_SA}"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": "system:auth-delegator"},
             "subjects": [{"kind": "ServiceAccount", "name": REVIEWER_SA,
                           "namespace": namespace}]},
        ]
    )  # fmt: skip
    server, ca = kube.server_and_ca()
    admin = vault.admin()
    if f"{mount}/" not in admin.sys.list_auth_methods():
        admin.sys.enable_auth_method("kubernetes", path=mount)
    admin.auth.kubernetes.configure(
        kubernetes_host=server,
        kubernetes_ca_cert=ca.decode(),
        token_reviewer_jwt=kube.token(namespace, REVIEWER_SA, REVIEWER_AUDIENCE, reviewer_duration),
        mount_point=mount,
    )


def put_secret(
    vault: VaultServer, path: str, data: Mapping[str, str], mount: str = "secret"
) -> None:
    vault.admin().secrets.kv.v2.create_or_update_secret(
        path=path, secret=dict(data), mount_point=mount
    )


def operator_policy_hcl(auth_mount: str, database_mount: str | None = None) -> str:
    """The operator's own policy, rendered by the operator's CLI (devenv never imports the
    operator: it installs it as a user would)."""
    extra = ["--database-mount", database_mount] if database_mount else []
    out = subprocess.run(
        [sys.executable, "-m", "tradebot_operator.builders.vault_policy",
         "--auth-mount", auth_mount, *extra],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout


def operator_token(
    vault: VaultServer,
    token_file: Path,
    auth_mount: str = "kubernetes",
    ttl: str = "768h",
    database_mount: str | None = None,
) -> Path:
    """The operator's own Vault login, as an installation gives it (chart value
    vault.operatorAuth.tokenSecret): the policy the README documents (exact HCL from
    ``python -m tradebot_operator.builders.vault_policy``, as an installer runs it) and a
    token holding only that policy, written to ``token_file`` (mode 0600) for
    TRADEBOT_VAULT_TOKEN_FILE. With it the operator writes every bot's policy and
    Kubernetes-auth role itself."""
    admin = vault.admin()
    admin.sys.create_or_update_policy(
        name=OPERATOR_POLICY_NAME, policy=operator_policy_hcl(auth_mount, database_mount)
    )
    created = admin.auth.token.create(
        policies=[OPERATOR_POLICY_NAME], no_default_policy=True, ttl=ttl,
        display_name="tradebot-operator",
    )  # fmt: skip
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.touch(mode=0o600)
    token_file.chmod(0o600)
    token_file.write_text(created["auth"]["client_token"])
    return token_file
