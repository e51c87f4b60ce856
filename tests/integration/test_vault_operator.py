"""The operator manages Vault (real OpenBao, real API-server TokenReview): per-bot policies
and Kubernetes-auth roles, CredentialsReady on the accounts, CredentialsNotReady on the
bots, cleanup on delete, and no secret value anywhere the system writes (canary)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import hvac
import pytest
from hvac.exceptions import Forbidden, InvalidPath, InvalidRequest
from prometheus_client import generate_latest

from support.cluster import Cluster
from support.objects import account, apply, bot, eventually, get, strategy
from support.operator import OperatorProcess
from support.servers import VaultServer
from tradebot_contracts.names import runtime_service_account_name, vault_role_name
from tradebot_contracts.runtime_config import CredentialsConfig, VaultCredentials
from tradebot_runtime.credentials import CredentialsProvider

pytestmark = pytest.mark.integration

SIM = "http://127.0.0.1:18080"


def _vault_account(name: str, path: str) -> dict[str, Any]:
    return account(name, mode="sandbox", endpoint=SIM, credentials={"vault": {"path": path}})


def _vault_bot(name: str, *accounts: str) -> dict[str, Any]:
    exchanges = [
        {"account": a, "symbols": ["BTC/USDT"], "allocation": {"quote": "USDT", "amount": "100"}}
        for a in accounts
    ]
    # a sandbox account is traded by a live bot: a paper bot never receives account keys
    return bot(name, mode="live", exchanges=exchanges)


def _condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return None


def _credentials_ready(cluster: Cluster, ns: str, name: str, status: str) -> Any:
    def check() -> Any:
        c = _condition(get(cluster, ns, "exchangeaccount", name), "CredentialsReady")
        return c if c is not None and c["status"] == status else None

    return eventually(check, 60, f"{name} CredentialsReady={status}")


def _policy(admin: hvac.Client, name: str) -> str | None:
    try:
        response = admin.sys.read_policy(name=name)
    except InvalidPath:
        return None
    data = response.get("data", {}) if isinstance(response, dict) else {}
    rules = data.get("policy") or data.get("rules")
    return str(rules) if rules else None


def _role(admin: hvac.Client, name: str) -> dict[str, Any] | None:
    try:
        return dict(admin.auth.kubernetes.read_role(name, mount_point="kubernetes"))
    except InvalidPath:
        return None


def _sa_token(cluster: Cluster, ns: str, sa: str, audience: str = "vault") -> str:
    return cluster.token(ns, sa, audience, "10m")


def test_operator_writes_per_bot_policies_roles_and_cleans_up(
    crds_installed: Cluster, operator_with_vault: OperatorProcess, openbao: VaultServer,
    tmp_path: Path,
) -> None:  # fmt: skip
    cluster, ns = crds_installed, operator_with_vault.namespace
    admin = openbao.admin()
    canary = f"CANARY-{uuid.uuid4().hex}"
    path_a, path_b, path_c = (f"tradebot/{ns}/{x}" for x in ("a", "b", "c"))
    admin.secrets.kv.v2.create_or_update_secret(
        path=path_a, secret={"apiKey": "key-a", "secret": canary}, mount_point="secret"
    )
    admin.secrets.kv.v2.create_or_update_secret(
        path=path_b, secret={"apiKey": "key-b", "secret": "secret-b"}, mount_point="secret"
    )
    # Account c's secret lacks the mapped key "secret".
    admin.secrets.kv.v2.create_or_update_secret(
        path=path_c, secret={"apiKey": "key-c"}, mount_point="secret"
    )
    accounts = [_vault_account(f"xa-{x}", f"tradebot/{ns}/{x}") for x in "abc"]
    bots = [_vault_bot(f"bot-{x}", f"xa-{x}") for x in "abc"]
    apply(cluster, ns, strategy(), *accounts, *bots)

    ready = _credentials_ready(cluster, ns, "xa-a", "True")
    assert ready["reason"] == "VaultKeysPresent"
    missing = _credentials_ready(cluster, ns, "xa-c", "False")
    assert missing["reason"] == "VaultKeysMissing" and "secret" in missing["message"]

    # A bot whose account's credentials are not ready stays out of Running, named reason.
    def bot_c_waits() -> Any:
        status = (get(cluster, ns, "tradingbot", "bot-c") or {}).get("status") or {}
        ready_c = _condition({"status": status}, "Ready") or {}
        return status if ready_c.get("reason") == "CredentialsNotReady" else None

    status_c = eventually(bot_c_waits, 60, "bot-c CredentialsNotReady")
    assert status_c["phase"] == "Pending"
    assert "xa-c" in (_condition({"status": status_c}, "Ready") or {})["message"]
    assert _role(admin, vault_role_name(ns, "bot-c")) is None  # nothing granted

    role_a, role_b = vault_role_name(ns, "bot-a"), vault_role_name(ns, "bot-b")
    policy_a = eventually(lambda: _policy(admin, role_a), 60, "bot-a policy")
    eventually(lambda: _role(admin, role_b), 60, "bot-b role")
    assert f'"secret/data/{path_a}"' in policy_a and path_b not in policy_a
    role = _role(admin, role_a) or {}
    assert role["bound_service_account_names"] == [runtime_service_account_name("bot-a")]
    assert role["bound_service_account_namespaces"] == [ns]
    assert role["audience"] == "vault" and role["token_ttl"] == 300

    # Bot A's pod identity (TokenRequest with the audience) reads A and is denied B.
    sa_a, sa_b = runtime_service_account_name("bot-a"), runtime_service_account_name("bot-b")
    eventually(lambda: get(cluster, ns, "serviceaccount", sa_a), 30, "bot-a ServiceAccount")
    eventually(lambda: get(cluster, ns, "serviceaccount", sa_b), 30, "bot-b ServiceAccount")
    pod_a = hvac.Client(url=openbao.addr)
    pod_a.auth.kubernetes.login(role_a, _sa_token(cluster, ns, sa_a), mount_point="kubernetes")
    got = pod_a.secrets.kv.v2.read_secret_version(
        path=path_a, mount_point="secret", raise_on_deleted_version=True
    )
    assert got["data"]["data"]["apiKey"] == "key-a"
    with pytest.raises(Forbidden):
        pod_a.secrets.kv.v2.read_secret_version(
            path=path_b, mount_point="secret", raise_on_deleted_version=True
        )
    with pytest.raises((Forbidden, InvalidRequest)):  # B's identity cannot use A's role
        hvac.Client(url=openbao.addr).auth.kubernetes.login(
            role_a, _sa_token(cluster, ns, sa_b), mount_point="kubernetes"
        )
    with pytest.raises((Forbidden, InvalidRequest)):  # nor A's token for another audience
        hvac.Client(url=openbao.addr).auth.kubernetes.login(
            role_a, _sa_token(cluster, ns, sa_a, "other"), mount_point="kubernetes"
        )

    # The runtime's provider (in process) loads A's keys through the operator's role.
    token_file = tmp_path / "token"
    token_file.write_text(_sa_token(cluster, ns, sa_a))
    config = CredentialsConfig(source="vault", vault=VaultCredentials(
        address=openbao.addr, auth_mount="kubernetes", role=role_a, kv_mount="secret",
        path=path_a, keys={"apiKey": "apiKey", "secret": "secret"}, token_path=str(token_file),
    ))  # fmt: skip
    provider = CredentialsProvider(config, poll_interval_s=1)
    assert asyncio.run(provider.start())["secret"] == canary
    metrics_text = generate_latest().decode()

    # The bot's accounts change: the policy follows (B's path instead of A's).
    cluster.kubectl(
        "patch", "tradingbot", "bot-a", "-n", ns, "--type=merge",
        "-p", json.dumps({"spec": {"exchanges": _vault_bot("x", "xa-b")["spec"]["exchanges"]}}),
    )  # fmt: skip
    eventually(
        lambda: (p := _policy(admin, role_a)) and path_b in p and path_a not in p,
        60, "bot-a policy follows its accounts",
    )  # fmt: skip

    # Canary: the secret value appears nowhere the system wrote.
    _assert_no_canary(cluster, ns, operator_with_vault, canary, metrics_text)

    # Deleting a bot removes its policy and role.
    cluster.kubectl("delete", "tradingbot", "bot-a", "-n", ns, "--wait=true", "--timeout=90s")
    eventually(lambda: _role(admin, role_a) is None and _policy(admin, role_a) is None,
               30, "bot-a role and policy removed")  # fmt: skip
    assert _role(admin, role_b) is not None  # others untouched


def _assert_no_canary(
    cluster: Cluster, ns: str, op: OperatorProcess, canary: str, metrics_text: str
) -> None:
    kinds = ("tradingbots,exchangeaccounts,strategies,deployments,replicasets,pods,configmaps,"
             "services,serviceaccounts,roles,rolebindings,leases,events,"
             "poddisruptionbudgets,secrets")  # fmt: skip
    dumped = cluster.kubectl("get", kinds, "-n", ns, "-o", "yaml").stdout
    assert "kind: ExchangeAccount" in dumped and "kind: ConfigMap" in dumped  # scanned
    places = {
        "namespace objects": dumped,
        "operator log": op.log_text(),
        "metrics": metrics_text,
        "operator environ": Path(f"/proc/{op.pid}/environ").read_bytes().decode(errors="replace"),
        "operator cmdline": Path(f"/proc/{op.pid}/cmdline").read_bytes().decode(errors="replace"),
    }
    leaked = [where for where, text in places.items() if canary in text]
    assert leaked == [], f"canary secret found in {leaked}"
