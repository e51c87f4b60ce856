"""Which pods of one bot x account are alive: a Redis sorted set of (identity -> expiry).

Used by the LeaseManager for the fair share (``ceil(shards / live pods)``). A standby
holds no Lease, so the Leases alone cannot show it; a pod beats here every renew
interval and is counted until ``ttl_s`` after its last beat. Advisory only: when Redis
is unreachable the LeaseManager counts the Lease holders instead (a standby then waits
for an expired or released Lease, which is always safe).
"""

from __future__ import annotations

import time

import redis.asyncio as redis

from tradebot_contracts.names import presence_key

__all__ = ["RedisPresence", "presence_key"]


class RedisPresence:
    def __init__(self, client: redis.Redis, key: str, identity: str, ttl_s: float) -> None:
        self.client = client
        self.key = key
        self.identity = identity
        self.ttl_s = ttl_s

    async def beat(self) -> None:
        now = time.time()
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zadd(self.key, {self.identity: now + self.ttl_s})
            pipe.zremrangebyscore(self.key, "-inf", now)
            pipe.expire(self.key, max(int(self.ttl_s * 10), 60))
            await pipe.execute()

    async def live_pods(self) -> int | None:
        count = await self.client.zcount(self.key, time.time(), "+inf")
        return int(count)

    async def leave(self) -> None:
        await self.client.zrem(self.key, self.identity)
