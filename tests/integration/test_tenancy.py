"""A namespace is a tenant: the findings of the tenancy review, each tried as a hostile
tenant would, against the real API server, the real operator (with the installation's
tenancy defaults, plus the loopback simulator as an allowed endpoint) and a real OpenBao.

Finding 11 (the operator's own writes limited by a ValidatingAdmissionPolicy) is in
tests/integration/test_chart.py, which installs the chart; findings 2 and 8 (names unique by
construction) have their pure proofs in tests/unit/test_names.py and are tried here on the
API server.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import hvac
import pytest
from hvac.exceptions import Forbidden, InvalidPath

from support.cluster import Cluster
from support.objects import account, apply, bot, condition, eventually, get, strategy
from support.operator import OperatorProcess
from support.servers import VaultServer
from tradebot_contracts.names import exchange_object_name, lease_name, vault_role_name
from tradebot_operator.builders.vault_policy import operator_policy_hcl

pytestmark = pytest.mark.integration


def reason_of(cluster: Cluster, ns: str, kind: str, name: str, type_: str) -> Any:
    def check() -> Any:
        c = condition(get(cluster, ns, kind, name), type_)
        return c if c is not None and c.get("reason") else None

    return eventually(check, 60, f"{kind} {name} {type_} with a reason")


def refused(cluster: Cluster, ns: str, obj: dict[str, Any]) -> str:
    """The API server's refusal of ``obj`` (the CRD's schema or CEL rules)."""
    result = cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj), check=False)
    assert result.returncode != 0, f"the API server accepted {obj['metadata']['name']}"
    return result.stderr


def live_bot(name: str, account_name: str, strategy_name: str) -> dict[str, Any]:
    exchanges = [
        {
            "account": account_name,
            "symbols": ["BTC/USDT"],
            "allocation": {"quote": "USDT", "amount": "100"},
        }
    ]
    return bot(name, strategy_name, mode="live", exchanges=exchanges)


def _policy(admin: hvac.Client, name: str) -> str | None:
    try:
        return str(admin.sys.read_policy(name=name)["data"]["rules"])
    except InvalidPath:
        return None


@pytest.fixture(scope="module")
def tenant(operator_with_vault: OperatorProcess) -> str:
    """The namespace the strict operator watches (tenant B)."""
    return operator_with_vault.namespace


def test_finding_1_another_namespaces_vault_path_is_refused_and_never_looked_up(
    cluster: Cluster, tenant: str, openbao: VaultServer
) -> None:
    admin = hvac.Client(url=openbao.addr, token=openbao.root_token)
    other = f"victim-{uuid.uuid4().hex[:6]}"  # tenant A: its keys in its own prefix
    admin.secrets.kv.v2.create_or_update_secret(
        path=f"tradebot/{other}/binance", secret={"apiKey": "a-key", "secret": "a-secret"},
        mount_point="secret",
    )  # fmt: skip
    stolen = account(
        "xa-stolen", mode="sandbox", endpoint="http://127.0.0.1:18080",
        credentials={"vault": {"path": f"tradebot/{other}/binance"}},
    )  # fmt: skip
    apply(cluster, tenant, stolen, strategy("sma-t1"), live_bot("bot-t1", "xa-stolen", "sma-t1"))
    ready = reason_of(cluster, tenant, "exchangeaccount", "xa-stolen", "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "VaultPathOutsideNamespace")
    assert f"tradebot/{tenant}/" in ready["message"]
    credentials = condition(
        get(cluster, tenant, "exchangeaccount", "xa-stolen"), "CredentialsReady"
    )
    assert credentials is None or credentials["reason"] != "VaultKeysPresent"  # never checked
    blocked = reason_of(cluster, tenant, "tradingbot", "bot-t1", "Ready")
    assert blocked["reason"] == "AccountInvalid", blocked
    # no policy, no role: B's pods can never log in to read A's keys
    assert _policy(admin, vault_role_name(tenant, "bot-t1")) is None
    # leaving the prefix with .. or an empty segment is refused by the API server itself
    for path in (f"tradebot/{tenant}/../{other}/binance", f"tradebot/{tenant}//x"):
        sneaky = account("xa-dots", mode="sandbox", credentials={"vault": {"path": path}})
        assert "spec.credentials.vault.path" in refused(cluster, tenant, sneaky)


def test_finding_3_the_operators_own_policy_cannot_rewrite_itself(openbao: VaultServer) -> None:
    admin = hvac.Client(url=openbao.addr, token=openbao.root_token)
    admin.sys.create_or_update_policy(name="tradebot-operator", policy=operator_policy_hcl())
    token = admin.auth.token.create(
        policies=["tradebot-operator"], no_default_policy=True, ttl="5m"
    )
    operator = hvac.Client(url=openbao.addr, token=token["auth"]["client_token"])
    everything = 'path "*" { capabilities = ["create", "read", "update", "delete", "sudo"] }'
    with pytest.raises(Forbidden):
        operator.sys.create_or_update_policy(name="tradebot-operator", policy=everything)
    with pytest.raises(Forbidden):
        operator.sys.create_or_update_policy(name="tradebot-admins", policy=everything)
    with pytest.raises(Forbidden):
        operator.auth.kubernetes.create_role(
            "tradebot-operator", bound_service_account_names=["x"],
            bound_service_account_namespaces=["x"], mount_point="kubernetes",
        )  # fmt: skip
    # what it is for still works: a per-bot policy under its prefix
    name = vault_role_name("ns", f"b{uuid.uuid4().hex[:6]}")
    operator.sys.create_or_update_policy(
        name=name, policy='path "secret/data/x" { capabilities = ["read"] }'
    )
    operator.sys.delete_policy(name=name)


def test_finding_4_a_paper_bot_never_gets_a_keyed_accounts_keys(
    cluster: Cluster, tenant: str
) -> None:
    keyed = account(
        "xa-keyed", mode="sandbox", endpoint="http://127.0.0.1:18080",
        credentials={"vault": {"path": f"tradebot/{tenant}/keyed"}},
    )  # fmt: skip
    paper = bot("bot-t4", strategy_name="sma-t4")
    paper["spec"]["exchanges"][0]["account"] = "xa-keyed"
    apply(cluster, tenant, keyed, strategy("sma-t4"), paper)
    ready = reason_of(cluster, tenant, "tradingbot", "bot-t4", "Ready")
    assert ready["reason"] == "AccountModeForPaperBot", ready
    assert "spec.exchanges[0].account" in ready["message"]
    name = exchange_object_name("bot-t4", "xa-keyed")
    assert get(cluster, tenant, "configmap", name) is None
    assert get(cluster, tenant, "deployment", name) is None


@pytest.mark.parametrize(
    "endpoint",
    ["http://169.254.169.254/", "http://10.0.0.1:8080", "https://kubernetes.default.svc"],
    ids=["metadata", "private", "apiserver"],
)
def test_finding_5_endpoints_outside_the_installations_list_are_refused(
    cluster: Cluster, tenant: str, endpoint: str
) -> None:
    name = f"xa-ssrf-{uuid.uuid4().hex[:5]}"
    apply(cluster, tenant, account(name, endpoint=endpoint))
    ready = reason_of(cluster, tenant, "exchangeaccount", name, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "EndpointNotAllowed"), ready


def test_finding_5_user_info_in_an_endpoint_is_refused_by_the_api(
    cluster: Cluster, tenant: str
) -> None:
    tricky = account("xa-userinfo", endpoint="http://127.0.0.1@169.254.169.254/")
    assert "spec.endpoint" in refused(cluster, tenant, tricky)


def test_finding_5_every_bot_gets_a_network_policy(cluster: Cluster, tenant: str) -> None:
    apply(
        cluster,
        tenant,
        account("xa-np"),
        strategy("sma-np"),
        _paper_bot("bot-np", "xa-np", "sma-np"),
    )
    policy = eventually(lambda: get(cluster, tenant, "networkpolicy", "bot-np-runtime"), 60,
                        "the bot's NetworkPolicy")  # fmt: skip
    spec = policy["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    blocks = [
        peer["ipBlock"] for rule in spec["egress"] for peer in rule["to"] if "ipBlock" in peer
    ]
    assert blocks and all("169.254.0.0/16" in b.get("except", []) for b in blocks), blocks


def _paper_bot(name: str, account_name: str, strategy_name: str, **runtime: Any) -> dict[str, Any]:
    body = bot(name, strategy_name=strategy_name)
    body["spec"]["exchanges"][0]["account"] = account_name
    if runtime:
        body["spec"]["runtime"] = runtime
    return body


@pytest.mark.parametrize(
    ("runtime", "reason"),
    [
        ({"image": "docker.io/evil/miner:latest"}, "ImageNotAllowed"),
        ({"env": [{"name": "HTTPS_PROXY", "value": "http://evil.example:3128"}]}, "EnvNotAllowed"),
        ({"tolerations": [{"operator": "Exists"}]}, "PlacementNotAllowed"),
        ({"nodeSelector": {"node-role.kubernetes.io/control-plane": ""}}, "PlacementNotAllowed"),
        ({"priorityClassName": "system-node-critical"}, "PriorityClassNotAllowed"),
    ],
    ids=["image", "env", "tolerations", "node", "priority"],
)
def test_finding_6_the_pod_surface_stays_within_installation_policy(
    cluster: Cluster, tenant: str, runtime: dict[str, Any], reason: str
) -> None:
    suffix = uuid.uuid4().hex[:5]
    name, acct, strat = f"bot-pod-{suffix}", f"xa-pod-{suffix}", f"sma-pod-{suffix}"
    apply(cluster, tenant, account(acct), strategy(strat), _paper_bot(name, acct, strat, **runtime))
    ready = reason_of(cluster, tenant, "tradingbot", name, "Ready")
    assert ready["reason"] == reason, ready
    assert get(cluster, tenant, "deployment", exchange_object_name(name, acct)) is None


def test_finding_6_secret_ref_on_a_live_account_is_refused_by_the_api(
    cluster: Cluster, tenant: str
) -> None:
    live = account("xa-live-secret", mode="live", credentials={"secretRef": {"name": "any-secret"}})
    assert "secretRef" in refused(cluster, tenant, live)


def test_finding_6_secret_ref_needs_the_installations_permission(
    cluster: Cluster, tenant: str
) -> None:
    dev = account(
        "xa-dev-secret", mode="sandbox", endpoint="http://127.0.0.1:18080",
        credentials={"secretRef": {"name": "some-other-apps-secret"}},
    )  # fmt: skip
    apply(cluster, tenant, dev)
    ready = reason_of(cluster, tenant, "exchangeaccount", "xa-dev-secret", "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SecretRefNotAllowed"), ready


def test_finding_8_child_names_of_two_bots_never_collide(cluster: Cluster, tenant: str) -> None:
    """bot a + account b-c and bot a-b + account c: both used to own ConfigMap a-b-c."""
    apply(
        cluster, tenant, account("b-c"), account("c"), strategy("sma-t8"),
        _paper_bot("a", "b-c", "sma-t8"), _paper_bot("a-b", "c", "sma-t8"),
    )  # fmt: skip
    for bot_name, account_name in (("a", "b-c"), ("a-b", "c")):
        name = exchange_object_name(bot_name, account_name)
        cm = eventually(lambda n=name: get(cluster, tenant, "configmap", n), 60, name)
        assert cm["metadata"]["ownerReferences"][0]["name"] == bot_name
        lease = eventually(
            lambda b=bot_name, a=account_name: get(cluster, tenant, "lease", lease_name(b, a, 0)),
            60, "lease",
        )  # fmt: skip
        assert lease["metadata"]["ownerReferences"][0]["name"] == bot_name
    assert exchange_object_name("a", "b-c") != exchange_object_name("a-b", "c")


def test_finding_8_a_child_name_held_by_another_owner_is_not_taken_over(
    cluster: Cluster, tenant: str
) -> None:
    """Forced server-side apply must never take another bot's object: the API server
    refuses a second controller, and the bot's condition names both owners."""
    apply(cluster, tenant, account("xa-t8"), strategy("sma-t8b"))
    holder = bot("holder-t8", strategy_name="sma-t8b", suspend=True)
    holder["spec"]["exchanges"][0]["account"] = "xa-t8"
    apply(cluster, tenant, holder)
    uid = eventually(lambda: (get(cluster, tenant, "tradingbot", "holder-t8") or {}).get(
        "metadata", {}).get("uid"), 30, "holder uid")  # fmt: skip
    taken = exchange_object_name("victim-t8", "xa-t8")
    cluster.kubectl("apply", "-n", tenant, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": taken, "ownerReferences": [{
            "apiVersion": "tradebot.io/v1alpha1", "kind": "TradingBot", "name": "holder-t8",
            "uid": uid, "controller": True}]},
        "data": {"runtime.json": "{}"},
    }))  # fmt: skip
    victim = bot("victim-t8", strategy_name="sma-t8b")
    victim["spec"]["exchanges"][0]["account"] = "xa-t8"
    apply(cluster, tenant, victim)

    def refused_with_both_names() -> Any:
        status = (get(cluster, tenant, "tradingbot", "victim-t8") or {}).get("status") or {}
        text = json.dumps(status.get("conditions") or [])
        return text if "holder-t8" in text and "victim-t8" in text else None

    eventually(refused_with_both_names, 60, "a condition naming both owners")
    cm = get(cluster, tenant, "configmap", taken)
    assert cm is not None
    controllers = [r["name"] for r in cm["metadata"]["ownerReferences"] if r.get("controller")]
    assert controllers == ["holder-t8"]
    assert cm["data"] == {"runtime.json": "{}"}
