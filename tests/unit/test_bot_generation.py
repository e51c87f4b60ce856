"""The runtime config carries the TradingBot's creation time as the journal's fence
generation (a bot created again under the same name fences out its predecessor)."""

from __future__ import annotations

from builder_inputs import load_case, modified

from tradebot_operator.builders.runtime_config import build_runtime_config


def _generation(case_name: str, created: str | None) -> int:
    case = (
        load_case(case_name)
        if created is None
        else modified(case_name, "bot.metadata.creationTimestamp", created)
    )
    exchange = case.bot.spec.exchanges[0]
    account = case.accounts[exchange.account]
    config = build_runtime_config(case.bot, case.strategy, account, exchange, case.settings)
    return config.bot_generation


def test_the_generation_is_the_bots_creation_time_in_ms() -> None:
    name = "paper-two-symbols"
    assert _generation(name, "2026-12-04T01:02:03Z") == 1796346123000
    assert _generation(name, "2026-12-04T01:02:04Z") > _generation(name, "2026-12-04T01:02:03Z")
