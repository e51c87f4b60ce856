"""Kubernetes Events for the bots, posted in the background.

Reconcile workers only enqueue an event; a couple of poster tasks create them with the
operator's client. Events explain transitions; they must not hold up the writes that make
them happen (children, status): while reconciles are queued (a burst: 1,000 bots applied
at once) an event waits, at most MAX_DEFER_SECONDS, so that the burst's API budget goes to
children and status first.

Each transition is posted once. A pass that computes a transition from a body older than
its own last status write (two handlers of one object racing, e.g. a watch event and a
timer) would tell it again: an Event identical to one posted for the same object less
than DUPLICATE_WINDOW_SECONDS ago (same type, reason and message) is the same transition,
and is not posted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from tradebot_operator.kube.client import KubeClient, Manifest

log = logging.getLogger(__name__)

COMPONENT = "tradebot-operator"
MAX_MESSAGE = 1024
MAX_DEFER_SECONDS = 20.0
DUPLICATE_WINDOW_SECONDS = 60.0


async def _never_busy() -> None:
    return None


# (type, reason, message)
EventSink = Callable[[str, str, str], None]


def event_identity(
    involved: Mapping[str, Any], type_: str, reason: str, message: str
) -> tuple[str, ...]:
    """What makes two Events the same: the object (its uid, else kind/namespace/name) and
    type, reason and (posted, i.e. truncated) message."""
    meta = involved.get("metadata", {})
    obj = meta.get("uid") or f"{involved.get('kind')}/{meta.get('namespace')}/{meta.get('name')}"
    return (str(obj), type_, reason, message[:MAX_MESSAGE])


def event_manifest(
    involved: Mapping[str, Any], type_: str, reason: str, message: str, now: datetime
) -> Manifest:
    meta = involved.get("metadata", {})
    stamp = now.isoformat(timespec="seconds").replace("+00:00", "Z")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{meta.get('name', 'object')}.",
            "namespace": meta["namespace"],
        },
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventPoster:
    def __init__(
        self,
        kube: KubeClient,
        *,
        senders: int = 4,
        backlog: int = 10_000,
        quiet: Callable[[], Awaitable[None]] = _never_busy,
    ) -> None:
        self._kube = kube
        self._quiet = quiet
        """Returns once no reconcile is queued or running."""
        self._queue: asyncio.Queue[tuple[float, Manifest]] = asyncio.Queue(maxsize=backlog)
        self._senders = senders
        self._tasks: list[asyncio.Task[None]] = []
        self._recent: OrderedDict[tuple[str, ...], float] = OrderedDict()
        """Identity -> when it was posted (monotonic), oldest first."""
        self._recent_max = backlog

    def sink(self, involved: Mapping[str, Any]) -> EventSink:
        def post(type_: str, reason: str, message: str) -> None:
            self.post(involved, type_, reason, message)

        return post

    def post(self, involved: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        if self._told_recently(event_identity(involved, type_, reason, message)):
            log.debug("event %s %s already posted; not again", reason, message[:200])
            return
        event = event_manifest(involved, type_, reason, message, datetime.now(UTC))
        try:
            self._queue.put_nowait((time.monotonic(), event))
        except asyncio.QueueFull:  # a flood of events must not grow memory without bound
            log.warning("event backlog full; dropped %s %s", reason, message[:200])

    def _told_recently(self, identity: tuple[str, ...]) -> bool:
        """True for an Event posted within DUPLICATE_WINDOW_SECONDS; else remember it."""
        now = time.monotonic()
        recent = self._recent
        while recent and (
            len(recent) >= self._recent_max
            or now - next(iter(recent.values())) >= DUPLICATE_WINDOW_SECONDS
        ):
            recent.popitem(last=False)
        if identity in recent:
            return True
        recent[identity] = now
        return False

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._send()) for _ in range(self._senders)]

    async def _send(self) -> None:
        while True:
            queued, event = await self._queue.get()
            remaining = MAX_DEFER_SECONDS - (time.monotonic() - queued)
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._quiet(), remaining)
            try:
                await self._kube.create(event)
            except Exception as exc:  # events are best effort, like kubectl's recorder
                log.warning("posting event %s failed: %s", event["reason"], str(exc)[:300])
            finally:
                self._queue.task_done()

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Post what is queued (bounded), then stop the senders."""
        self._quiet = _never_busy
        try:
            await asyncio.wait_for(self._queue.join(), drain_seconds)
        except TimeoutError:
            log.warning("%d events not posted at shutdown", self._queue.qsize())
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
