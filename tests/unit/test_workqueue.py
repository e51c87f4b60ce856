"""The reconcile work queue: dedupe, one pass per key at a time, re-queue once after a
wake during a pass, delayed wakes (earliest wins, superseded by a pass), backoff."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter

import pytest

from tradebot_operator.kube.workqueue import WorkQueue


async def test_a_key_queued_twice_is_processed_once() -> None:
    q: WorkQueue[str] = WorkQueue()
    seen: list[str] = []

    async def work(key: str) -> None:
        seen.append(key)

    for key in ("a", "b", "a", "a", "b"):
        q.add(key)
    assert len(q) == 2
    q.start(4, work)
    await asyncio.wait_for(q.wait_idle(), 2)
    await q.stop()
    assert sorted(seen) == ["a", "b"]


async def test_a_wake_during_a_pass_runs_exactly_one_more_pass_after_it() -> None:
    q: WorkQueue[str] = WorkQueue()
    started, release = asyncio.Event(), asyncio.Event()
    running = 0
    max_running = 0
    passes = 0

    async def work(key: str) -> None:
        nonlocal running, max_running, passes
        running += 1
        max_running = max(max_running, running)
        passes += 1
        started.set()
        if passes == 1:
            await release.wait()
        running -= 1

    q.start(4, work)  # several idle workers: none may take the key while it is in progress
    q.add("a")
    await asyncio.wait_for(started.wait(), 2)
    for _ in range(5):
        q.add("a")  # woken repeatedly during the pass
    await asyncio.sleep(0.05)
    assert passes == 1 and q.in_progress == 1
    release.set()
    await asyncio.wait_for(q.wait_idle(), 2)
    await q.stop()
    assert passes == 2
    assert max_running == 1


async def test_workers_bound_concurrency_across_keys() -> None:
    q: WorkQueue[int] = WorkQueue()
    running = 0
    max_running = 0

    async def work(key: int) -> None:
        nonlocal running, max_running
        running += 1
        max_running = max(max_running, running)
        await asyncio.sleep(0.01)
        running -= 1

    for key in range(40):
        q.add(key)
    q.start(3, work)
    await asyncio.wait_for(q.wait_idle(), 5)
    await q.stop()
    assert max_running == 3


async def test_returned_delay_requeues_later_and_none_never() -> None:
    q: WorkQueue[str] = WorkQueue()
    times: dict[str, list[float]] = {"again": [], "once": []}
    loop = asyncio.get_running_loop()

    async def work(key: str) -> float | None:
        times[key].append(loop.time())
        return 0.1 if key == "again" and len(times[key]) < 3 else None

    q.start(2, work)
    q.add("again")
    q.add("once")
    await asyncio.sleep(0.5)
    await q.stop()
    assert len(times["once"]) == 1
    assert len(times["again"]) == 3
    gaps = [b - a for a, b in itertools.pairwise(times["again"])]
    assert all(gap >= 0.09 for gap in gaps), gaps
    assert q.scheduled == 0


async def test_earliest_scheduled_wake_wins_and_a_pass_cancels_it() -> None:
    q: WorkQueue[str] = WorkQueue()
    passes: Counter[str] = Counter()

    async def work(key: str) -> None:
        passes[key] += 1

    q.start(1, work)
    q.add_after("a", 5.0)
    q.add_after("a", 0.05)  # earlier: replaces
    q.add_after("a", 1.0)  # later than the pending one: ignored
    assert q.scheduled == 1
    await asyncio.sleep(0.2)
    assert passes["a"] == 1
    assert q.scheduled == 0  # nothing left behind for the 1 s and 5 s requests

    q.add_after("b", 0.2)
    q.add("b")  # an immediate pass supersedes the scheduled one
    await asyncio.sleep(0.4)
    await q.stop()
    assert passes["b"] == 1


async def test_failures_back_off_exponentially_and_success_resets() -> None:
    q: WorkQueue[str] = WorkQueue(backoff_base=0.02, backoff_max=1.0)
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def work(key: str) -> None:
        times.append(loop.time())
        if len(times) <= 3:
            raise RuntimeError("API server said no")

    q.start(1, work)
    q.add("a")
    await asyncio.sleep(0.5)
    await q.stop()
    assert len(times) == 4  # three failures, then success, then nothing more
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.02 and gaps[1] >= 0.04 and gaps[2] >= 0.08, gaps
    assert q.backoff("a") == pytest.approx(0.02)  # the success reset the count


async def test_forget_drops_a_scheduled_wake() -> None:
    q: WorkQueue[str] = WorkQueue()
    passes: list[str] = []

    async def work(key: str) -> None:
        passes.append(key)

    q.start(1, work)
    q.add_after("gone", 0.05)
    q.forget("gone")
    await asyncio.sleep(0.15)
    await q.stop()
    assert passes == []


async def test_an_idle_queue_costs_no_wakeups() -> None:
    q: WorkQueue[str] = WorkQueue()
    passes = 0

    async def work(key: str) -> None:
        nonlocal passes
        passes += 1

    q.start(8, work)
    await asyncio.sleep(0.1)
    assert passes == 0 and len(q) == 0 and q.scheduled == 0
    q.add("a")
    await asyncio.wait_for(q.wait_idle(), 1)
    await q.stop()
    assert passes == 1
