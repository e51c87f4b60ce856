"""OpenBao (Vault API) dev server, and the setup a bot with vault credentials needs:
the kubernetes auth method checking tokens against our API server, a KV v2 secret, and a
policy + role bound to the bot's ServiceAccount."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import hvac

from devenv.kube import Kube
from devenv.procs import hack_bin, http_ok, pick_port, spawn, stop, wait_until

REVIEWER_SA = "vault-token-reviewer"
REVIEWER_AUDIENCE = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class VaultServer:
    """A Vault-API server (OpenBao) and its root token."""

    addr: str
    root_token: str

    def admin(self) -> hvac.Client:
        return hvac.Client(url=self.addr, token=self.root_token)


@contextmanager
def running(
    workdir: Path, port: int | None = None, root_token: str = "tradebot-dev-root"
) -> Iterator[VaultServer]:
    """``bao server -dev``: in-memory, unsealed, KV v2 at secret/, on loopback."""
    binary = hack_bin("bao")
    workdir.mkdir(parents=True, exist_ok=True)
    port = pick_port(port, "OpenBao", "--openbao-port")
    log = workdir / "openbao.log"
    proc = spawn(
        [str(binary), "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}",
         f"-dev-root-token-id={root_token}", "-dev-no-store-token"],
        log=log, env={**os.environ, "HOME": str(workdir)},
    )  # fmt: skip
    addr = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{addr}/v1/sys/health"), 30, "OpenBao dev server", log, proc)
        yield VaultServer(addr=addr, root_token=root_token)
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


def grant_read(
    vault: VaultServer,
    *,
    role: str,
    service_account: str,
    namespace: str,
    secret_path: str,
    kv_mount: str = "secret",
    auth_mount: str = "kubernetes",
    audience: str = "vault",
) -> None:
    """Policy ``role`` reading exactly one KV v2 secret, and a kubernetes-auth role of the
    same name bound to one ServiceAccount (what the operator's design gives every bot)."""
    admin = vault.admin()
    admin.sys.create_or_update_policy(
        name=role,
        policy=f'path "{kv_mount}/data/{secret_path}" {{ capabilities = ["read"] }}',
    )
    admin.auth.kubernetes.create_role(
        name=role,
        bound_service_account_names=[service_account],
        bound_service_account_namespaces=[namespace],
        policies=[role],
        audience=audience,
        ttl="1h",
        mount_point=auth_mount,
    )
