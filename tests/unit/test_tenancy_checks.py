"""Tenancy checks (tradebot_operator.checks.tenancy): pure, one case per way a tenant could
reach past its namespace through a spec field."""

from __future__ import annotations

from typing import Any

import pytest

from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.api.strategy import Strategy
from tradebot_operator.api.trading_bot import TradingBot
from tradebot_operator.checks.tenancy import (
    Tenant,
    bot_tenancy_problems,
    strategy_tenancy_problems,
    validate_account_tenancy,
)
from tradebot_operator.installation import TenancyPolicy

NS = "team-b"
RUNTIME_IMAGE = "registry.example.com/tradebot:0.1.0"


def tenant(**policy: Any) -> Tenant:
    return Tenant(NS, TenancyPolicy(**policy), RUNTIME_IMAGE)


def account(**spec: Any) -> ExchangeAccount:
    body = {"exchange": "binance", "mode": "sandbox", **spec}
    return ExchangeAccount.model_validate(
        {"metadata": {"name": "acct", "namespace": NS}, "spec": body}
    )


def vault(path: str, mount: str = "secret") -> dict[str, Any]:
    return {"credentials": {"vault": {"path": path, "mount": mount}}}


def reasons(problems: list[Any]) -> list[str]:
    return [p.reason for p in problems]


def test_a_vault_path_under_the_namespace_prefix_passes() -> None:
    assert validate_account_tenancy(account(**vault(f"tradebot/{NS}/binance")), tenant()) == []


@pytest.mark.parametrize(
    "path",
    ["tradebot/team-a/binance", "tradebot/team-bx/binance", "other/binance", "tradebot/team-b"],
)
def test_another_namespaces_vault_path_is_refused(path: str) -> None:
    (problem,) = validate_account_tenancy(account(**vault(path)), tenant())
    assert problem.reason == "VaultPathOutsideNamespace"
    assert problem.field == "spec.credentials.vault.path"
    assert "tradebot/team-b/" in problem.message


def test_dot_dot_cannot_leave_the_prefix() -> None:
    # the CRD pattern refuses it at the API; an object stored before that still is refused
    acct = account(**vault(f"tradebot/{NS}/x"))
    acct.spec.credentials.vault.path = f"tradebot/{NS}/../team-a/binance"  # type: ignore[union-attr]
    assert reasons(validate_account_tenancy(acct, tenant())) == ["VaultPathOutsideNamespace"]


def test_another_mount_is_refused() -> None:
    problems = validate_account_tenancy(account(**vault(f"tradebot/{NS}/x", "sys")), tenant())
    assert reasons(problems) == ["VaultMountNotAllowed"]


def test_the_prefix_is_set_by_the_installation() -> None:
    policy = {"vault_path_prefix": "kv/tenants/{namespace}/", "vault_kv_mount": "kv2"}
    ok = account(**vault(f"kv/tenants/{NS}/binance", "kv2"))
    assert validate_account_tenancy(ok, tenant(**policy)) == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254/",
        "http://[fe80::1]/",
        "http://10.96.0.1/",
        "https://kubernetes.default.svc",
        "http://prometheus.monitoring.svc.cluster.local:9090",
        "https://evil.example.net",
    ],
)
def test_endpoints_outside_the_allow_list_are_refused(endpoint: str) -> None:
    policy = {
        "allowed_endpoints": ("127.0.0.0/8", "*.binance.com"),
        "cluster_networks": ("10.96.0.0/12",),
    }
    problems = validate_account_tenancy(account(endpoint=endpoint), tenant(**policy))
    assert reasons(problems) == ["EndpointNotAllowed"], problems


def test_link_local_is_refused_even_when_allowed() -> None:
    policy = {"allowed_endpoints": ("0.0.0.0/0",)}
    problems = validate_account_tenancy(
        account(endpoint="http://169.254.169.254/"), tenant(**policy)
    )
    assert reasons(problems) == ["EndpointNotAllowed"]


def test_no_endpoint_override_without_an_allow_list() -> None:
    problems = validate_account_tenancy(account(endpoint="http://127.0.0.1:8080"), tenant())
    assert reasons(problems) == ["EndpointNotAllowed"]
    assert "only for none" in problems[0].message


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:8080", "wss://stream.binance.com"])
def test_allowed_endpoints_pass(endpoint: str) -> None:
    policy = {"allowed_endpoints": ("127.0.0.0/8", "*.binance.com")}
    assert validate_account_tenancy(account(endpoint=endpoint), tenant(**policy)) == []


def test_user_info_in_an_endpoint_is_refused() -> None:
    acct = account(endpoint="http://127.0.0.1:8080")
    acct.spec.endpoint = "http://127.0.0.1@169.254.169.254/"
    problems = validate_account_tenancy(acct, tenant(allowed_endpoints=("127.0.0.0/8",)))
    assert reasons(problems) == ["EndpointNotAllowed"]


