"""The order path's spans (tick -> decision -> risk -> order -> ack) against the real
simulator and PostgreSQL, recorded by an in-memory exporter on a provider injected into
the engine (the global provider is never touched)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal

import ccxt.async_support as ccxt_async
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exchange_sim.testing import RunningSimulator
from tradebot_contracts.endpoint import endpoint_overrides
from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_runtime import tracing
from tradebot_runtime.domain import Action, Bar, OrderIntent, OrderType, Side
from tradebot_runtime.engine import ShardEngine
from tradebot_runtime.exchange.client import ExchangeClient
from tradebot_runtime.journal import Fence, Journal
from tradebot_runtime.orders import OrderState
from tradebot_runtime.positions import PnlTracker
from tradebot_runtime.risk import RiskEngine, RiskLimits, RiskRule
from tradebot_runtime.strategies.base import BaseStrategy, StrategyContext

pytestmark = pytest.mark.integration
SYMBOL = "BTC/USDT"


class TwoIntents(BaseStrategy):
    """On every bar: one small market buy (passes risk), one far over the notional cap."""

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> list[Action]:
        return [
            OrderIntent(SYMBOL, Side.BUY, OrderType.MARKET, Decimal("0.001")),
            OrderIntent(SYMBOL, Side.BUY, OrderType.MARKET, Decimal("50")),
        ]


def _one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


async def test_spans_tick_decision_risk_order_ack(
    simulator: RunningSimulator, journal: Journal
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    account = simulator.account()
    config = endpoint_overrides("binance", simulator.url)
    config.update(apiKey=account.api_key, secret=account.secret)
    bot = f"ns/otel-{uuid.uuid4().hex[:6]}"
    client = ExchangeClient(ccxt_async.binance(config), ClientOrderIds("binance", bot, "acct"))
    try:
        await client.load_markets()
        engine = ShardEngine(
            journal=journal,
            client=client,
            strategy=TwoIntents(None, [SYMBOL]),
            risk=RiskEngine(RiskLimits(max_order_notional=Decimal(100000))),
            fence=Fence(bot, "acct", 0, 3),
            symbols=[SYMBOL],
            is_leader=lambda: True,
            pnl=PnlTracker(Decimal(10000)),
            tracer=tracing.get_tracer(provider),
        )
        await engine.start("pod-otel")
        assert exporter.get_finished_spans() == ()  # start/reconcile are not traced
        close = await client.fetch_last_price(SYMBOL)
        assert close is not None
        bar = Bar(SYMBOL, "1m", 0, close, close, close, close, Decimal(1))
        placed = await engine.on_bar(bar)
    finally:
        await client.close()

    assert len(placed) == 1 and placed[0].state is OrderState.FILLED
    record = placed[0]
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["ack", "decision", "order", "risk", "risk", "tick"]
    tick = _one(spans, "tick")
    decision = _one(spans, "decision")
    order = _one(spans, "order")
    ack = _one(spans, "ack")
    risks = [s for s in spans if s.name == "risk"]

    # one trace, rooted at the tick; ack is the order's child
    assert tick.parent is None
    assert {s.context.trace_id for s in spans if s.context} == {tick.context.trace_id}  # type: ignore[union-attr]
    assert _parent_id(decision) == _span_id(tick)
    assert all(_parent_id(r) == _span_id(tick) for r in risks)
    assert _parent_id(order) == _span_id(tick)
    assert _parent_id(ack) == _span_id(order)

    assert dict(tick.attributes or {}) == {
        "symbol": SYMBOL, "shard": 0, "epoch": 3, "timeframe": "1m", "bar.ts": 0,
    }  # fmt: skip
    assert (decision.attributes or {})["intents"] == 2
    accepted, rejected = sorted(risks, key=lambda s: not (s.attributes or {})["accepted"])
    assert (accepted.attributes or {})["accepted"] is True
    assert "rule" not in (accepted.attributes or {})
    assert (rejected.attributes or {})["accepted"] is False
    assert (rejected.attributes or {})["rule"] == RiskRule.MAX_ORDER_NOTIONAL.value
    # the rejected intent never got an order span: the accepted one came first
    assert accepted.end_time is not None and order.start_time is not None
    assert accepted.end_time <= order.start_time

    attrs = dict(order.attributes or {})
    assert attrs["client_order_id"] == record.client_order_id
    assert attrs["side"] == "buy" and attrs["symbol"] == SYMBOL
    assert attrs["amount"] == str(record.intent.amount)
    ack_attrs = dict(ack.attributes or {})
    assert ack_attrs["state"] == OrderState.FILLED.value
    assert ack_attrs["exchange_order_id"] == record.exchange_order_id is not None
    assert ack_attrs["send_status"] == "acked"
