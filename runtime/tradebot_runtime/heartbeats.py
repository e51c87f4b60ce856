"""Heartbeat publishing: what each held shard reports in its Lease's heartbeat annotation
(written by the LeaseManager on every renewal; built by status.py)."""

from __future__ import annotations

import logging
from decimal import Decimal

from tradebot_contracts.heartbeat import encode_heartbeat, now_utc
from tradebot_runtime.app_state import AppState, ShardSlot
from tradebot_runtime.breaker import BreakerState
from tradebot_runtime.status import ShardView, build_heartbeat

log = logging.getLogger("tradebot.app")


class Heartbeats(AppState):
    """The heartbeat of each shard: engine state, problems, rollout and delete acks."""

    def shard_view(self, slot: ShardSlot) -> ShardView | None:
        engine = slot.engine
        if engine is None:
            if slot.error is None:
                return None
            return ShardView(
                shard=slot.index, epoch=slot.epoch or 0, reconciled=False, stopped=False,
                open_orders=0, position_notional=Decimal(0), realized_pnl=Decimal(0),
                unrealized_pnl=Decimal(0), mismatches=0, error=slot.error,
            )  # fmt: skip
        marks = engine.last_price
        breaker = None
        if engine.client.breaker.state is not BreakerState.CLOSED:
            breaker = "exchange"
        return ShardView(
            shard=slot.index,
            epoch=engine.fence.epoch,
            reconciled=engine.reconciled,
            stopped=engine.stopped,
            open_orders=len(engine.orders),
            position_notional=engine.book.position_notional(marks),
            realized_pnl=engine.book.realized_pnl(),
            unrealized_pnl=engine.book.unrealized_pnl(marks),
            mismatches=engine.stats.mismatches,
            breaker=breaker,
            error=self.journal_problem,
        )

    def messages(self, slot: ShardSlot) -> list[str]:
        out: list[str] = []
        if self.feed is not None:
            stale = [s for s in self.feed.stale_symbols() if s in slot.symbols]
            if stale:
                out.append("market data stale: " + ",".join(stale))
        if self.pending_rollout:
            out.append("waiting for rollout: " + ",".join(sorted(self.pending_rollout)))
        if slot.engine is not None:
            out.extend(slot.engine.problems[k] for k in sorted(slot.engine.problems))
        out.extend(
            self.unknown_symbols.get(s, "") for s in slot.symbols if s in self.unknown_symbols
        )
        credentials = self.credentials.problem() if self.credentials is not None else None
        if credentials:
            out.append(credentials)
        return out

    def heartbeat(self, shard: int, epoch: int) -> str | None:
        slot = self.slots.get(shard)
        if slot is None:
            return None
        try:
            hb = build_heartbeat(
                pod=self.identity.pod,
                shard=shard,
                epoch=epoch,
                now=now_utc(),
                view=self.shard_view(slot),
                trading_state=self.trading_state,
                config_version=self.running_version,
                draining=self.stopping,
                deleting=self.delete_request is not None,
                ack_delete_request=slot.ack,
                messages=self.messages(slot),
                money=self.money,
            )
            return encode_heartbeat(hb)
        except Exception:
            log.exception("heartbeat build failed", extra={"shard": shard})
            return None
