"""A keyed reconcile work queue served by a fixed pool of async workers.

Semantics (as in client-go's workqueue):

- a key is queued at most once: adding a key that is already waiting does nothing;
- a key is processed by one worker at a time: adding a key while it is being processed
  marks it dirty, and it is queued once more when that pass ends (a wake is never lost);
- ``add_after`` schedules a key for later; only the earliest pending deadline is kept, and
  a pass of the key cancels it (the pass returns its own next deadline);
- the work function returns the delay after which the key wants another pass (None: only
  when something wakes it); an exception re-queues the key with exponential backoff.

Pure asyncio: no Kubernetes here.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

WorkFn = Callable[[K], Awaitable[float | None]]


def backoff_delay(failures: int, base: float, cap: float) -> float:
    """Seconds to wait after ``failures`` consecutive failures before the next attempt:
    ``base`` after the first, doubled after each further one, never more than ``cap``."""
    if failures < 1:
        return 0.0
    if failures > 64:  # 2**64 * base is beyond any cap (and beyond a float for big ints)
        return float(cap)
    return float(min(base * 2 ** (failures - 1), cap))


class WorkQueue(Generic[K]):
    def __init__(self, *, backoff_base: float = 0.5, backoff_max: float = 60.0) -> None:
        self._ready: deque[K] = deque()
        self._queued: set[K] = set()  # waiting in _ready, or dirty while processing
        self._processing: set[K] = set()
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._failures: dict[K, int] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()  # idle workers, woken one by one
        self._idle = asyncio.Event()
        self._idle.set()
        self._workers: list[asyncio.Task[None]] = []
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max

    # ---- producers -------------------------------------------------------------------

    def add(self, key: K) -> None:
        if key in self._queued:
            return
        self._queued.add(key)
        self._idle.clear()
        if key not in self._processing:  # else: done() queues it once the pass ends
            self._ready.append(key)
            self._notify()

    def _notify(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def add_after(self, key: K, delay: float) -> None:
        """Queue `key` in `delay` seconds, unless an earlier wake is already scheduled."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= deadline:
                return
            pending[1].cancel()
        self._timers[key] = (deadline, loop.call_at(deadline, self._fire, key))

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def forget(self, key: K) -> None:
        """Drop scheduled wakes and the failure count of a key that no longer exists."""
        pending = self._timers.pop(key, None)
        if pending is not None:
            pending[1].cancel()
        self._failures.pop(key, None)

    # ---- consumers -------------------------------------------------------------------

    async def get(self) -> K:
        while not self._ready:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._notify()  # woken, then cancelled: pass the wake on
                raise
        key = self._ready.popleft()
        self._queued.discard(key)
        self._processing.add(key)
        pending = self._timers.pop(key, None)  # this pass supersedes the scheduled one
        if pending is not None:
            pending[1].cancel()
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._queued:  # woken during the pass: once more
            self._ready.append(key)
            self._notify()
        elif not self._ready and not self._processing:
            self._idle.set()

    def backoff(self, key: K) -> float:
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        return backoff_delay(failures, self._backoff_base, self._backoff_max)

    # ---- worker pool -----------------------------------------------------------------

    def start(self, workers: int, work: WorkFn[K]) -> None:
        self._workers += [
            asyncio.create_task(self._serve(work), name=f"reconcile-worker-{i}")
            for i in range(workers)
        ]

    async def _serve(self, work: WorkFn[K]) -> None:
        while True:
            key = await self.get()
            delay: float | None
            try:
                delay = await work(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                self.done(key)
                raise
            except Exception:  # one key's failure never stops a worker
                delay = self.backoff(key)
                log.exception("work on %s failed; retrying in %.1fs", key, delay)
            self.done(key)
            if delay is not None:
                self.add_after(key, delay)

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    # ---- introspection (tests, metrics) ----------------------------------------------

    async def wait_idle(self) -> None:
        """Until nothing is queued or processing (scheduled wakes do not count)."""
        await self._idle.wait()

    def __len__(self) -> int:
        return len(self._ready)

    @property
    def scheduled(self) -> int:
        return len(self._timers)

    @property
    def in_progress(self) -> int:
        return len(self._processing)
