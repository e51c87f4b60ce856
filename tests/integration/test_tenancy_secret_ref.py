"""Tenancy robustness: a ``secretRef`` to a missing Secret reported CredentialsReady True,
and any Secret of the namespace could become an account's keys. Runs against the session
operator, which allows development Secrets (tests/support/operator.py TEST_TENANCY); the
strict operator of test_tenancy.py refuses secretRef altogether (and pauses this one)."""

from __future__ import annotations

from typing import Any

import pytest

from support.cluster import Cluster
from support.objects import account, apply, bot, condition, eventually, get, strategy
from support.operator import OperatorProcess
from tradebot_contracts.names import CREDENTIALS_SECRET_LABEL, exchange_object_name

pytestmark = pytest.mark.integration


def _with_reason(cluster: Cluster, ns: str, kind: str, name: str, type_: str, reason: str) -> Any:
    def check() -> Any:
        c = condition(get(cluster, ns, kind, name), type_)
        return c if c is not None and c.get("reason") == reason else None

    return eventually(check, 60, f"{kind} {name} {type_} {reason}")


def _paper_bot(name: str, account_name: str, strategy_name: str) -> dict[str, Any]:
    body = bot(name, strategy_name=strategy_name)
    body["spec"]["exchanges"][0]["account"] = account_name
    return body


def test_robustness_a_secret_ref_must_name_an_existing_secret_labelled_for_tradebot(
    cluster: Cluster, operator_process: OperatorProcess
) -> None:
    """With development Secrets allowed (the session operator), a secretRef to a missing
    Secret used to report CredentialsReady True, and any Secret of the namespace (another
    app's database password) could become the apiKey sent to the endpoint. Now: only a
    Secret labelled tradebot.io/credentials=true, read as metadata, and no pod before."""
    ns = cluster.namespace("tsec")
    apply(
        cluster, ns, strategy("sma-sec"),
        account("xa-missing", credentials={"secretRef": {"name": "nowhere"}}),
        account("xa-foreign", credentials={"secretRef": {"name": "other-app"}}),
        _paper_bot("uses-foreign", "xa-foreign", "sma-sec"),
    )  # fmt: skip
    cluster.kubectl("create", "secret", "generic", "other-app", "-n", ns,
                    "--from-literal=apiKey=db-password", "--from-literal=secret=x")  # fmt: skip
    missing = _with_reason(
        cluster, ns, "exchangeaccount", "xa-missing", "CredentialsReady", "SecretNotFound"
    )
    assert missing["status"] == "False", missing
    unlabelled = _with_reason(
        cluster, ns, "exchangeaccount", "xa-foreign", "CredentialsReady", "SecretNotLabelled"
    )
    assert unlabelled["status"] == "False" and CREDENTIALS_SECRET_LABEL in unlabelled["message"]
    ready = _with_reason(cluster, ns, "tradingbot", "uses-foreign", "Ready", "CredentialsNotReady")
    assert ready["status"] == "False", ready
    deployment = exchange_object_name("uses-foreign", "xa-foreign")
    assert get(cluster, ns, "deployment", deployment) is None  # the Secret is never mounted

    # Labelled for tradebot: the account is ready and the bot gets its Deployment.
    cluster.kubectl("label", "secret", "other-app", "-n", ns, f"{CREDENTIALS_SECRET_LABEL}=true")
    cluster.kubectl("annotate", "exchangeaccount", "xa-foreign", "-n", ns, "recheck=1")

    def labelled() -> Any:
        c = condition(get(cluster, ns, "exchangeaccount", "xa-foreign"), "CredentialsReady")
        return c if c and c.get("status") == "True" else None

    assert eventually(labelled, 60, "xa-foreign ready")["reason"] == "SecretRefDevelopmentOnly"
    eventually(lambda: get(cluster, ns, "deployment", deployment), 60, "the bot's Deployment")
