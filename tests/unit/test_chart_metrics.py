"""The chart's alerts and dashboard query metrics the runtime actually exports, with labels
it actually sets. A renamed metric or label otherwise fails silently: the alert never fires
and the panel stays empty."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

import tradebot_runtime.metrics  # noqa: F401  (registers the runtime's metrics)

CHART = Path(__file__).resolve().parents[2] / "charts" / "tradebot"
# Labels every scraped series carries: Prometheus target labels plus the ServiceMonitor's
# relabelings (tests below check that the ServiceMonitor really sets bot and account).
TARGET_LABELS = {"namespace", "pod", "service", "job", "instance", "container", "endpoint"}
RELABELED = {"bot", "account"}
HISTOGRAM_LABEL = "le"
OUR_PREFIXES = ("trading_", "tradebot_", "exchange_")


def runtime_series() -> dict[str, set[str]]:
    """Every sample name the runtime can export -> its label names."""
    series: dict[str, set[str]] = {}
    for collector in list(REGISTRY._collector_to_names):  # private, but the only map of label names
        for family in collector.describe() if hasattr(collector, "describe") else []:
            labels = set(getattr(collector, "_labelnames", ()))
            if family.type == "histogram":
                names = [f"{family.name}_bucket", f"{family.name}_count", f"{family.name}_sum"]
                labels_for = {f"{family.name}_bucket": labels | {HISTOGRAM_LABEL}}
            elif family.type == "counter":
                names, labels_for = [f"{family.name}_total"], {}
            else:
                names, labels_for = [family.name], {}
            for name in names:
                series[name] = labels_for.get(name, labels)
    return series


def prometheus_rule_exprs() -> Iterator[tuple[str, str]]:
    text = (CHART / "templates" / "prometheusrule.yaml").read_text()
    for match in re.finditer(r"- alert: (\S+)\n\s+expr: \|\n((?:\s{12}.*\n)+)", text):
        yield match.group(1), match.group(2)


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    def walk(node: Any, title: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            title = str(node.get("title", title))
            for key, value in node.items():
                if key == "expr":
                    yield title, str(value)
                else:
                    yield from walk(value, title)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item, title)

    yield from walk(json.loads((CHART / "dashboards" / "tradebot.json").read_text()), "")


ALL_EXPRS = [("alert " + n, e) for n, e in prometheus_rule_exprs()] + [
    ("panel " + n, e) for n, e in dashboard_exprs()
]


def metrics_in(expr: str) -> set[str]:
    return {m for m in re.findall(r"\b([a-z_:][a-z0-9_:]*)\b", expr) if m.startswith(OUR_PREFIXES)}


def grouping_labels(expr: str) -> set[str]:
    labels: set[str] = set()
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        labels |= {label.strip() for label in group.split(",") if label.strip()}
    return labels


def matcher_labels(expr: str) -> set[str]:
    labels: set[str] = set()
    for selector in re.findall(r"\{([^}]*)\}", expr):
        labels |= set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", selector))
    return labels


def test_the_chart_has_expressions_to_check() -> None:
    alerts = [name for name, _ in prometheus_rule_exprs()]
    assert len(alerts) >= 8, alerts
    assert len(list(dashboard_exprs())) >= 8


@pytest.mark.parametrize(("where", "expr"), ALL_EXPRS, ids=[w for w, _ in ALL_EXPRS])
def test_expression_uses_exported_metrics_and_labels(where: str, expr: str) -> None:
    series = runtime_series()
    used = metrics_in(expr)
    unknown = sorted(used - set(series))
    assert not unknown, f"{where} queries metrics the runtime does not export: {unknown}"
    if not used:
        return  # e.g. up{}: target labels only
    available = TARGET_LABELS | RELABELED
    for metric in used:
        available |= series[metric]
    missing = sorted((grouping_labels(expr) | matcher_labels(expr)) - available)
    assert not missing, f"{where} groups or filters by labels no series has: {missing}"


def test_service_monitor_relabels_bot_and_account() -> None:
    text = (CHART / "templates" / "servicemonitor.yaml").read_text()
    for label in sorted(RELABELED):
        assert re.search(rf"targetLabel: {label}\b", text), label


def test_the_registry_walk_sees_the_runtime_metrics() -> None:
    # guards the helper above: without it every expression would look unknown or pass
    series = runtime_series()
    assert series["tradebot_leader"] == {"shard"}
    assert "le" in series["trading_order_latency_seconds_bucket"]
    assert "trading_orders_total" in series


def dashboard_targets() -> Iterator[dict[str, Any]]:
    def walk(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            if "expr" in node and "legendFormat" in node:
                yield node
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    yield from walk(json.loads((CHART / "dashboards" / "tradebot.json").read_text()))


def test_dashboard_legends_name_grouped_labels() -> None:
    targets = list(dashboard_targets())
    assert targets
    for target in targets:
        legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target["legendFormat"]))
        grouped = grouping_labels(target["expr"])
        assert legend <= grouped, f"{target['legendFormat']!r} names labels not in {grouped}"
