"""Smoke tests: real PostgreSQL and Redis started by the session fixtures."""

from __future__ import annotations

from decimal import Decimal

import asyncpg
import pytest
import redis.asyncio as aioredis

from support.servers import Postgres, Redis

pytestmark = pytest.mark.integration


async def test_postgres_roundtrip_keeps_exact_decimals(postgres: Postgres) -> None:
    conn = await asyncpg.connect(postgres.dsn)
    try:
        await conn.execute("CREATE TEMP TABLE t (id text PRIMARY KEY, amount numeric NOT NULL)")
        await conn.execute("INSERT INTO t VALUES ($1, $2)", "a", Decimal("0.10000001"))
        assert await conn.fetchval("SELECT amount FROM t WHERE id = 'a'") == Decimal("0.10000001")
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute("INSERT INTO t VALUES ($1, $2)", "a", Decimal("1"))
    finally:
        await conn.close()


async def test_redis_roundtrip_and_lua(redis_server: Redis) -> None:
    r = aioredis.from_url(redis_server.url)
    try:
        await r.set("k", "v")
        assert await r.get("k") == b"v"
        # Scripts run atomically: the rate-limit bucket depends on this.
        incr = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
        assert await r.eval(incr, 1, "n", 5) == 5
        assert await r.eval(incr, 1, "n", 2) == 7
    finally:
        await r.aclose()
