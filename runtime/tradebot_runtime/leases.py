"""Shard leadership through pre-created coordination.k8s.io/v1 Leases.

One Lease per shard (``<bot>-<account>-<shard>``), created by the operator without a holder;
the runtime may only get and update them. Rules:

* **Acquire** a Lease when it has no holder, when its holder's ``renewTime +
  leaseDurationSeconds`` has passed (wall clock; pods are assumed to have NTP-synced
  clocks, and Postgres fencing covers the rest), or when it names this pod but this
  process does not hold it (a previous incarnation of the container). Every acquisition
  increments ``leaseTransitions``; the new value is the **epoch** (fencing term).
* Every write is a full ``replace`` carrying the ``resourceVersion`` that was read, so two
  contenders can never both succeed: the loser gets 409 Conflict and re-reads.
* **Renew** every ``duration / 3``; each renewal writes the heartbeat annotation.
  A 409 caused by someone else's write (e.g. the operator re-applying labels) is retried
  once on the fresh object if this pod is still the holder.
* **Fail closed**: ``is_leader(shard)`` is purely time-based: true only while
  ``monotonic() < start of the last successful renew request + duration - margin``. The
  engine checks it right before every send, so a pod that cannot renew stops sending
  before anyone else can take the Lease.
* **Release** clears ``holderIdentity`` (and ``renewTime``) at once on shutdown.
* **Watch**: ``run`` also watches each Lease (one field-selected watch per name). A Lease
  this pod does not hold that becomes free wakes the round at once (a graceful release is
  taken over in tens of milliseconds, not one renew interval), and every foreign renewal
  updates the exact expiry the round sleeps until (a dead holder's Lease is taken right
  after ``renewTime + leaseDurationSeconds``, not up to one renew interval later). Reads
  and writes stay the plain get/replace above; the watch only decides *when* to look.
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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from kubernetes_asyncio import client
from kubernetes_asyncio import watch as k8s_watch
from kubernetes_asyncio.client.exceptions import ApiException

from tradebot_contracts.heartbeat import HEARTBEAT_ANNOTATION

log = logging.getLogger("tradebot.leases")

EXPIRY_SLACK_S = 0.02
"""Wake this long after a foreign Lease's expiry (clock granularity, not a safety margin:
acquisition compares against the Lease as read at that moment)."""
HeartbeatFn = Callable[[int, int], str | None]
"""(shard, epoch) -> heartbeat annotation value (None: leave the annotation alone)."""
ShardHook = Callable[[int, int], Awaitable[None]]
"""(shard, epoch) -> awaited on acquisition, before a graceful release and on loss."""


class Presence(Protocol):
    """How many pods currently compete for this bot x account's shards."""

    async def beat(self) -> None: ...

    async def live_pods(self) -> int | None:
        """None when unknown (then only the Lease holders are counted)."""
        ...

    async def leave(self) -> None: ...


def format_micro_time(value: datetime) -> str:
    """Kubernetes MicroTime (RFC 3339 with exactly six fractional digits)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class HeldLease:
    """A Lease this process holds."""

    name: str
    shard: int
    epoch: int
    valid_until: float
    """monotonic() before which this pod may act as the shard's leader."""
    resource_version: str


@dataclass(frozen=True, slots=True)
class LeaseView:
    """What a read of one Lease says."""

    holder: str | None
    renew_time: datetime | None
    duration_s: int

    def expired(self, now: datetime) -> bool:
        if not self.holder or self.renew_time is None:
            return True
        return now > self.renew_time + timedelta(seconds=self.duration_s)


