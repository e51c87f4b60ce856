"""Graceful shutdown (SIGTERM/SIGINT): stop every engine at once, let in-flight order work
finish (bounded), then release the Leases and close the clients."""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from tradebot_runtime.app_state import AppState, ShardSlot
from tradebot_runtime.tracing import shutdown_tracing

log = logging.getLogger("tradebot.app")

SHUTDOWN_QUIESCE_MARGIN_S: Final = 1.0
"""SIGTERM: in-flight order work may finish for the exchange's request timeout plus this
before the Leases are released; still busy then, they are left to expire instead."""


class Shutdown(AppState):
    """Stop request and the ordered shutdown."""

    def request_stop(self) -> None:
        if not self.stopping:
            log.info("stop requested: no new orders, releasing leases")
        self.stopping = True  # is_leader() is False from now on: no new orders
        for slot in self.slots.values():
            if slot.engine is not None:
                slot.engine.stopped = True
        self.stop_event.set()

    async def shutdown(self) -> None:
        self.request_stop()
        quiet = await self._quiesce_slots(self._quiesce_limit_s())
        if self.leases is not None:
            try:
                await asyncio.wait_for(self.leases.stop(release=quiet), 5)
            except Exception as exc:
                log.warning("lease release failed: %s", exc)
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            # bounded: a task that does not honour cancellation must not block the exit
            _, pending = await asyncio.wait(self.tasks, timeout=5)
            if pending:
                log.warning(
                    "tasks did not stop", extra={"tasks": sorted(t.get_name() for t in pending)}
                )
        for slot in self.slots.values():
            if slot.starting is not None:
                slot.starting.cancel()
        for closer in (
            self.client.close if self.client else None,
            self.ws.close if self.ws else None,
            self.journal.close if self.journal else None,
            self.redis.aclose if self.redis else None,
            self.api.close if self.api else None,
            self.http.cleanup if self.http else None,
        ):
            if closer is not None:
                try:
                    await asyncio.wait_for(closer(), 3)
                except Exception as exc:
                    log.warning(
                        "close failed", extra={"closer": closer.__qualname__, "error": repr(exc)}
                    )
        await asyncio.to_thread(shutdown_tracing)  # flushes the batch (blocking HTTP)
        log.info("runtime stopped")

    def _quiesce_limit_s(self) -> float:
        """A create on the wire ends by the exchange's request timeout (ccxt, ms)."""
        timeout_ms = getattr(getattr(self.client, "exchange", None), "timeout", None) or 10_000
        return float(timeout_ms) / 1000 + SHUTDOWN_QUIESCE_MARGIN_S

    async def _quiesce_slots(self, limit_s: float) -> bool:
        """Before the Leases are released: cancel shard starts and wait (bounded) until no
        order work is in flight, so that the successor's first order can never reach the
        exchange before one of ours (a send already on the wire finishes first). Nothing
        new starts: ``stopping`` makes ``is_leader`` false and every engine is stopped.
        True when all is quiet."""
        for slot in self.slots.values():
            if slot.starting is not None and not slot.starting.done():
                slot.starting.cancel()

        async def idle(slot: ShardSlot) -> None:
            async with slot.lock:
                pass

        busy = [slot for slot in self.slots.values() if slot.lock.locked()]
        if not busy:
            return True
        try:
            await asyncio.wait_for(asyncio.gather(*(idle(s) for s in busy)), limit_s)
        except TimeoutError:
            log.warning("order work still in flight at shutdown: the leases are left to expire")
            return False
        return True
