"""Bad input against the REAL API server: every invalid manifest must be rejected at
admission (schema, CEL, list-map keys, strict field validation), with a message that
names the offending field. The valid baselines must be accepted, or the negative cases
would prove nothing."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.cluster import Cluster
from tradebot_operator.api import ExchangeAccount, Strategy, TradingBot
from tradebot_operator.builders import desired
from tradebot_operator.settings import OperatorSettings

pytestmark = pytest.mark.integration

Manifest = dict[str, Any]


def account(name: str = "acct", **spec: Any) -> Manifest:
    return {
        "apiVersion": "tradebot.io/v1alpha1",
        "kind": "ExchangeAccount",
        "metadata": {"name": name},
        "spec": {"exchange": "binance", "marketType": "spot", "mode": "paper", **spec},
    }


def strategy(name: str = "strat", **spec: Any) -> Manifest:
    return {
        "apiVersion": "tradebot.io/v1alpha1",
        "kind": "Strategy",
        "metadata": {"name": name},
        "spec": {
            "type": "sma-crossover",
            "timeframe": "1m",
            "parameters": {"fastPeriod": 5, "slowPeriod": 20, "orderSize": "10"},
            **spec,
        },
    }


def exchange(**overrides: Any) -> Manifest:
    return {
        "account": "acct",
        "symbols": ["BTC/USDT", "ETH/USDT"],
        "allocation": {"quote": "USDT", "amount": "1000"},
        **overrides,
    }


def bot(name: str = "bot", **spec: Any) -> Manifest:
    return {
        "apiVersion": "tradebot.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": name},
        "spec": {
            "strategyRef": {"name": "strat"},
            "mode": "paper",
            "exchanges": [exchange()],
            "risk": {"maxPositionNotional": "500", "maxOrderNotional": "50", "maxDailyLoss": "100"},
            **spec,
        },
    }


def with_path(manifest: Manifest, path: str, value: Any) -> Manifest:
    """Copy of ``manifest`` with the dotted ``path`` (list indexes allowed) set to value."""
    result = copy.deepcopy(manifest)
    *parents, last = path.split(".")
    node: Any = result
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return result


def without(manifest: Manifest, path: str) -> Manifest:
    result = copy.deepcopy(manifest)
    *parents, last = path.split(".")
    node: Any = result
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    del node[last]
    return result


@dataclass(frozen=True)
class Case:
    id: str
    manifest: Manifest
    field: str
    """Field path the error must name (as the API server spells it)."""
    message: str
    """Fragment (regex) the error text must contain."""
    before: Manifest | None = None
    """Applied (and accepted) first: for update-only rules such as immutability."""


LIVE_VAULT = {"vault": {"path": "tradebot/binance"}}

CASES: list[Case] = [
    # ExchangeAccount ------------------------------------------------------------------
    Case("xa-exchange-uppercase", account(exchange="Binance"), "spec.exchange", "should match"),
    Case("xa-market-type", account(marketType="margin"), "spec.marketType", "Unsupported value"),
    Case("xa-mode", account(mode="production"), "spec.mode", "Unsupported value"),
    Case(
        "xa-live-without-credentials",
        account(mode="live"),
        "spec.credentials",
        "credentials are required when mode is sandbox or live",
    ),
    Case(
        "xa-two-credential-sources",
        account(
            mode="live",
            credentials={**LIVE_VAULT, "secretRef": {"name": "keys"}},
        ),
        "spec.credentials",
        "exactly one of vault or secretRef",
    ),
    Case(
        "xa-no-credential-source",
        account(mode="sandbox", credentials={}),
        "spec.credentials",
        "exactly one of vault or secretRef",
    ),
    Case(
        "xa-endpoint-scheme", account(endpoint="ftp://example.com"), "spec.endpoint", "should match"
    ),
    Case(
        "xa-live-plain-http-endpoint",
        account(mode="live", credentials=LIVE_VAULT, endpoint="http://10.0.0.1:8080"),
        "spec.endpoint",
        "must use TLS",
    ),
    Case(
        "xa-rate-limit-zero",
        account(rateLimit={"requestsPerMinute": 0}),
        "spec.rateLimit.requestsPerMinute",
        "should be greater than or equal to 1",
    ),
    Case(
        "xa-rate-limit-empty",
        account(rateLimit={"ordersPer10s": 5}),
        "spec.rateLimit",
        "set requestsPerMinute or weightPerMinute",
    ),
    Case(
        "xa-trading-state", account(tradingState="Paused"), "spec.tradingState", "Unsupported value"
    ),
    Case(
        "xa-vault-path",
        account(mode="live", credentials={"vault": {"path": "trade bot/../x"}}),
        "spec.credentials.vault.path",
        "should match",
    ),
    Case(
        "xa-exchange-immutable",
        account("xa-exchange-immutable", exchange="kraken"),
        "spec.exchange",
        "exchange is immutable",
        before=account("xa-exchange-immutable"),
    ),
    Case(
        "xa-mode-immutable",
        account("xa-mode-immutable", mode="sandbox", credentials=LIVE_VAULT),
        "spec.mode",
        "mode is immutable",
        before=account("xa-mode-immutable"),
    ),
    Case(
        "xa-unknown-field",
        with_path(account(), "spec.apiKey", "plain-text-key"),
        "spec.apiKey",
        "unknown field|field not declared in schema",
    ),
    # Strategy -------------------------------------------------------------------------
    Case("strat-type", strategy(type="martingale"), "spec.type", "Unsupported value"),
    Case("strat-timeframe", strategy(timeframe="90sec"), "spec.timeframe", "should match|Too long"),
    Case(
        "strat-python-missing",
        strategy(type="python"),
        "spec.python",
        "python is required when type is python",
    ),
    Case(
        "strat-python-forbidden",
        strategy(python={"module": "a.b:C", "image": "img:1"}),
        "spec.python",
        "python is only allowed when type is python",
    ),
    Case(
        "strat-python-module",
        strategy(type="python", python={"module": "not a module", "image": "img:1"}),
        "spec.python.module",
        "should match",
    ),
    Case(
        "strat-python-image-missing",
        strategy(type="python", python={"module": "a.b:C"}),
        "spec.python.image",
        "Required value",
    ),
    Case(
        "strat-too-many-parameters",
        strategy(parameters={f"p{i}": i for i in range(65)}),
        "spec.parameters",
        "must have at most 64 items|Too many",
    ),
    # TradingBot -----------------------------------------------------------------------
    Case("tb-mode", bot(mode="simulated"), "spec.mode", "Unsupported value"),
    Case("tb-no-exchanges", bot(exchanges=[]), "spec.exchanges", "at least 1 items"),
    Case(
        "tb-duplicate-account",
        bot(exchanges=[exchange(), exchange(symbols=["SOL/USDT"])]),
        "spec.exchanges",
        "[Dd]uplicate",
    ),
    Case(
        "tb-symbol-format",
        bot(exchanges=[exchange(symbols=["btcusdt"])]),
        "spec.exchanges[0].symbols[0]",
        "should match",
    ),
    Case(
        "tb-duplicate-symbol",
        bot(exchanges=[exchange(symbols=["BTC/USDT", "BTC/USDT"])]),
        'spec.exchanges[account="acct"].symbols',  # server-side apply names list-map items
        "[Dd]uplicate",
    ),
    Case(
        "tb-too-many-symbols",
        bot(exchanges=[exchange(symbols=[f"C{i}/USDT" for i in range(65)])]),
        "spec.exchanges[0].symbols",
        "must have at most 64 items|Too many",
    ),
    Case(
        "tb-shards-above-symbols",
        bot(exchanges=[exchange(shards=3)]),
        "spec.exchanges[0].shards",
        "shards must not exceed the number of symbols",
    ),
    Case(
        "tb-amount-exponent",
        bot(exchanges=[exchange(allocation={"quote": "USDT", "amount": "1e3"})]),
        "spec.exchanges[0].allocation.amount",
        "should match",
    ),
    Case(
        "tb-amount-float",
        bot(exchanges=[exchange(allocation={"quote": "USDT", "amount": 1000.5})]),
        'spec.exchanges[account="acct"].allocation.amount',
        "expected string|must be of type string",
    ),
    Case(
        "tb-amount-zero",
        bot(exchanges=[exchange(allocation={"quote": "USDT", "amount": "0"})]),
        "spec.exchanges[0].allocation.amount",
        "should match",
    ),
    Case(
        "tb-order-above-position",
        with_path(bot(), "spec.risk.maxOrderNotional", "1000"),
        "spec.risk.maxOrderNotional",
        "maxOrderNotional must not exceed maxPositionNotional",
    ),
    Case(
        "tb-drawdown-above-100",
        with_path(bot(), "spec.risk.maxDrawdownPercent", "150"),
        "spec.risk.maxDrawdownPercent",
        "should match",
    ),
    Case("tb-risk-missing", without(bot(), "spec.risk"), "spec.risk", "Required value"),
    Case(
        "tb-autoscaling-min-above-max",
        bot(autoscaling={"enabled": True, "minReplicas": 5, "maxReplicas": 2}),
        "spec.autoscaling.minReplicas",
        "minReplicas must not exceed maxReplicas",
    ),
    Case("tb-replicas-zero", bot(replicas=0), "spec.replicas", "greater than or equal to 1"),
    Case("tb-on-delete", bot(onDelete="nuke"), "spec.onDelete", "Unsupported value"),
    Case(
        "tb-strategy-ref-name",
        bot(strategyRef={"name": "Bad_Name"}),
        "spec.strategyRef.name",
        "should match",
    ),
    Case(
        "tb-env-reserved",
        bot(runtime={"env": [{"name": "TRADEBOT_BOT", "value": "x"}]}),
        "spec.runtime.env[0].name",
        "reserved for the operator",
    ),
    Case(
        "tb-env-credential",
        bot(runtime={"env": [{"name": "BINANCE_API_KEY", "value": "abc"}]}),
        "spec.runtime.env[0].name",
        "must not carry credentials",
    ),
    Case(
        "tb-env-value-from-secret",
        bot(
            runtime={
                "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
            }
        ),
        'spec.runtime.env[name="X"].valueFrom',
        "unknown field|field not declared in schema",
    ),
    Case(
        "tb-mode-immutable",
        bot("tb-mode-immutable", mode="live"),
        "spec.mode",
        "mode is immutable",
        before=bot("tb-mode-immutable"),
    ),
    Case(
        "tb-resources-quantity",
        bot(runtime={"resources": {"limits": {"cpu": "lots"}}}),
        "spec.runtime.resources.limits.cpu",
        "should match",
    ),
]


def apply(cluster: Cluster, namespace: str, manifest: Manifest) -> Any:
    return cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=tradebot-tests",
        f"--namespace={namespace}",
        "--filename=-",
        input=json.dumps(manifest),  # JSON: no YAML 1.1/1.2 guessing of "1e3" or "on"
        check=False,
    )


@pytest.fixture(scope="module")
def namespace(crds_installed: Cluster) -> str:
    return crds_installed.namespace("bad-input")


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 25
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize(
    "manifest", [account(), strategy(), bot()], ids=["account", "strategy", "bot"]
)
def test_valid_baselines_are_accepted(
    crds_installed: Cluster,
    namespace: str,
    manifest: Manifest,
) -> None:
    result = apply(crds_installed, namespace, manifest)
    assert result.returncode == 0, result.stderr


def test_defaults_are_applied(crds_installed: Cluster, namespace: str) -> None:
    name = "defaults"
    assert apply(crds_installed, namespace, bot(name)).returncode == 0
    got = yaml.safe_load(
        crds_installed.kubectl("get", "tradingbot", name, "-n", namespace, "-o", "yaml").stdout
    )
    spec = got["spec"]
    assert spec["replicas"] == 2
    assert spec["tradingState"] == "Active"
    assert spec["onDelete"] == "cancelOrders"
    assert spec["suspend"] is False
    assert spec["exchanges"][0]["shards"] == 1
    assert spec["risk"]["priceBandPercent"] == "5"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_rejected(
    crds_installed: Cluster,
    namespace: str,
    case: Case,
) -> None:
    if case.before is not None:
        setup = apply(crds_installed, namespace, case.before)
        assert setup.returncode == 0, f"setup manifest was rejected: {setup.stderr}"
    manifest = case.manifest
    if case.before is None:  # own name: never an update of another case's object
        manifest = with_path(manifest, "metadata.name", case.id)
    result = apply(crds_installed, namespace, manifest)
    assert result.returncode != 0, f"{case.id}: accepted, expected a rejection on {case.field}"
    error = result.stderr
    # Errors found while typing a server-side apply patch spell list items by their key
    # (exchanges[account="acct"]); schema and CEL errors use the index (exchanges[0]).
    assert case.field in error, f"error does not name {case.field}:\n{error}"
    assert re.search(case.message, error), f"error lacks /{case.message}/:\n{error}"


def test_kubectl_explain_describes_fields(crds_installed: Cluster) -> None:
    result = crds_installed.kubectl("explain", "tradingbot.spec.risk")
    assert "maxDailyLoss" in result.stdout
    assert "Risk limits, applied live." in result.stdout
    assert "Largest single order, in the quote currency" in result.stdout


GOLDEN_DIR = Path(__file__).resolve().parents[1] / "unit" / "golden"


def golden_children(case: Path, namespace: str) -> list[Manifest]:
    """desired() for a golden builder input, moved into ``namespace``."""
    raw = yaml.safe_load((case / "input.yaml").read_text())
    accounts = [ExchangeAccount.model_validate(a) for a in raw["accounts"]]
    children = desired(
        TradingBot.model_validate(raw["bot"]),
        Strategy.model_validate(raw["strategy"]),
        {a.metadata.name: a for a in accounts},
        OperatorSettings.model_validate(raw.get("settings") or {}),
    )
    for child in children:
        child["metadata"]["namespace"] = namespace
    return children


@pytest.mark.parametrize("case", sorted(GOLDEN_DIR.glob("*/")), ids=lambda path: path.name)
def test_builder_output_is_accepted_under_restricted_pod_security(
    crds_installed: Cluster,
    namespace: str,
    case: Path,
) -> None:
    """Every child desired() builds is valid for the API server, and the pods would pass
    the restricted Pod Security Standard (the test namespace enforces it, so a violation
    shows as a warning on the Deployment)."""
    children = golden_children(case, namespace)
    result = crds_installed.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=tradebot-tests",
        "--filename=-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": children}),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    assert result.stdout.count("serverside-applied") == len(children)


def test_printer_columns_show_status(crds_installed: Cluster, namespace: str) -> None:
    """The status the operator writes is accepted by the status schema and shows up in
    ``kubectl get tradingbots -o wide``."""
    name = "columns"
    assert apply(crds_installed, namespace, bot(name)).returncode == 0
    status = {
        "status": {
            "phase": "Running",
            "observedGeneration": 1,
            "pnl": "-12.50",
            "summary": {
                "exchangesReady": "1/1",
                "leader": "columns-acct-abc",
                "reason": "Trading",
                "pnl": "-12.50 USDT",
            },
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Trading",
                    "message": "all shards held and reconciled",
                    "observedGeneration": 1,
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                }
            ],
            "exchanges": {
                "acct": {
                    "leader": "columns-acct-abc",
                    "shardsHeld": 1,
                    "shardsTotal": 1,
                    "readyShards": 1,
                    "lastHeartbeat": "2025-01-01T00:00:01Z",
                    "openOrders": 2,
                    "quoteCurrency": "USDT",
                    "positionNotional": "150.25",
                    "realizedPnl": "-14",
                    "unrealizedPnl": "1.50",
                    "state": "Trading",
                }
            },
        }
    }
    crds_installed.kubectl(
        "patch", "tradingbot", name, f"--namespace={namespace}", "--subresource=status",
        "--type=merge", f"--patch={json.dumps(status)}",
    )  # fmt: skip
    table = crds_installed.kubectl("get", "tb", name, f"--namespace={namespace}", "-o", "wide")
    header, row = table.stdout.splitlines()[:2]
    assert header.split() == [
        "NAME", "STRATEGY", "MODE", "EXCHANGES", "PHASE", "READY", "PNL", "AGE", "LEADER", "REASON",
    ]  # fmt: skip
    cells = row.split()
    assert cells[:8] == [name, "strat", "paper", "1/1", "Running", "True", "-12.50", "USDT"]
    assert cells[-2:] == ["columns-acct-abc", "Trading"]
