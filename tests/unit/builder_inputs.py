"""Inputs for builder tests: golden cases on disk and small factories for focused tests."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tradebot_operator.api import ExchangeAccount, Strategy, TradingBot
from tradebot_operator.builders import Manifest, desired
from tradebot_operator.settings import OperatorSettings

GOLDEN_DIR = Path(__file__).parent / "golden"


@dataclass(frozen=True)
class Case:
    bot: TradingBot
    strategy: Strategy
    accounts: dict[str, ExchangeAccount]
    settings: OperatorSettings

    def desired(self) -> list[Manifest]:
        return desired(self.bot, self.strategy, self.accounts, self.settings)


def case_from_dict(raw: dict[str, Any]) -> Case:
    accounts = [ExchangeAccount.model_validate(a) for a in raw["accounts"]]
    return Case(
        bot=TradingBot.model_validate(raw["bot"]),
        strategy=Strategy.model_validate(raw["strategy"]),
        accounts={a.metadata.name: a for a in accounts},
        settings=OperatorSettings.model_validate(raw.get("settings") or {}),
    )


def load_raw(name: str) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((GOLDEN_DIR / name / "input.yaml").read_text())
    return raw


def load_case(name: str) -> Case:
    return case_from_dict(load_raw(name))


def golden_cases() -> list[str]:
    return sorted(path.parent.name for path in GOLDEN_DIR.glob("*/input.yaml"))


def modified(name: str, path: str, value: Any) -> Case:
    """The golden input ``name`` with one value replaced; ``path`` is dotted with list
    indexes, e.g. ``bot.spec.exchanges.0.symbols``."""
    raw = copy.deepcopy(load_raw(name))
    *parents, last = path.split(".")
    node: Any = raw
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return case_from_dict(raw)


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[Manifest], kind: str) -> Manifest:
    found = by_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]
