"""Object metadata shared by every child of a TradingBot."""

from __future__ import annotations

from typing import Any

from tradebot_operator.api.common import API_VERSION
from tradebot_operator.api.trading_bot import TradingBot

Manifest = dict[str, Any]


class BuildError(ValueError):
    """The inputs cannot produce children (run tradebot_operator.checks first)."""


def namespace_of(bot: TradingBot) -> str:
    if not bot.metadata.namespace:
        raise BuildError(f"TradingBot {bot.metadata.name} has no namespace")
    return bot.metadata.namespace


def owner_reference(bot: TradingBot) -> Manifest:
    """Controller reference: children are garbage-collected with the bot, and only one
    controller can own an object (a name clash with another bot fails loudly)."""
    if not bot.metadata.uid:
        raise BuildError(f"TradingBot {bot.metadata.name} has no uid")
    return {
        "apiVersion": API_VERSION,
        "kind": "TradingBot",
        "name": bot.metadata.name,
        "uid": bot.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(
    bot: TradingBot,
    name: str,
    labels: dict[str, str],
    annotations: dict[str, str] | None = None,
) -> Manifest:
    meta: Manifest = {
        "name": name,
        "namespace": namespace_of(bot),
        "labels": dict(sorted(labels.items())),
        "ownerReferences": [owner_reference(bot)],
    }
    if annotations:
        meta["annotations"] = dict(sorted(annotations.items()))
    return meta