class LeaseManager:
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
        self.coordination = client.CoordinationV1Api(api)
        self.api = api
        self.namespace = namespace
        self.lease_names = list(lease_names)
        self.identity = identity
        self.duration_s = duration_s
        self.margin_s = margin_s if margin_s is not None else max(0.2, duration_s * 0.15)
        self.renew_interval_s = duration_s / 3
        self.heartbeat = heartbeat
        self.on_acquired = on_acquired
        self.before_release = before_release
        self.on_lost = on_lost
        self.presence = presence
        self.clock = clock
        self.held: dict[int, HeldLease] = {}
        self.live_pods = 1
        self._stopping = False
        self._lock = asyncio.Lock()
        self._foreign_expiry: dict[int, datetime] = {}
        """Shard -> when its current (foreign, live) holder's Lease expires."""
        self._wake = asyncio.Event()
        self.watch_enabled = watch

    # -- queries ------------------------------------------------------------------------

    def is_leader(self, shard: int) -> bool:
        """True only while the last successful renewal is fresh enough (fail closed)."""
        lease = self.held.get(shard)
        return lease is not None and self.clock() < lease.valid_until

    def epoch(self, shard: int) -> int | None:
        lease = self.held.get(shard)
        return lease.epoch if lease is not None else None

    def leader_shards(self) -> list[int]:
        return sorted(s for s in self.held if self.is_leader(s))

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
        return (earliest - _now()).total_seconds() + EXPIRY_SLACK_S

    def _expiry_due(self) -> bool:
        until = self._until_expiry()
        return until is not None and until <= 0

    def _drop_passed_expiries(self) -> None:
        # a Lease that expired but could not be taken (fair share, an API error) must not
        # wake every round; the next read or watch event brings it back if renewed
        now = _now() - timedelta(seconds=EXPIRY_SLACK_S)
        for shard, expiry in list(self._foreign_expiry.items()):
            if expiry <= now:
                del self._foreign_expiry[shard]

    def _observe(self, shard: int, v: LeaseView) -> None:
        """Remember a foreign holder's expiry; wake the round when the Lease is free (or a
        Lease this pod holds names someone else)."""
        now = _now()
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
            now = _now()
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
        now = _now()
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

    async def _read(self, name: str) -> client.V1Lease:
        lease: client.V1Lease = await self.coordination.read_namespaced_lease(name, self.namespace)
        return lease

    async def _read_all(self) -> dict[int, tuple[client.V1Lease, LeaseView]]:
        async def one(shard: int, name: str) -> tuple[int, client.V1Lease | None]:
            try:
                return shard, await self._read(name)
            except Exception as exc:
                log.warning("cannot read lease %s: %s", name, exc)
                return shard, None

        results = await asyncio.gather(*(one(i, n) for i, n in enumerate(self.lease_names)))
        return {shard: (lease, view(lease)) for shard, lease in results if lease is not None}

    def _body(
        self, lease: client.V1Lease, *, holder: str | None, renew: datetime | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = self.api.sanitize_for_serialization(lease)
        spec = body.setdefault("spec", {})
        spec["holderIdentity"] = holder
        spec["renewTime"] = format_micro_time(renew) if renew is not None else None
        spec.setdefault("leaseDurationSeconds", math.ceil(self.duration_s))
        return body

    def _annotate(self, body: dict[str, Any], shard: int, epoch: int) -> None:
        if self.heartbeat is None:
            return
        value = self.heartbeat(shard, epoch)
        if value is not None:
            meta = body.setdefault("metadata", {})
            annotations = meta.get("annotations") or {}
            annotations[HEARTBEAT_ANNOTATION] = value
            meta["annotations"] = annotations

    async def _replace(self, name: str, body: dict[str, Any]) -> client.V1Lease:
        # a plain dict body: MicroTime fields must keep their exact wire format
        lease: client.V1Lease = await self.coordination.replace_namespaced_lease(
            name,
            self.namespace,
            body,  # type: ignore[arg-type]
        )
        return lease

    async def _acquire(self, shard: int, lease: client.V1Lease) -> None:
        name = self.lease_names[shard]
        started = self.clock()
        now = _now()
        epoch = (lease.spec.lease_transitions or 0) + 1
        body = self._body(lease, holder=self.identity, renew=now)
        body["spec"]["acquireTime"] = format_micro_time(now)
        body["spec"]["leaseTransitions"] = epoch
        duration = lease.spec.lease_duration_seconds or math.ceil(self.duration_s)
        body["spec"]["leaseDurationSeconds"] = duration
        self._annotate(body, shard, epoch)
        try:
            written = await self._replace(name, body)
        except ApiException as exc:
            if exc.status == 409:
                log.info("lost the race for lease %s", name)
                return
            log.warning("cannot acquire lease %s: %s", name, exc.reason)
            return
        except Exception as exc:
            log.warning("cannot acquire lease %s: %s", name, exc)
            return
        self.held[shard] = HeldLease(
            name=name,
            shard=shard,
            epoch=epoch,
            valid_until=started + min(self.duration_s, duration) - self.margin_s,
            resource_version=written.metadata.resource_version,
        )
        log.info("acquired lease", extra={"lease": name, "shard": shard, "epoch": epoch})
        if self.on_acquired is not None:
            await self.on_acquired(shard, epoch)

    async def _renew(self, shard: int) -> None:
        held = self.held[shard]
        for _attempt in range(2):
            started = self.clock()
            try:
                lease = await self._read(held.name)
                if lease.spec.holder_identity != self.identity or (
                    (lease.spec.lease_transitions or 0) != held.epoch
                ):
                    await self._lose(shard, "taken by " + str(lease.spec.holder_identity))
                    return
                body = self._body(lease, holder=self.identity, renew=_now())
                self._annotate(body, shard, held.epoch)
                written = await self._replace(held.name, body)
            except ApiException as exc:
                if exc.status == 409:
                    continue  # someone else wrote the object: re-read and check the holder
                log.warning("cannot renew lease %s: %s", held.name, exc.reason)
                return
            except Exception as exc:
                log.warning("cannot renew lease %s: %s", held.name, exc)
                return
            held.valid_until = started + self.duration_s - self.margin_s
            held.resource_version = written.metadata.resource_version
            return

    async def _lose(self, shard: int, why: str) -> None:
        held = self.held.pop(shard, None)
        if held is None:
            return
        log.warning("lost lease", extra={"lease": held.name, "shard": shard, "reason": why})
        if self.on_lost is not None:
            await self.on_lost(shard, held.epoch)

    async def _release(self, shard: int, *, graceful: bool) -> None:
        held = self.held.get(shard)
        if held is None:
            return
        if graceful and self.before_release is not None:
            await self.before_release(shard, held.epoch)
        self.held.pop(shard, None)
        for _attempt in range(3):
            try:
                lease = await self._read(held.name)
                if lease.spec.holder_identity != self.identity:
                    return
                body = self._body(lease, holder=None, renew=None)
                self._annotate(body, shard, held.epoch)
                await self._replace(held.name, body)
                log.info("released lease", extra={"lease": held.name, "shard": shard})
                return
            except ApiException as exc:
                if exc.status == 409:
                    continue
                log.warning("cannot release lease %s: %s", held.name, exc.reason)
                return
            except Exception as exc:
                log.warning("cannot release lease %s: %s", held.name, exc)
                return

    async def release(self, shard: int) -> None:
        async with self._lock:
            await self._release(shard, graceful=True)

    async def stop(self) -> None:
        """Shutdown: stop renewing and release every held Lease at once (the engine has
        already stopped sending)."""
        self._stopping = True
        self._wake.set()
        for held in self.held.values():
            held.valid_until = 0.0  # fail closed immediately
        async with self._lock:
            await asyncio.gather(
                *(self._release(shard, graceful=False) for shard in list(self.held))
            )
        if self.presence is not None:
            try:
                await self.presence.leave()
            except Exception as exc:
                log.warning("presence leave failed: %s", exc)


def view(lease: client.V1Lease) -> LeaseView:
    spec = lease.spec
    renew = spec.renew_time
    if isinstance(renew, str):
        renew = datetime.fromisoformat(renew.replace("Z", "+00:00"))
    if renew is not None and renew.tzinfo is None:
        renew = renew.replace(tzinfo=UTC)
    return LeaseView(
        holder=spec.holder_identity or None,
        renew_time=renew,
        duration_s=spec.lease_duration_seconds or 0,
    )
