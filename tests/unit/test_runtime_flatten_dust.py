"""Which order flatten sends for a position (``app._closing_intent``): a remainder the
exchange would refuse (below its amount step, minimum amount or notional -- e.g. what a
base-currency fee leaves after a round trip) is dust and counts as flat, so that a delete
with ``onDelete: flatten`` is acknowledged instead of retried forever."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from tradebot_runtime.delete_requests import FLATTEN_TAG, _closing_intent, _priced
from tradebot_runtime.domain import Fill, OrderType, Side
from tradebot_runtime.positions import PositionBook
from tradebot_runtime.precision import MarketRules

SYMBOL = "BTC/USDT"
RULES = MarketRules(
    amount_step=Decimal("0.00001"), price_tick=Decimal("0.01"),
    min_amount=Decimal("0.00001"), min_notional=Decimal("5"),
)  # fmt: skip


@dataclass
class _Client:
    def market_rules(self, symbol: str) -> MarketRules:
        return RULES


@dataclass
class _Engine:
    """What _closing_intent reads of a ShardEngine."""

    book: PositionBook = field(default_factory=PositionBook)
    client: _Client = field(default_factory=_Client)
    last_price: dict[str, Decimal] = field(default_factory=lambda: {SYMBOL: Decimal(60000)})


def _engine(*fills: tuple[str, str, str]) -> Any:
    engine = _Engine()
    for i, (side, amount, fee) in enumerate(fills):
        engine.book.apply(
            Fill(
                trade_id=str(i), client_order_id=f"c{i}", symbol=SYMBOL, side=Side(side),
                price=Decimal(60000), amount=Decimal(amount), fee=Decimal(fee),
                fee_currency="BTC" if side == "buy" else "USDT", ts=i,
            )
        )  # fmt: skip
    return cast(Any, engine)


def test_a_long_position_is_sold_reduce_only_at_market() -> None:
    intent = _closing_intent(_engine(("buy", "0.00034", "0.00000034")), SYMBOL)
    assert intent is not None
    assert (intent.side, intent.type, intent.reduce_only, intent.tag) == (
        Side.SELL, OrderType.MARKET, True, FLATTEN_TAG,
    )  # fmt: skip
    assert intent.amount == Decimal("0.00033966")


def test_flat_is_flat() -> None:
    assert _closing_intent(_engine(), SYMBOL) is None
    assert _closing_intent(_engine(("buy", "0.001", "0"), ("sell", "0.001", "0")), SYMBOL) is None


def test_fee_dust_below_the_step_counts_as_flat() -> None:
    # bought 0.00034 (fee 0.00000034 BTC), sold the 0.00033 the step allowed: 0.00000966 left
    engine = _engine(("buy", "0.00034", "0.00000034"), ("sell", "0.00033", "0.0198"))
    assert engine.book.position(SYMBOL).amount == Decimal("0.00000966")
    assert _closing_intent(engine, SYMBOL) is None


def test_a_remainder_below_the_minimum_notional_counts_as_flat() -> None:
    engine = _engine(("buy", "0.00005", "0"))  # 3 USDT < minimum notional 5
    assert _closing_intent(engine, SYMBOL) is None
    engine.last_price[SYMBOL] = Decimal(200000)  # 10 USDT at this price: closable
    assert _closing_intent(engine, SYMBOL) is not None


def test_without_a_reference_price_a_position_is_not_dust() -> None:
    """Issue 15, scenario 6: right after a takeover no bar has set a price yet, and the
    position counted as dust: flatten reported done with the whole position open."""
    engine = _engine(("buy", "0.001", "0"))
    engine.last_price.clear()
    intent = _closing_intent(engine, SYMBOL)
    assert intent is not None and intent.amount == Decimal("0.001")


@dataclass
class _PricingClient(_Client):
    last: Decimal | None = None
    asked: list[str] = field(default_factory=list)

    async def fetch_last_price(self, symbol: str) -> Decimal | None:
        self.asked.append(symbol)
        return self.last


async def test_flatten_asks_the_exchange_for_a_missing_price_and_waits_without_one() -> None:
    engine = _engine(("buy", "0.001", "0"))
    engine.last_price.clear()
    engine.symbols = [SYMBOL, "ETH/USDT"]  # ETH: flat, needs no price
    engine.client = _PricingClient()
    assert await _priced(engine) is False  # no price anywhere: not acknowledged, retried
    engine.client.last = Decimal(61000)
    assert await _priced(engine) is True
    assert engine.last_price == {SYMBOL: Decimal(61000)}
    assert engine.client.asked == [SYMBOL, SYMBOL]
