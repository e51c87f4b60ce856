"""Smoke test: OpenBao's kubernetes auth method validates our API server's tokens.

OpenBao calls the API server's TokenReview endpoint with a reviewer token; a runtime pod's
projected token then logs in to a role bound to its ServiceAccount and reads its KV v2
secret, while another ServiceAccount's token is refused.
"""

from __future__ import annotations

import uuid

import hvac
import pytest
import yaml
from hvac.exceptions import Forbidden, InvalidRequest

from support.cluster import Cluster
from support.servers import VaultServer

pytestmark = pytest.mark.integration


def _token(cluster: Cluster, ns: str, sa: str, audience: str) -> str:
    out = cluster.kubectl(
        "create", "token", sa, "-n", ns, f"--audience={audience}", "--duration=10m"
    )
    return out.stdout.strip()


def test_service_account_token_logs_into_openbao_and_reads_only_its_secret(
    cluster: Cluster, openbao: VaultServer
) -> None:
    ns = cluster.namespace("vault")
    for sa in ("token-reviewer", "bot-a", "bot-b"):
        cluster.kubectl("create", "serviceaccount", sa, "-n", ns)
    cluster.kubectl(
        "create", "-f", "-",
        input=yaml.safe_dump({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{ns}-token-reviewer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "system:auth-delegator"},
            "subjects": [{"kind": "ServiceAccount", "name": "token-reviewer", "namespace": ns}],
        }),
    )  # fmt: skip
    server, ca = cluster.server_and_ca()

    admin = hvac.Client(url=openbao.addr, token=openbao.root_token)
    mount = f"k8s-{uuid.uuid4().hex[:6]}"
    admin.sys.enable_auth_method("kubernetes", path=mount)
    admin.auth.kubernetes.configure(
        kubernetes_host=server,
        kubernetes_ca_cert=ca.decode(),
        token_reviewer_jwt=_token(
            cluster, ns, "token-reviewer", "https://kubernetes.default.svc.cluster.local"
        ),
        mount_point=mount,
    )
    secret_path = f"tradebot/{ns}/bot-a"
    admin.secrets.kv.v2.create_or_update_secret(
        path=secret_path, secret={"apiKey": "key-a", "secret": "canary-a"}, mount_point="secret"
    )
    admin.sys.create_or_update_policy(
        name=f"{ns}-bot-a", policy=f'path "secret/data/{secret_path}" {{ capabilities = ["read"] }}'
    )
    admin.auth.kubernetes.create_role(
        name="bot-a",
        bound_service_account_names=["bot-a"],
        bound_service_account_namespaces=[ns],
        policies=[f"{ns}-bot-a"],
        audience="vault",
        ttl="5m",
        mount_point=mount,
    )

    bot_a = hvac.Client(url=openbao.addr)
    bot_a.auth.kubernetes.login("bot-a", _token(cluster, ns, "bot-a", "vault"), mount_point=mount)
    assert bot_a.is_authenticated()
    data = bot_a.secrets.kv.v2.read_secret_version(
        path=secret_path, mount_point="secret", raise_on_deleted_version=True
    )
    assert data["data"]["data"] == {"apiKey": "key-a", "secret": "canary-a"}
    # The role grants nothing else.
    with pytest.raises(Forbidden):
        bot_a.secrets.kv.v2.read_secret_version(
            path=f"tradebot/{ns}/bot-b", mount_point="secret", raise_on_deleted_version=True
        )

    # Bot B's pod identity is not bound to bot A's role.
    bot_b = hvac.Client(url=openbao.addr)
    with pytest.raises((Forbidden, InvalidRequest)):
        bot_b.auth.kubernetes.login(
            "bot-a", _token(cluster, ns, "bot-b", "vault"), mount_point=mount
        )
    # A token minted for another audience is refused as well.
    with pytest.raises((Forbidden, InvalidRequest)):
        bot_b.auth.kubernetes.login(
            "bot-a", _token(cluster, ns, "bot-a", "other"), mount_point=mount
        )
