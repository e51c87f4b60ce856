"""The shard slot lifecycle: a Lease acquired starts the shard's ShardEngine (reconciled
under the slot lock, with back-off and hand-back when the start fails); a Lease lost or
released stops it."""

from __future__ import annotations

import asyncio
import logging

from tradebot_runtime import metrics
from tradebot_runtime.app_state import ShardSlot
from tradebot_runtime.bar_routing import BarRouting
from tradebot_runtime.delete_requests import DeleteRequests
from tradebot_runtime.engine import ShardEngine, start_backoff
from tradebot_runtime.exchange.paper import PaperBroker
from tradebot_runtime.journal import Fence
from tradebot_runtime.positions import PnlTracker
from tradebot_runtime.risk import RiskEngine, RiskLimits

log = logging.getLogger("tradebot.app")


class ShardSlots(BarRouting, DeleteRequests):
    """The LeaseManager's hooks: start and stop the engine of a shard."""

    async def on_acquired(self, shard: int, epoch: int) -> None:
        slot = self.slots[shard]
        slot.epoch, slot.engine, slot.error, slot.ack = epoch, None, None, None
        if self.refusal is not None:
            # held, never started: the heartbeat says why (state Error, not ready)
            slot.error = self.refusal
            log.error("shard not started: " + self.refusal, extra={"shard": shard, "epoch": epoch})
            return
        slot.starting = asyncio.create_task(self._start_engine(slot, epoch))

    async def _start_engine(self, slot: ShardSlot, epoch: int) -> None:
        assert self.journal is not None and self.client is not None
        config = self.config
        engine = ShardEngine(
            journal=self.journal,
            client=self.client,
            strategy=slot.strategy,
            risk=RiskEngine(RiskLimits.from_config(config.risk), self._risk_state()),
            fence=Fence(self.bot_id, config.account, slot.index, epoch, config.bot_generation),
            symbols=slot.symbols,
            # lease validity only: after SIGTERM, engine.stopped refuses new intents while
            # an intent journaled just before may still be sent (released after, see
            # _quiesce_slots); every decision path checks self.is_leader (not stopping)
            is_leader=lambda: self.leases is not None and self.leases.is_leader(slot.index),
            pnl=PnlTracker(config.allocation.amount),
        )
        try:
            async with slot.lock:
                if isinstance(self.client, PaperBroker):
                    records = await self.journal.load_orders(
                        self.bot_id, config.account, slot.index
                    )
                    self.client.adopt(records)
                await engine.start(self.identity.pod)
                if isinstance(self.client, PaperBroker):
                    for symbol in slot.symbols:
                        last = self.client.prices.get(symbol)
                        if last is not None:
                            engine.last_price[symbol] = last
                if slot.epoch != epoch or not self.is_leader(slot.index):
                    engine.stopped = True
                    return
                slot.engine = engine
                await self._replay_latest_bar(slot, engine)
            slot.start_failures = 0
            metrics.SHARD_START_BACKOFF.labels(str(slot.index)).set(0)
            log.info(
                "shard trading",
                extra={"shard": slot.index, "epoch": epoch, "orders": len(engine.orders)},
            )
            if self.delete_request is not None:
                await self._delete_action(slot, self.delete_request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            slot.error = f"start failed: {type(exc).__name__}: {exc}"[:150]
            slot.start_failures += 1
            delay = start_backoff(slot.start_failures, self.rng)
            metrics.SHARD_START_FAILURES.labels(str(slot.index)).inc()
            metrics.SHARD_START_BACKOFF.labels(str(slot.index)).set(delay)
            log.exception(
                "shard start failed",
                extra={"shard": slot.index, "epoch": epoch, "failures": slot.start_failures,
                       "retry_in_s": round(delay, 2)},
            )  # fmt: skip
            if self.leases is not None and not self.stopping:
                # give the shard to someone else rather than hold it without trading; one
                # that keeps failing is handed back (and retried under a new epoch) with
                # exponential back-off instead of every ~2 s
                self._spawn(self._release_failed(slot.index, epoch, delay=delay))

    async def _release_failed(self, shard: int, epoch: int, delay: float) -> None:
        await asyncio.sleep(delay)
        slot = self.slots[shard]
        if self.leases is not None and slot.epoch == epoch and slot.engine is None:
            await self.leases.release(shard)

    async def _stop_slot(self, shard: int, epoch: int) -> None:
        slot = self.slots[shard]
        if slot.starting is not None and not slot.starting.done():
            slot.starting.cancel()
        async with slot.lock:
            if slot.engine is not None:
                slot.engine.stopped = True
            slot.engine = None
            slot.epoch = None

    async def before_release(self, shard: int, epoch: int) -> None:
        await self._stop_slot(shard, epoch)

    async def on_lost(self, shard: int, epoch: int) -> None:
        await self._stop_slot(shard, epoch)
