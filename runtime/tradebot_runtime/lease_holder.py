"""One pod's hold on single shard Leases (coordination.k8s.io/v1, pre-created by the
operator without a holder; the runtime may only get and update them): acquire, renew,
release, and the fail-closed leadership check. When to do which (watch, rounds, fair
share) is decided by ``LeaseManager`` in leases.py.

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
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tradebot_contracts.heartbeat import HEARTBEAT_ANNOTATION

log = logging.getLogger("tradebot.leases")


HeartbeatFn = Callable[[int, int], str | None]
"""(shard, epoch) -> heartbeat annotation value (None: leave the annotation alone)."""
ShardHook = Callable[[int, int], Awaitable[None]]
"""(shard, epoch) -> awaited on acquisition, before a graceful release and on loss."""


def format_micro_time(value: datetime) -> str:
    """Kubernetes MicroTime (RFC 3339 with exactly six fractional digits)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now() -> datetime:
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


class LeaseHolder:
    """Acquires, renews and releases single shard Leases for one runtime pod."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        lease_names: Sequence[str],
        identity: str,
        *,
        duration_s: float,
        margin_s: float | None,
        heartbeat: HeartbeatFn | None,
        on_acquired: ShardHook | None,
        before_release: ShardHook | None,
        on_lost: ShardHook | None,
        clock: Callable[[], float],
    ) -> None:
        self.coordination = client.CoordinationV1Api(api)
        self.api = api
        self.namespace = namespace
        self.lease_names = list(lease_names)
        self.identity = identity
        self.duration_s = duration_s
        self.margin_s = margin_s if margin_s is not None else max(0.2, duration_s * 0.15)
        self.heartbeat = heartbeat
        self.on_acquired = on_acquired
        self.before_release = before_release
        self.on_lost = on_lost
        self.clock = clock
        self.held: dict[int, HeldLease] = {}

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

    # -- one Lease ----------------------------------------------------------------------

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
        now = utc_now()
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
                body = self._body(lease, holder=self.identity, renew=utc_now())
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
