"""Prepaid tokens (taken before an order is journaled) pay for that task's next request
only: the send does not wait again, tasks that were already running do not profit, and
unused credit is dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from decimal import Decimal

from tradebot_runtime.ratelimit import SharedRateLimiter
from tradebot_runtime.ratelimit_lua import BucketParams

# five units in the bucket (the smallest local bucket), refilled at a thousandth of a unit
# per second: no further unit becomes available within a test
FULL = Decimal(5)


def limiter() -> SharedRateLimiter:
    return SharedRateLimiter(None, "test:prepay", BucketParams(1, 5000))


async def blocks(waiting: Awaitable[None]) -> bool:
    try:
        await asyncio.wait_for(waiting, 0.2)
    except TimeoutError:
        return True
    return False


async def test_prepaid_request_does_not_wait_again() -> None:
    lim = limiter()
    await lim.prepay(FULL)  # empties the bucket
    assert not await blocks(lim.acquire(FULL))  # the send: paid already
    assert await blocks(lim.acquire(1))  # the credit is spent and the bucket is empty


async def test_only_the_difference_is_waited_for() -> None:
    lim = limiter()
    await lim.prepay(Decimal(4))
    assert not await blocks(lim.acquire(FULL))  # 4 prepaid + the last unit in the bucket
    assert await blocks(lim.acquire(1))


async def test_tasks_already_running_do_not_use_the_credit() -> None:
    lim = limiter()
    prepaid = asyncio.Event()

    async def poller() -> bool:  # e.g. the order poll loop, started before the order
        await prepaid.wait()
        return await blocks(lim.acquire(1))

    other = asyncio.create_task(poller())
    await lim.prepay(FULL)
    prepaid.set()
    assert await other


async def test_unused_credit_is_dropped() -> None:
    lim = limiter()
    await lim.prepay(FULL)
    lim.drop_prepaid()  # e.g. leadership lost before the send
    assert await blocks(lim.acquire(1))
