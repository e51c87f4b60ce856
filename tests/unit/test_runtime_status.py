"""Pure parts of the runtime app: heartbeat from engine state, live vs rolled config
changes, identity from env."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from builder_inputs import by_kind, load_case

from tradebot_contracts.heartbeat import Heartbeat, decode_heartbeat, encode_heartbeat
from tradebot_contracts.runtime_config import CONFIG_KEY, DeleteRequest, RuntimeConfig
from tradebot_runtime.identity import Identity
from tradebot_runtime.status import ShardView, build_heartbeat, diff_config

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
CONFIG = RuntimeConfig.loads(
    by_kind(load_case("paper-two-symbols").desired(), "ConfigMap")[0]["data"][CONFIG_KEY]
)


def view(**overrides: object) -> ShardView:
    fields: dict[str, object] = {
        "shard": 0, "epoch": 3, "reconciled": True, "stopped": False, "open_orders": 2,
        "position_notional": Decimal("123.45"), "realized_pnl": Decimal("-1.5"),
        "unrealized_pnl": Decimal("2.25"), "mismatches": 1,
    }  # fmt: skip
    fields.update(overrides)
    return ShardView(**fields)  # type: ignore[arg-type]


def beat(v: ShardView | None, **kw: object) -> Heartbeat:
    defaults: dict[str, object] = {"trading_state": "Active", "config_version": "abc"}
    defaults.update(kw)
    hb = build_heartbeat(pod="p-1", shard=0, epoch=3, now=NOW, view=v, **defaults)  # type: ignore[arg-type]
    text = encode_heartbeat(hb)
    return decode_heartbeat(text)


def test_trading_heartbeat_carries_engine_figures() -> None:
    hb = beat(view())
    assert hb.state == "Trading" and hb.ready is True
    assert hb.open_orders == 2 and hb.mismatches == 1
    assert hb.position_notional == Decimal("123.45")
    assert hb.realized_pnl == Decimal("-1.5") and hb.unrealized_pnl == Decimal("2.25")
    assert hb.config_version == "abc" and hb.epoch == 3


@pytest.mark.parametrize(
    ("v", "kw", "state", "ready"),
    [
        (None, {}, "Starting", False),
        (view(reconciled=False), {}, "Reconciling", False),
        (view(), {"trading_state": "Halted"}, "Halted", True),
        (view(), {"trading_state": "ReduceOnly"}, "ReduceOnly", True),
        (view(), {"deleting": True}, "Halted", True),
        (view(), {"draining": True}, "Draining", False),
        (view(error="start failed: boom"), {}, "Error", False),
    ],
)
def test_state_mapping(v: ShardView | None, kw: dict[str, object], state: str, ready: bool) -> None:
    hb = beat(v, **kw)
    assert (hb.state, hb.ready) == (state, ready)


def test_ack_breaker_and_messages() -> None:
    hb = beat(view(breaker="exchange"), ack_delete_request="uid-1",
              messages=["market data stale: BTC/USDT", "x" * 500])  # fmt: skip
    assert hb.ack_delete_request == "uid-1" and hb.breaker == "exchange"
    assert str(hb.message).startswith("market data stale: BTC/USDT; xxx")
    assert len(str(hb.message)) == 200


def test_live_changes_are_applied_not_rolled() -> None:
    new = CONFIG.model_copy(
        update={
            "trading_state": "Halted",
            "risk": CONFIG.risk.model_copy(update={"max_order_notional": Decimal("7")}),
            "delete_request": DeleteRequest(id="u", action="cancelOrders"),
        }
    )
    diff = diff_config(CONFIG, new)
    assert diff.live == {"trading_state", "risk", "delete_request"}
    assert diff.rolled == frozenset()


def test_strategy_or_symbol_changes_roll() -> None:
    strategy = CONFIG.strategy.model_copy(update={"timeframe": "5m"})
    new = CONFIG.model_copy(update={"strategy": strategy, "symbols": ["BTC/USDT"]})
    new = new.with_config_version()
    diff = diff_config(CONFIG, new)
    assert diff.rolled == {"strategy", "symbols"}
    assert diff.live == frozenset()  # config_version follows the rolled fields
    assert diff_config(CONFIG, CONFIG).empty


def test_identity_from_env() -> None:
    env = {
        "TRADEBOT_NAMESPACE": "ns", "TRADEBOT_POD_NAME": "p-1", "TRADEBOT_BOT": "b",
        "TRADEBOT_ACCOUNT": "a", "TRADEBOT_CONFIGMAP": "cm", "TRADEBOT_LEASES": "l0,l1",
        "TRADEBOT_METRICS_PORT": "9400", "TRADEBOT_CONFIG_PATH": "/x/runtime.json",
    }  # fmt: skip
    ident = Identity.from_env(env)
    assert ident.leases == ["l0", "l1"] and ident.metrics_port == 9400
    assert ident.config_path == "/x/runtime.json" and ident.configmap == "cm"
    with pytest.raises(SystemExit, match="TRADEBOT_POD_NAME"):
        Identity.from_env({k: v for k, v in env.items() if k != "TRADEBOT_POD_NAME"})
