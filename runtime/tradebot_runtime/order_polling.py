"""Order polling of the shards this pod leads (lookups, open orders, fills) and the
journal probe that reports a PostgreSQL outage."""

from __future__ import annotations

import asyncio
import logging

from tradebot_runtime.app_state import JOURNAL_OUTAGE, log_fenced
from tradebot_runtime.delete_requests import DeleteRequests
from tradebot_runtime.journal import StaleEpochError

log = logging.getLogger("tradebot.app")


class OrderPolling(DeleteRequests):
    """The poll loop: order state, fills, journal health, pending delete requests."""

    async def check_journal(self) -> None:
        """Probe the journal while this pod leads a shard; report an outage (heartbeat,
        log) on the transition, not on every failed bar."""
        if self.journal is None or not any(self.is_leader(s) for s in self.slots):
            return
        try:
            await self.journal.ping()
        except JOURNAL_OUTAGE as exc:
            if self.journal_problem is None:
                log.warning("journal unreachable: no new orders", extra={"error": repr(exc)})
            self.journal_problem = f"journal unreachable ({type(exc).__name__}): no new orders"
            return
        if self.journal_problem is not None:
            log.info("journal reachable again")
        self.journal_problem = None

    async def poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            await self.check_journal()
            for slot in self.slots.values():
                engine = slot.engine
                if engine is None or engine.stopped or not self.is_leader(slot.index):
                    continue
                try:
                    async with slot.lock:
                        if engine.orders:
                            await engine.resolve_unknown()
                            if self.delete_request is None:  # onDelete decides (leave!)
                                await engine.enforce_trading_state()
                        await engine.poll_orders()
                except StaleEpochError as exc:
                    engine.stopped = True
                    log_fenced(slot.index, exc)
                except Exception as exc:
                    log.warning("order poll failed", extra={"shard": slot.index, "error": str(exc)})
                if self.delete_request is not None and slot.ack != self.delete_request.id:
                    await self._delete_action(slot, self.delete_request)
