"""Delete requests of the TradingBot (``onDelete``): stop trading, then leave, cancel the
shard's orders or flatten its positions, and acknowledge in the heartbeat when done."""

from __future__ import annotations

import logging
from typing import Final

from tradebot_contracts.runtime_config import DeleteRequest
from tradebot_runtime.app_state import AppState, ShardSlot
from tradebot_runtime.domain import OrderIntent, OrderType, Side
from tradebot_runtime.engine import ShardEngine
from tradebot_runtime.precision import ConformProblem, conform_intent

log = logging.getLogger("tradebot.app")

FLATTEN_TAG: Final = "flatten"


class DeleteRequests(AppState):
    """Carries out the delete request on every shard this pod leads."""

    async def _delete_action(self, slot: ShardSlot, request: DeleteRequest) -> None:
        engine = slot.engine
        if engine is None or slot.ack == request.id or not self.is_leader(slot.index):
            return
        async with slot.lock:
            if slot.engine is not engine or slot.ack == request.id:
                return
            try:
                done = await self._do_delete_action(engine, request)
            except Exception:
                log.exception("delete action failed", extra={"shard": slot.index})
                return
            if done:
                slot.ack = request.id
                log.info(
                    "delete request done",
                    extra={"shard": slot.index, "id": request.id, "action": request.action},
                )

    async def _do_delete_action(self, engine: ShardEngine, request: DeleteRequest) -> bool:
        engine.set_trading_state("Halted")
        if request.action == "leave":
            return True
        remaining = await engine.cancel_all()
        if remaining:
            return False
        if request.action == "cancelOrders":
            return True
        await engine.sync_fills()
        if not await _priced(engine):
            return False  # dust or not cannot be told yet: retried, never acknowledged
        engine.set_trading_state("ReduceOnly")
        try:
            for symbol in engine.symbols:
                intent = _closing_intent(engine, symbol)
                if intent is not None:
                    await engine.submit(intent)
            await engine.resolve_unknown()
            await engine.sync_fills()
        finally:
            engine.set_trading_state("Halted")
        return all(_closing_intent(engine, s) is None for s in engine.symbols) and not engine.orders


def _closing_intent(engine: ShardEngine, symbol: str) -> OrderIntent | None:
    """The reduce-only market order that closes ``symbol``'s position; None when flat or
    when the exchange would refuse any closing order (below its minimum amount, step or
    notional: dust, e.g. the remainder of a base-currency fee), which flatten leaves."""
    amount = engine.book.position(symbol).amount
    if amount == 0:
        return None
    side = Side.SELL if amount > 0 else Side.BUY
    intent = OrderIntent(
        symbol, side, OrderType.MARKET, abs(amount), reduce_only=True, tag=FLATTEN_TAG
    )
    rules = engine.client.market_rules(symbol)
    conformed = conform_intent(intent, rules, engine.last_price.get(symbol))
    if conformed.problem is ConformProblem.NO_REFERENCE_PRICE:
        return intent  # without a price it is not dust: the position is still open
    if conformed.intent is None:
        log.info("flatten: position below the exchange's minimum left as dust",
                 extra={"symbol": symbol, "amount": str(amount)})  # fmt: skip
        return None
    return intent


async def _priced(engine: ShardEngine) -> bool:
    """Every symbol with a position has a reference price (right after a takeover no bar
    may have arrived yet: ask the exchange); False when one is still missing."""
    for symbol in engine.symbols:
        if engine.book.position(symbol).amount == 0 or symbol in engine.last_price:
            continue
        try:
            last = await engine.client.fetch_last_price(symbol)
        except Exception as exc:
            log.warning("flatten: no price for %s yet: %s", symbol, type(exc).__name__)
            return False
        if last is None:
            log.warning("flatten: no price for %s yet", symbol)
            return False
        engine.last_price.setdefault(symbol, last)
    return True
