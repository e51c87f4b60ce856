"""Input the API server accepts but the operator cannot run: every case must surface as a
condition with a precise reason and a Warning event, and the operator must never crash.

Plus a property-based test: generated specs (valid or not) fed through the running
operator always end in a terminal, explained condition, and the operator stays alive.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.cluster import Cluster
from support.objects import account, apply, beat, bot, eventually, get, strategy
from support.operator import OperatorProcess
from tradebot_contracts.names import exchange_object_name, lease_name

pytestmark = pytest.mark.integration

BTC = exchange_object_name("btc", "paper")  # Deployment, ConfigMap, PDB of bot btc x paper
BTC_LEASE = lease_name("btc", "paper", 0)

GRID = {
    "type": "grid",
    "timeframe": "1m",
    "parameters": {"lower": "1", "upper": "2", "levels": 3, "orderSize": "1"},
}

# (id, account overrides, strategy overrides, bot overrides, exchange overrides, reason)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any], str]] = [
    ("unknown-exchange", {"exchange": "notanexchange"}, {}, {}, {}, "AccountInvalid"),
    ("live-bot-on-paper-account", {}, {}, {"mode": "live"}, {}, "PaperAccountForLiveBot"),
    ("missing-account", {}, {}, {}, {"account": "ghost"}, "AccountNotFound"),
    ("missing-strategy", {}, {}, {"strategyRef": {"name": "ghost"}}, {}, "StrategyNotFound"),
    (
        "bad-sma-parameters",
        {},
        {"parameters": {"fastPeriod": 20, "slowPeriod": 5, "orderSize": "25"}},
        {},
        {},
        "StrategyInvalid",
    ),
    (
        "bad-rsi-parameters",
        {},
        {
            "type": "rsi-reversion",
            "parameters": {"period": 14, "oversold": 80, "overbought": 20, "orderSize": "10"},
        },
        {},
        {},
        "StrategyInvalid",
    ),
    ("quote-mismatch", {}, {}, {}, {"symbols": ["BTC/EUR"]}, "QuoteMismatch"),
    (
        "derivative-symbol-on-spot",
        {},
        {},
        {},
        {"symbols": ["BTC/USDT:USDT"]},
        "SymbolMarketTypeMismatch",
    ),
    ("grid-on-two-symbols", {}, GRID, {}, {}, "GridNeedsOneSymbol"),
    (
        "market-type-unsupported",
        {"exchange": "kraken", "marketType": "swap"},
        {},
        {},
        {"symbols": ["BTC/USDT:USDT"]},
        "AccountInvalid",
    ),
    (
        "live-vault-without-operator-vault",
        {"mode": "live", "endpoint": None, "credentials": {"vault": {"path": "kv/binance"}}},
        {},
        {"mode": "live"},
        {},
        "VaultNotConfigured",
    ),
    (
        "sandbox-unsupported",
        {
            "exchange": "kraken",
            "mode": "sandbox",
            "endpoint": None,
            "credentials": {"vault": {"path": "kv/kraken"}},
        },
        {},
        {},
        {},
        "AccountInvalid",
    ),
]


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **overrides}
    return {k: v for k, v in merged.items() if v is not None}


@pytest.fixture
def ns(cluster: Cluster, operator_process: OperatorProcess) -> str:
    return cluster.namespace("bad")


@pytest.mark.parametrize(
    ("acct", "strat", "spec", "exchange", "reason"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_semantic_problem_becomes_condition_and_warning_event(
    cluster: Cluster,
    operator_process: OperatorProcess,
    ns: str,
    acct: dict[str, Any],
    strat: dict[str, Any],
    spec: dict[str, Any],
    exchange: dict[str, Any],
    reason: str,
) -> None:
    a, s, b = account(), strategy(), bot(**spec)
    a["spec"] = _merge(a["spec"], acct)
    s["spec"] = _merge(s["spec"], strat)
    b["spec"]["exchanges"][0] = _merge(b["spec"]["exchanges"][0], exchange)
    apply(cluster, ns, a, s, b)

    def ready_condition() -> Any:
        status = (get(cluster, ns, "tradingbot", "btc") or {}).get("status") or {}
        return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)

    cond = eventually(
        lambda: (c := ready_condition()) and c["reason"] == reason and c,
        what=f"Ready reason {reason}",
    )
    assert cond["status"] == "False"
    assert cond["message"]
    assert get(cluster, ns, "deployment", BTC) is None  # nothing runs on bad input
    phase = get(cluster, ns, "tradingbot", "btc")["status"]["phase"]  # type: ignore[index]
    assert phase in ("Pending", "Failed")

    def warning_event() -> Any:
        events = json.loads(cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout)
        return [e for e in events["items"] if e["type"] == "Warning" and e["reason"] == reason]

    if reason not in ("StrategyNotFound", "AccountNotFound"):
        eventually(warning_event, what=f"Warning event {reason}")
    with urllib.request.urlopen(operator_process.liveness, timeout=2) as resp:
        assert resp.status == 200


def test_finalizer_waits_for_runtime_acknowledgement(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, account(), strategy(), bot())
    eventually(lambda: get(cluster, ns, "lease", BTC_LEASE), what="lease")
    beat(cluster, ns, BTC_LEASE, "btc-paper-pod")
    cluster.kubectl("delete", "tradingbot", "btc", "-n", ns, "--wait=false")

    def delete_requested() -> Any:
        cm = get(cluster, ns, "configmap", BTC) or {}
        config = json.loads(cm.get("data", {}).get("runtime.json", "{}"))
        return config.get("deleteRequest")

    request = eventually(delete_requested, what="deleteRequest in the runtime ConfigMap")
    assert request["action"] == "cancelOrders"
    assert get(cluster, ns, "tradingbot", "btc") is not None  # held by the finalizer

    beat(cluster, ns, BTC_LEASE, "btc-paper-pod", ack_delete_request=request["id"])
    eventually(lambda: get(cluster, ns, "tradingbot", "btc") is None, what="bot deleted")
    eventually(
        lambda: "DeleteActionDone" in cluster.kubectl("get", "events", "-n", ns).stdout,
        what="DeleteActionDone event",
    )


symbols = st.lists(
    st.sampled_from(["BTC/USDT", "ETH/USDT", "SOL/USDT", "BTC/EUR", "ETH/BTC"]),
    min_size=1,
    max_size=3,
    unique=True,
)
decimal_text = st.decimals(min_value=0, max_value=10_000, places=2).map(str)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    mode=st.sampled_from(["paper", "live"]),
    account_mode=st.sampled_from(["paper", "sandbox"]),
    exchange=st.sampled_from(["binance", "kraken", "okx", "nope"]),
    strategy_type=st.sampled_from(["sma-crossover", "rsi-reversion", "grid", "dca"]),
    params=st.dictionaries(
        st.sampled_from(["fastPeriod", "slowPeriod", "period", "orderSize", "levels", "lower"]),
        st.one_of(st.integers(-5, 50), decimal_text, st.text(max_size=5)),
        max_size=4,
    ),
    syms=symbols,
    shards=st.integers(1, 3),
    max_order=decimal_text,
    suspend=st.booleans(),
    trading_state=st.sampled_from(["Active", "ReduceOnly", "Halted"]),
)
def test_generated_specs_always_reach_an_explained_condition(
    cluster: Cluster,
    operator_process: OperatorProcess,
    mode: str,
    account_mode: str,
    exchange: str,
    strategy_type: str,
    params: dict[str, Any],
    syms: list[str],
    shards: int,
    max_order: str,
    suspend: bool,
    trading_state: str,
) -> None:
    ns = cluster.namespace("fuzz")
    name = f"b{uuid.uuid4().hex[:6]}"
    a = account()
    a["spec"].update(exchange=exchange, mode=account_mode)
    s = strategy()
    s["spec"].update(type=strategy_type, parameters=params)
    b = bot(name, mode=mode, suspend=suspend, tradingState=trading_state)
    b["spec"]["exchanges"][0].update(symbols=syms, shards=shards)
    b["spec"]["risk"]["maxOrderNotional"] = max_order
    out = cluster.kubectl(
        "apply",
        "-n",
        ns,
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [a, s, b]}),
        check=False,
    )
    if out.returncode != 0:
        # Rejected by the CRD schema: the message must name the offending field.
        assert "spec." in out.stderr, out.stderr
        return

    def explained() -> Any:
        status = (get(cluster, ns, "tradingbot", name) or {}).get("status") or {}
        ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
        return status if ready and ready["reason"] and status.get("phase") else None

    status = eventually(explained, what="an explained Ready condition")
    assert status["phase"] in ("Pending", "Failed", "Suspended", "Running", "Degraded", "Halted")
    with urllib.request.urlopen(operator_process.liveness, timeout=2) as resp:
        assert resp.status == 200
