"""A paper bot never gets the keys of a sandbox or live account (defence in depth beside
the operator's check): the runtime does not load them, no key reaches ccxt, no orders are
sent, and every held shard reports the refusal in its heartbeat."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from pathlib import Path

import ccxt.async_support as ccxt_async
import pytest

from tradebot_contracts.heartbeat import decode_heartbeat
from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_contracts.runtime_config import RuntimeConfig
from tradebot_runtime.app import RuntimeApp
from tradebot_runtime.app_state import ShardSlot
from tradebot_runtime.bootstrap import make_exchange, open_exchange
from tradebot_runtime.credentials import CCXT_CREDENTIALS
from tradebot_runtime.exchange.paper import PaperBroker
from tradebot_runtime.identity import Identity
from tradebot_runtime.strategies import create_strategy

LEASE = "btc-eth-binance-main-0"


def config(mode: str, account_mode: str, keys: Path | None) -> RuntimeConfig:
    credentials: dict[str, object] = {"source": "none"}
    if keys is not None:
        credentials = {"source": "file", "file": {"directory": str(keys)}}
    return RuntimeConfig.model_validate(
        {
            "bot": "btc-eth", "namespace": "trading", "account": "binance-main",
            "exchange": "binance", "marketType": "spot", "mode": mode,
            "accountMode": account_mode, "endpoint": "http://127.0.0.1:9",
            "credentials": credentials,
            "strategy": {"name": "sma", "type": "sma-crossover", "timeframe": "1m",
                         "parameters": {"fastPeriod": 5, "slowPeriod": 20, "orderSize": "25"}},
            "symbols": ["BTC/USDT"],
            "shards": [{"index": 0, "leaseName": LEASE, "symbols": ["BTC/USDT"]}],
            "allocation": {"quote": "USDT", "amount": "1000"},
            "risk": {"maxPositionNotional": "500", "maxOrderNotional": "50",
                     "maxDailyLoss": "100", "maxOrdersPerMinute": 60, "priceBandPercent": "5"},
            "tradingState": "Active", "botTradingState": "Active",
            "accountTradingState": "Active",
            "rateLimit": {"budgetKey": "tradebot:ratelimit:trading:binance-main"},
            "onDelete": "cancelOrders", "leaseDurationSeconds": 6, "metricsPort": 9090,
        }
    )  # fmt: skip


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    (tmp_path / "apiKey").write_text("real-money-key\n")
    (tmp_path / "secret").write_text("real-money-secret\n")
    return tmp_path


IDS = ClientOrderIds("binance", "trading/btc-eth", "binance-main")


@pytest.mark.parametrize("account_mode", ["sandbox", "live"])
async def test_paper_bot_on_a_sandbox_or_live_account_loads_no_key(
    keys: Path, account_mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="tradebot.app")
    access = await open_exchange(
        config("paper", account_mode, keys), IDS, fee_rate=Decimal("0.001")
    )
    try:
        assert {k: getattr(access.exchange, k) for k in CCXT_CREDENTIALS} == dict.fromkeys(
            CCXT_CREDENTIALS
        )  # no key reached ccxt
        assert isinstance(access.client, PaperBroker)  # nothing is ever sent
        assert access.credentials is None  # nothing reads the keys later (no rotation)
        assert access.refusal is not None
        assert f"paper bot on {account_mode} account binance-main" in access.refusal
        assert any(access.refusal in r.getMessage() for r in caplog.records)
    finally:
        await access.exchange.close()


async def test_paper_bot_on_a_paper_account_still_gets_its_keys(keys: Path) -> None:
    """The simulator's paper account keeps working: its keys are not real money."""
    access = await open_exchange(config("paper", "paper", keys), IDS, fee_rate=Decimal("0.001"))
    try:
        assert access.exchange.apiKey == "real-money-key"
        assert access.refusal is None
    finally:
        await access.exchange.close()


async def test_live_bot_on_a_live_account_gets_its_keys(keys: Path) -> None:
    access = await open_exchange(config("live", "live", keys), IDS, fee_rate=Decimal("0.001"))
    try:
        assert access.exchange.apiKey == "real-money-key"
        assert not isinstance(access.client, PaperBroker)
        assert access.refusal is None
    finally:
        await access.exchange.close()


async def test_a_refused_shard_never_starts_and_its_heartbeat_says_why(keys: Path) -> None:
    cfg = config("paper", "live", keys)
    identity = Identity(
        namespace="trading", pod="btc-eth-binance-main-abc", bot="btc-eth",
        account="binance-main", configmap="", config_path="", leases=[LEASE], metrics_port=0,
    )  # fmt: skip
    app = RuntimeApp(identity, cfg)
    shard = cfg.shards[0]
    app.slots[0] = ShardSlot(
        0, LEASE, list(shard.symbols), create_strategy(cfg.strategy, shard.symbols)
    )
    await app.on_acquired(0, 4)
    await asyncio.sleep(0)  # let a start task (there must be none) run
    slot = app.slots[0]
    assert slot.engine is None and slot.starting is None
    text = app.heartbeat(0, 4)
    assert text is not None
    hb = decode_heartbeat(text)
    assert (hb.state, hb.ready, hb.epoch) == ("Error", False, 4)
    assert hb.message is not None and "paper bot on live account binance-main" in hb.message
    assert hb.quote_currency == "USDT"  # the app's money precision reaches the heartbeat


def test_make_exchange_refuses_a_key_for_a_paper_bot_on_a_live_account() -> None:
    """The last line, for any caller that would bypass open_exchange."""
    with pytest.raises(RuntimeError, match="refused"):
        make_exchange(ccxt_async, config("paper", "live", None), {"apiKey": "k", "secret": "s"})
