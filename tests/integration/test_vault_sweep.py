"""The operator's Vault grant sweep (real OpenBao, real API server): a per-bot policy and
role left behind by a bot that is gone (its finalizer removed by hand, or Vault down for
longer than the finalizer waits) are removed; a live bot's grant, another namespace's and
a grant that does not name its bot stay. The `operator_with_vault` fixture sweeps every
2 seconds and watches one namespace."""

from __future__ import annotations

import time
from typing import Any

import hvac
import pytest
from hvac.exceptions import InvalidPath

from support.cluster import Cluster
from support.objects import account, apply, bot, eventually, strategy
from support.operator import OperatorProcess
from support.servers import VaultServer
from tradebot_contracts.names import runtime_service_account_name, vault_role_name

pytestmark = pytest.mark.integration

SIM = "http://127.0.0.1:18080"
MOUNT = "kubernetes"


def _policy(admin: hvac.Client, name: str) -> str | None:
    try:
        return str(admin.sys.read_policy(name=name)["data"]["rules"])
    except InvalidPath:
        return None


def _role(admin: hvac.Client, name: str) -> dict[str, Any] | None:
    try:
        return dict(admin.auth.kubernetes.read_role(name, mount_point=MOUNT))
    except InvalidPath:
        return None


def _leave_grant(admin: hvac.Client, ns: str, bot_name: str, *, comment: bool = True) -> str:
    """A per-bot policy and role exactly as the operator writes them (owner comment first),
    for a bot that does not exist: what a deleted bot leaves behind."""
    name = vault_role_name(ns, bot_name)
    owner = f"# tradebot: namespace={ns} bot={bot_name}\n" if comment else ""
    hcl = (
        f"# managed by tradebot-operator; edits are overwritten\n{owner}"
        f'path "secret/data/tradebot/{ns}/{bot_name}" {{\n  capabilities = ["read"]\n}}\n'
    )
    admin.sys.create_or_update_policy(name=name, policy=hcl)
    admin.auth.kubernetes.create_role(
        name=name, bound_service_account_names=[runtime_service_account_name(bot_name)],
        bound_service_account_namespaces=[ns], policies=[name], audience="vault",
        ttl="5m", mount_point=MOUNT,
    )  # fmt: skip
    return name


def test_sweep_removes_orphaned_grants_and_keeps_live_ones(
    crds_installed: Cluster, operator_with_vault: OperatorProcess, openbao: VaultServer
) -> None:
    cluster, ns = crds_installed, operator_with_vault.namespace
    admin = openbao.admin()
    path = f"tradebot/{ns}/live"
    admin.secrets.kv.v2.create_or_update_secret(
        path=path, secret={"apiKey": "k", "secret": "s"}, mount_point="secret"
    )
    exchanges = [{"account": "xa-live", "symbols": ["BTC/USDT"],
                  "allocation": {"quote": "USDT", "amount": "100"}}]  # fmt: skip
    apply(
        cluster, ns, strategy("sma-live"),
        account("xa-live", mode="sandbox", endpoint=SIM, credentials={"vault": {"path": path}}),
        bot("live", "sma-live", mode="live", exchanges=exchanges),
    )  # fmt: skip
    live = vault_role_name(ns, "live")
    eventually(lambda: _role(admin, live), 60, "the live bot's role")

    gone = _leave_grant(admin, ns, "gone")
    elsewhere_ns = f"{ns}-other"  # a namespace this operator does not watch
    elsewhere = _leave_grant(admin, elsewhere_ns, "gone")
    anonymous = _leave_grant(admin, ns, "anonymous", comment=False)
    try:
        eventually(lambda: _role(admin, gone) is None and _policy(admin, gone) is None,
                   30, f"orphaned role and policy {gone} removed")  # fmt: skip
        assert f"removing orphaned vault policy and role {gone}" in operator_with_vault.log_text()
        time.sleep(5)  # two more sweeps (2 s apart): nothing else goes
        assert _role(admin, live) is not None
        assert f"# tradebot: namespace={ns} bot=live\n" in (_policy(admin, live) or "")
        # not this operator's to judge: another namespace, or no owner comment while
        # only some namespaces are watched
        assert _role(admin, elsewhere) is not None and _policy(admin, elsewhere) is not None
        assert _role(admin, anonymous) is not None
    finally:
        for name in (elsewhere, anonymous):
            admin.auth.kubernetes.delete_role(name, mount_point=MOUNT)
            admin.sys.delete_policy(name)
