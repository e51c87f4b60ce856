"""Shard leadership through pre-created coordination.k8s.io/v1 Leases: when to acquire,
renew and release them. The reads and writes themselves, the epoch and the fail-closed
``is_leader`` check are in lease_holder.py (with their rules).

One Lease per shard (``<bot>-<account>-<shard>``), created by the operator without a holder.

* **Rounds**: ``run`` calls ``step`` every renew interval (``duration / 3``): renew the
  held Leases, count the live pods, acquire free ones up to the fair share, release the
  surplus.
* **Watch**: ``run`` also watches each Lease (one field-selected watch per name). A Lease
  this pod does not hold that becomes free wakes the round at once (a graceful release is
  taken over in tens of milliseconds, not one renew interval), and every foreign renewal
  updates the exact expiry the round sleeps until (a dead holder's Lease is taken right
  after ``renewTime + leaseDurationSeconds``, not up to one renew interval later). Reads
  and writes stay the plain get/replace of lease_holder.py; the watch only decides *when* to look.
* **Fair share**: a pod holds at most ``ceil(shards / live pods)`` Leases. Live pods come
  from a ``Presence`` (Redis presence set, see presence.py) and, as a floor, from the
  distinct live holders seen on the Leases plus this pod. Surplus Leases are released
  gracefully (highest shard first) after the ``before_release`` hook has stopped the
  shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from kubernetes_asyncio import client
from kubernetes_asyncio import watch as k8s_watch

from tradebot_runtime.lease_holder import (
    HeartbeatFn,
    LeaseHolder,
    LeaseView,
    ShardHook,
    utc_now,
    view,
)

log = logging.getLogger("tradebot.leases")

EXPIRY_SLACK_S = 0.02
"""Wake this long after a foreign Lease's expiry (clock granularity, not a safety margin:
acquisition compares against the Lease as read at that moment)."""


class Presence(Protocol):
    """How many pods currently compete for this bot x account's shards."""

    async def beat(self) -> None: ...

    async def live_pods(self) -> int | None:
        """None when unknown (then only the Lease holders are counted)."""
        ...

    async def leave(self) -> None: ...


