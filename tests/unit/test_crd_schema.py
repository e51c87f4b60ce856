"""The generated CRD schemas are structural and cheap enough for CEL: every node typed,
every property described, every array/string/map bounded, no references."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tradebot_operator.api import KINDS
from tradebot_operator.crdgen import build_crds

CRDS = {crd["spec"]["names"]["kind"]: crd for crd in build_crds()}
KIND_NAMES = sorted(CRDS)

Node = dict[str, Any]


def schema_of(kind: str) -> Node:
    schema: Node = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def walk(node: Node, path: str = "") -> Iterator[tuple[str, Node]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def all_nodes() -> Iterator[tuple[str, str, Node]]:
    for kind in KIND_NAMES:
        for path, node in walk(schema_of(kind)):
            yield kind, path, node


ROOT_BUILTINS = {".apiVersion", ".kind", ".metadata"}


def is_free_form(node: Node) -> bool:
    return bool(
        node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-int-or-string")
    )


def test_three_kinds_generated() -> None:
    assert set(KIND_NAMES) == {"ExchangeAccount", "Strategy", "TradingBot"}


def test_every_node_is_typed() -> None:
    untyped = [f"{k}{p}" for k, p, n in all_nodes() if "type" not in n and not is_free_form(n)]
    assert untyped == []


def test_no_references_or_non_structural_keywords() -> None:
    forbidden = {"$ref", "$defs", "definitions", "allOf", "oneOf", "not", "title", "const"}
    found = [f"{k}{p}: {key}" for k, p, n in all_nodes() for key in n if key in forbidden]
    assert found == []


def test_any_of_only_for_int_or_string() -> None:
    bad = [
        f"{k}{p}"
        for k, p, n in all_nodes()
        if "anyOf" in n and not n.get("x-kubernetes-int-or-string")
    ]
    assert bad == []


def test_no_null_types() -> None:
    assert [f"{k}{p}" for k, p, n in all_nodes() if n.get("type") == "null"] == []


def test_every_property_has_a_description() -> None:
    missing = [
        f"{k}{p}"
        for k, p, n in all_nodes()
        if p
        and p not in ROOT_BUILTINS
        and not p.endswith(("[]", "{}"))
        and not n.get("description")
    ]
    assert missing == []


def test_every_array_has_max_items() -> None:
    assert [
        f"{k}{p}" for k, p, n in all_nodes() if n.get("type") == "array" and "maxItems" not in n
    ] == []


def test_every_free_string_has_max_length() -> None:
    unbounded = [
        f"{k}{p}"
        for k, p, n in all_nodes()
        if n.get("type") == "string"
        and "enum" not in n
        and "format" not in n
        and "maxLength" not in n
        and p not in ROOT_BUILTINS
    ]
    assert unbounded == []


def test_every_map_has_max_properties() -> None:
    unbounded = [
        f"{k}{p}"
        for k, p, n in all_nodes()
        if n.get("type") == "object"
        and ("additionalProperties" in n or n.get("x-kubernetes-preserve-unknown-fields"))
        and "maxProperties" not in n
        and p not in ROOT_BUILTINS
        and p != ".spec.runtime.affinity"  # mirrors core/v1 Affinity; bounded by its own schema
    ]
    assert unbounded == []


def test_additional_properties_is_never_boolean() -> None:
    assert [
        f"{k}{p}" for k, p, n in all_nodes() if isinstance(n.get("additionalProperties"), bool)
    ] == []


def test_every_cel_rule_has_a_message() -> None:
    rules = [
        (f"{k}{p}", r) for k, p, n in all_nodes() for r in n.get("x-kubernetes-validations", [])
    ]
    assert rules, "expected CEL rules"
    assert [path for path, rule in rules if not rule.get("message")] == []


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_crd_metadata(kind: str) -> None:
    crd = CRDS[kind]
    info = next(i for i in KINDS if i.kind == kind)
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{info.plural}.tradebot.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["categories"] == ["tradebot"]
    assert spec["names"]["shortNames"] == list(info.short_names)
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_short_names() -> None:
    assert {k: CRDS[k]["spec"]["names"]["shortNames"] for k in KIND_NAMES} == {
        "ExchangeAccount": ["xa"],
        "Strategy": ["strat"],
        "TradingBot": ["tb"],
    }


def test_trading_bot_printer_columns() -> None:
    columns = CRDS["TradingBot"]["spec"]["versions"][0]["additionalPrinterColumns"]
    default = [c["name"].upper() for c in columns if not c.get("priority")]
    wide = [c["name"].upper() for c in columns if c.get("priority") == 1]
    assert default == ["STRATEGY", "MODE", "EXCHANGES", "PHASE", "READY", "PNL", "AGE"]
    assert wide == ["LEADER", "REASON"]


def rules_at(kind: str, path: str) -> list[str]:
    node = dict(walk(schema_of(kind)))[path]
    return [rule["rule"] for rule in node.get("x-kubernetes-validations", [])]


@pytest.mark.parametrize(
    ("kind", "path", "fragment"),
    [
        ("ExchangeAccount", ".spec.exchange", "self == oldSelf"),
        ("ExchangeAccount", ".spec.marketType", "self == oldSelf"),
        ("ExchangeAccount", ".spec.mode", "self == oldSelf"),
        ("ExchangeAccount", ".spec", "has(self.credentials)"),
        ("ExchangeAccount", ".spec.credentials", "has(self.vault) != has(self.secretRef)"),
        ("Strategy", ".spec", "has(self.python)"),
        ("TradingBot", ".spec.mode", "self == oldSelf"),
        ("TradingBot", ".spec.exchanges", "exists_one"),
        ("TradingBot", ".spec.exchanges[]", "self.shards <= size(self.symbols)"),
        ("TradingBot", ".spec.autoscaling", "self.minReplicas <= self.maxReplicas"),
        ("TradingBot", ".spec.risk", "maxOrderNotional"),
    ],
)
def test_cel_rules_present(kind: str, path: str, fragment: str) -> None:
    assert any(fragment in rule for rule in rules_at(kind, path))


def test_decimal_fields_are_patterned_strings() -> None:
    risk = dict(walk(schema_of("TradingBot")))[".spec.risk"]["properties"]
    for name in ("maxPositionNotional", "maxOrderNotional", "maxDailyLoss", "priceBandPercent"):
        assert risk[name]["type"] == "string"
        assert risk[name]["pattern"].startswith("^")


def test_exchanges_are_a_map_list_keyed_by_account() -> None:
    exchanges = dict(walk(schema_of("TradingBot")))[".spec.exchanges"]
    assert exchanges["x-kubernetes-list-type"] == "map"
    assert exchanges["x-kubernetes-list-map-keys"] == ["account"]
    assert "account" in exchanges["items"]["required"]


def test_parameters_are_free_form_but_bounded() -> None:
    parameters = dict(walk(schema_of("Strategy")))[".spec.parameters"]
    assert parameters["type"] == "object"
    assert parameters["x-kubernetes-preserve-unknown-fields"] is True
    assert parameters["maxProperties"] > 0