def test_secret_ref_needs_the_installation_switch_and_never_on_live() -> None:
    dev = {"credentials": {"secretRef": {"name": "keys"}}}
    assert reasons(validate_account_tenancy(account(**dev), tenant())) == ["SecretRefNotAllowed"]
    assert validate_account_tenancy(account(**dev), tenant(allow_secret_ref=True)) == []
    live = account(**vault(f"tradebot/{NS}/x"), mode="live")
    live.spec.credentials = account(**dev).spec.credentials
    problems = validate_account_tenancy(live, tenant(allow_secret_ref=True))
    assert reasons(problems) == ["SecretRefNotAllowed"]


def bot(runtime: dict[str, Any]) -> TradingBot:
    return TradingBot.model_validate(
        {
            "metadata": {"name": "b", "namespace": NS},
            "spec": {
                "strategyRef": {"name": "s"},
                "mode": "paper",
                "exchanges": [
                    {
                        "account": "acct",
                        "symbols": ["BTC/USDT"],
                        "allocation": {"quote": "USDT", "amount": "100"},
                    }
                ],
                "risk": {
                    "maxPositionNotional": "100",
                    "maxOrderNotional": "10",
                    "maxDailyLoss": "5",
                },
                "runtime": runtime,
            },
        }
    )


@pytest.mark.parametrize(
    ("runtime", "reason", "field"),
    [
        ({"image": "docker.io/evil/miner:latest"}, "ImageNotAllowed", "spec.runtime.image"),
        (
            {"env": [{"name": "HTTPS_PROXY", "value": "http://x"}]},
            "EnvNotAllowed",
            "spec.runtime.env[0].name",
        ),
        (
            {"env": [{"name": "SSL_CERT_FILE", "value": "/tmp/ca"}]},
            "EnvNotAllowed",
            "spec.runtime.env[0].name",
        ),
        (
            {"tolerations": [{"operator": "Exists"}]},
            "PlacementNotAllowed",
            "spec.runtime.tolerations",
        ),
        (
            {"nodeSelector": {"node-role.kubernetes.io/control-plane": ""}},
            "PlacementNotAllowed",
            "spec.runtime.nodeSelector",
        ),
        ({"affinity": {"nodeAffinity": {}}}, "PlacementNotAllowed", "spec.runtime.affinity"),
        (
            {"priorityClassName": "system-node-critical"},
            "PriorityClassNotAllowed",
            "spec.runtime.priorityClassName",
        ),
    ],
)
def test_the_pod_surface_is_bounded_by_the_installation(
    runtime: dict[str, Any], reason: str, field: str
) -> None:
    (problem,) = bot_tenancy_problems(bot(runtime), tenant())
    assert (problem.reason, problem.field) == (reason, field)


def test_what_the_installation_allows_passes() -> None:
    policy = {
        "allowed_images": ("registry.example.com/tradebot*",),
        "allowed_env": ("TRADEBOT_*",),
        "allowed_priority_classes": ("trading",),
        "allow_tolerations": True,
        "allow_node_placement": True,
    }
    runtime = {
        "image": "registry.example.com/tradebot-plugins:1",
        "env": [{"name": "TRADEBOT_LOG_LEVEL", "value": "DEBUG"}],
        "priorityClassName": "trading",
        "tolerations": [{"operator": "Exists"}],
        "nodeSelector": {"pool": "trading"},
    }
    assert bot_tenancy_problems(bot(runtime), tenant(**policy)) == []
    assert bot_tenancy_problems(bot({"image": RUNTIME_IMAGE}), tenant()) == []


def test_a_python_strategys_image_is_bounded_too() -> None:
    strategy = Strategy.model_validate(
        {
            "metadata": {"name": "s", "namespace": NS},
            "spec": {
                "type": "python",
                "timeframe": "1m",
                "python": {"module": "a.b:C", "image": "evil/x:1"},
            },
        }
    )
    assert reasons(strategy_tenancy_problems(strategy, tenant())) == ["ImageNotAllowed"]


def test_a_secret_ref_is_ready_only_for_an_existing_secret_labelled_for_tradebot() -> None:
    from tradebot_contracts.names import CREDENTIALS_SECRET_LABEL
    from tradebot_operator.controllers.references.status import secret_ref_check

    assert secret_ref_check("keys", None).reason == "SecretNotFound"
    unlabelled = secret_ref_check("keys", {"metadata": {"labels": {"app": "db"}}})
    assert (unlabelled.status, unlabelled.reason) == ("False", "SecretNotLabelled")
    wrong_value = {"metadata": {"labels": {CREDENTIALS_SECRET_LABEL: "yes"}}}
    assert secret_ref_check("keys", wrong_value).status == "False"
    ok = secret_ref_check("keys", {"metadata": {"labels": {CREDENTIALS_SECRET_LABEL: "true"}}})
    assert (ok.status, ok.reason) == ("True", "SecretRefDevelopmentOnly")