class LeaseManager(LeaseHolder):
    """Acquires, renews and releases the shard Leases of one runtime pod."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        lease_names: Sequence[str],
        identity: str,
        *,
        duration_s: float = 6.0,
        margin_s: float | None = None,
        heartbeat: HeartbeatFn | None = None,
        on_acquired: ShardHook | None = None,
        before_release: ShardHook | None = None,
        on_lost: ShardHook | None = None,
        presence: Presence | None = None,
        clock: Callable[[], float] = time.monotonic,
        watch: bool = True,
    ) -> None:
        super().__init__(
            api,
            namespace,
            lease_names,
            identity,
            duration_s=duration_s,
            margin_s=margin_s,
            heartbeat=heartbeat,
            on_acquired=on_acquired,
            before_release=before_release,
            on_lost=on_lost,
            clock=clock,
        )
        self.renew_interval_s = duration_s / 3
        self.presence = presence
        self.live_pods = 1
        self._stopping = False
        self._lock = asyncio.Lock()
        self._foreign_expiry: dict[int, datetime] = {}
        """Shard -> when its current (foreign, live) holder's Lease expires."""
        self._wake = asyncio.Event()
        self.watch_enabled = watch

    def fair_share(self) -> int:
        return math.ceil(len(self.lease_names) / max(self.live_pods, 1))

    # -- one round ----------------------------------------------------------------------

    async def run(self) -> None:
        """Renew/acquire/balance forever (until cancelled or ``stop``): a round every renew
        interval, at once when the watch sees a Lease become free, and right after the
        earliest foreign Lease expires."""
        watcher = asyncio.create_task(self.watch()) if self.watch_enabled else None
        try:
            next_round = self.clock()
            while not self._stopping:
                if self.clock() >= next_round or self._wake.is_set() or self._expiry_due():
                    self._wake.clear()
                    started = self.clock()
                    try:
                        await self.step()
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("lease round failed")
                    self._drop_passed_expiries()
                    next_round = started + self.renew_interval_s
                wait = next_round - self.clock()
                until = self._until_expiry()
                if until is not None:
                    wait = min(wait, until)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.02, wait))
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(BaseException):
                    await watcher

    def _until_expiry(self) -> float | None:
        """Seconds until just after the earliest foreign Lease expiry (None: none known)."""
        if not self._foreign_expiry:
            return None
        earliest = min(self._foreign_expiry.values())
        return (earliest - utc_now()).total_seconds() + EXPIRY_SLACK_S

    def _expiry_due(self) -> bool:
        until = self._until_expiry()
        return until is not None and until <= 0

    def _drop_passed_expiries(self) -> None:
        # a Lease that expired but could not be taken (fair share, an API error) must not
        # wake every round; the next read or watch event brings it back if renewed
        now = utc_now() - timedelta(seconds=EXPIRY_SLACK_S)
        for shard, expiry in list(self._foreign_expiry.items()):
            if expiry <= now:
                del self._foreign_expiry[shard]

    def _observe(self, shard: int, v: LeaseView) -> None:
        """Remember a foreign holder's expiry; wake the round when the Lease is free (or a
        Lease this pod holds names someone else)."""
        now = utc_now()
        if shard in self.held:
            self._foreign_expiry.pop(shard, None)
            if v.holder != self.identity:
                self._wake.set()
            return
        if v.expired(now) or v.renew_time is None:
            self._foreign_expiry.pop(shard, None)
            if len(self.held) < self.fair_share():
                self._wake.set()
            return
        self._foreign_expiry[shard] = v.renew_time + timedelta(seconds=v.duration_s)

    async def watch(self) -> None:
        """Watch every Lease of this pod (see the module docstring); never raises."""
        await asyncio.gather(
            *(self._watch_one(shard, name) for shard, name in enumerate(self.lease_names))
        )

    async def _watch_one(self, shard: int, name: str) -> None:
        delay = 0.5
        while not self._stopping:
            try:
                watcher = k8s_watch.Watch()
                async with watcher.stream(
                    self.coordination.list_namespaced_lease,
                    self.namespace,
                    field_selector=f"metadata.name={name}",
                    timeout_seconds=300,
                ) as stream:
                    async for event in stream:
                        delay = 0.5
                        if event["type"] in ("ADDED", "MODIFIED"):
                            self._observe(shard, view(event["object"]))
                        elif event["type"] == "DELETED":
                            self._foreign_expiry.pop(shard, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("lease watch %s failed: %s", name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def step(self) -> None:
        """One round: renew held Leases, count live pods, acquire up to the fair share,
        release the surplus."""
        async with self._lock:
            if self._stopping:
                return
            if self.presence is not None:
                try:
                    await self.presence.beat()
                except Exception as exc:  # presence is advisory only
                    log.warning("presence beat failed: %s", exc)
            for shard in list(self.held):
                await self._renew(shard)
            views = await self._read_all()
            await self._count_live(views)
            share = self.fair_share()
            now = utc_now()
            self._foreign_expiry = {
                shard: v.renew_time + timedelta(seconds=v.duration_s)
                for shard, (_, v) in views.items()
                if shard not in self.held and not v.expired(now) and v.renew_time
            }
            for shard, (lease, view) in sorted(views.items()):
                if len(self.held) >= share:
                    break
                if shard in self.held:
                    continue
                mine_from_before = view.holder == self.identity
                if view.expired(now) or mine_from_before:
                    await self._acquire(shard, lease)
            surplus = len(self.held) - share
            for shard in sorted(self.held, reverse=True)[: max(surplus, 0)]:
                await self._release(shard, graceful=True)

    async def _count_live(self, views: dict[int, tuple[client.V1Lease, LeaseView]]) -> None:
        now = utc_now()
        holders = {v.holder for _, v in views.values() if not v.expired(now) and v.holder}
        holders.add(self.identity)
        count = len(holders)
        if self.presence is not None:
            try:
                present = await self.presence.live_pods()
            except Exception as exc:
                log.warning("presence read failed: %s", exc)
                present = None
            if present is not None:
                count = max(count, present)
        self.live_pods = count

    async def release(self, shard: int) -> None:
        async with self._lock:
            await self._release(shard, graceful=True)

    async def stop(self, release: bool = True) -> None:
        """Shutdown: stop renewing and release every held Lease at once (the engine has
        already stopped sending). ``release=False``: keep them until they expire (an order
        may still be on its way: the successor must not start before it lands)."""
        self._stopping = True
        self._wake.set()
        for held in self.held.values():
            held.valid_until = 0.0  # fail closed immediately
        if release:
            async with self._lock:
                await asyncio.gather(
                    *(self._release(shard, graceful=False) for shard in list(self.held))
                )
        if self.presence is not None:
            try:
                await self.presence.leave()
            except Exception as exc:
                log.warning("presence leave failed: %s", exc)
