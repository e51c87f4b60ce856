"""Split an exchange's symbols into shards."""

from __future__ import annotations

from tradebot_contracts.names import lease_name
from tradebot_contracts.runtime_config import ShardConfig


def split_symbols(symbols: list[str], shards: int) -> list[list[str]]:
    """Round-robin over the sorted symbols: reordering the list in the spec changes
    nothing, and shard sizes differ by at most one."""
    ordered = sorted(set(symbols))
    count = max(1, min(shards, len(ordered)))
    return [ordered[index::count] for index in range(count)]


def shard_configs(bot: str, account: str, symbols: list[str], shards: int) -> list[ShardConfig]:
    return [
        ShardConfig(index=index, lease_name=lease_name(bot, account, index), symbols=members)
        for index, members in enumerate(split_symbols(symbols, shards))
    ]
