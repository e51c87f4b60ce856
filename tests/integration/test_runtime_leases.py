"""Shard Leases against a real API server: one leader, takeover after expiry with a new
epoch, immediate takeover after release, optimistic concurrency, fair share."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from kubernetes_asyncio import client

from support.cluster import Cluster
from support.servers import Redis
from tradebot_contracts.heartbeat import HEARTBEAT_ANNOTATION
from tradebot_runtime.leases import LeaseManager
from tradebot_runtime.presence import RedisPresence

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lease_ns(cluster: Cluster) -> str:
    return cluster.namespace("rt-lease")


async def _leases(kube_api: client.ApiClient, ns: str, count: int, duration: int) -> list[str]:
    api = client.CoordinationV1Api(kube_api)
    prefix = f"l-{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}-{i}" for i in range(count)]
    for name in names:
        await api.create_namespaced_lease(
            ns,
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": name},
                "spec": {"leaseDurationSeconds": duration},
            },
        )
    return names


def _manager(
    kube_api: client.ApiClient, ns: str, names: list[str], who: str, duration: float, **kw: object
) -> LeaseManager:
    return LeaseManager(
        kube_api,
        ns,
        names,
        who,
        duration_s=duration,
        heartbeat=lambda shard, epoch: f'{{"pod":"{who}","epoch":{epoch}}}',
        **kw,  # type: ignore[arg-type]
    )


async def _holder(kube_api: client.ApiClient, ns: str, name: str) -> client.V1Lease:
    lease: client.V1Lease = await client.CoordinationV1Api(kube_api).read_namespaced_lease(name, ns)
    return lease


async def test_two_contenders_one_leader(kube_api: client.ApiClient, lease_ns: str) -> None:
    names = await _leases(kube_api, lease_ns, 1, 3)
    a = _manager(kube_api, lease_ns, names, "pod-a", 3)
    b = _manager(kube_api, lease_ns, names, "pod-b", 3)
    for _ in range(3):
        await asyncio.gather(a.step(), b.step())
        assert a.is_leader(0) != b.is_leader(0)
    leader = a if a.is_leader(0) else b
    lease = await _holder(kube_api, lease_ns, names[0])
    assert lease.spec.holder_identity == leader.identity
    assert lease.spec.lease_transitions == leader.epoch(0) == 1
    assert lease.metadata.annotations[HEARTBEAT_ANNOTATION] == (
        f'{{"pod":"{leader.identity}","epoch":1}}'
    )


async def test_takeover_after_expiry_with_next_epoch(
    kube_api: client.ApiClient, lease_ns: str
) -> None:
    names = await _leases(kube_api, lease_ns, 1, 2)
    a = _manager(kube_api, lease_ns, names, "pod-a", 2)
    b = _manager(kube_api, lease_ns, names, "pod-b", 2)
    await a.step()
    assert a.is_leader(0) and a.epoch(0) == 1
    await b.step()
    assert not b.is_leader(0)
    # a stops renewing: it fails closed on its own before b can take over
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.sleep(max(0.0, a.held[0].valid_until - a.clock()))
    assert not a.is_leader(0)
    assert loop.time() - start < 2.0
    while not b.is_leader(0):
        await b.step()
        await asyncio.sleep(0.1)
    assert loop.time() - start < 2.0 + 1.0
    assert b.epoch(0) == 2
    # the old holder notices on its next renewal and drops the shard
    lost: list[tuple[int, int]] = []

    async def on_lost(shard: int, epoch: int) -> None:
        lost.append((shard, epoch))

    a.on_lost = on_lost
    await a.step()
    assert lost == [(0, 1)] and not a.held and not a.is_leader(0)


async def test_release_allows_immediate_takeover(kube_api: client.ApiClient, lease_ns: str) -> None:
    names = await _leases(kube_api, lease_ns, 2, 30)
    a = _manager(kube_api, lease_ns, names, "pod-a", 30)
    b = _manager(kube_api, lease_ns, names, "pod-b", 30)
    await a.step()
    assert a.leader_shards() == [0, 1]
    await a.stop()
    assert not a.is_leader(0)
    lease = await _holder(kube_api, lease_ns, names[0])
    assert lease.spec.holder_identity is None
    await b.step()  # lease duration is 30 s: only the release makes this possible
    assert b.leader_shards() == [0, 1]
    assert b.epoch(0) == 2 and b.epoch(1) == 2


async def test_stale_resource_version_never_gives_two_leaders(
    kube_api: client.ApiClient, lease_ns: str
) -> None:
    names = await _leases(kube_api, lease_ns, 1, 30)
    a = _manager(kube_api, lease_ns, names, "pod-a", 30)
    b = _manager(kube_api, lease_ns, names, "pod-b", 30)
    snapshot = await _holder(kube_api, lease_ns, names[0])
    # both try to acquire from the same (soon stale) read
    await asyncio.gather(a._acquire(0, snapshot), b._acquire(0, snapshot))
    assert [a.is_leader(0), b.is_leader(0)].count(True) == 1
    await a._acquire(0, snapshot)  # a third attempt with the stale version fails too
    await b._acquire(0, snapshot)
    assert [a.is_leader(0), b.is_leader(0)].count(True) == 1
    lease = await _holder(kube_api, lease_ns, names[0])
    assert lease.spec.lease_transitions == 1


@pytest.fixture
async def redis_client(redis_server: Redis) -> AsyncIterator[redis.Redis]:
    r = redis.Redis.from_url(redis_server.url)
    try:
        yield r
    finally:
        await r.aclose()


async def test_fair_share_releases_surplus(
    kube_api: client.ApiClient, lease_ns: str, redis_client: redis.Redis
) -> None:
    names = await _leases(kube_api, lease_ns, 2, 30)
    key = f"tradebot:presence:test:{uuid.uuid4().hex[:6]}"
    released: list[int] = []

    async def before_release(shard: int, epoch: int) -> None:
        released.append(shard)

    a = _manager(
        kube_api,
        lease_ns,
        names,
        "pod-a",
        30,
        presence=RedisPresence(redis_client, key, "pod-a", 30),
        before_release=before_release,
    )
    b = _manager(
        kube_api,
        lease_ns,
        names,
        "pod-b",
        30,
        presence=RedisPresence(redis_client, key, "pod-b", 30),
    )
    await a.step()
    assert a.leader_shards() == [0, 1]
    await b.step()  # b announces itself; nothing free yet
    assert b.leader_shards() == []
    await a.step()  # a sees two pods: share 1, releases its highest shard
    assert released == [1] and a.leader_shards() == [0]
    await b.step()
    assert b.leader_shards() == [1]
    await asyncio.gather(a.step(), b.step())
    assert a.leader_shards() == [0] and b.leader_shards() == [1]


async def test_run_takes_over_a_release_at_once_and_an_expiry_on_time(
    kube_api: client.ApiClient, lease_ns: str
) -> None:
    """`run` watches the Leases: a release is taken over in well under one renew interval
    (10 s here), a dead holder's Lease right after renewTime + duration."""
    took_b, took_d = asyncio.Event(), asyncio.Event()

    async def b_acquired(shard: int, epoch: int) -> None:
        took_b.set()

    async def d_acquired(shard: int, epoch: int) -> None:
        took_d.set()

    names = await _leases(kube_api, lease_ns, 1, 30)
    a = _manager(kube_api, lease_ns, names, "pod-a", 30)
    b = _manager(kube_api, lease_ns, names, "pod-b", 30, on_acquired=b_acquired)
    await a.step()
    assert a.is_leader(0)
    standby = asyncio.create_task(b.run())
    try:
        await asyncio.sleep(1.0)  # b's first round and its watch are up
        assert not b.is_leader(0)
        released = asyncio.get_running_loop().time()
        await a.stop()
        await asyncio.wait_for(took_b.wait(), 5)
        took = asyncio.get_running_loop().time() - released
        assert took < 1.0, f"release taken over after {took:.2f}s"
        assert b.is_leader(0) and b.epoch(0) == 2
    finally:
        standby.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await standby

    names = await _leases(kube_api, lease_ns, 1, 3)
    c = _manager(kube_api, lease_ns, names, "pod-c", 3)
    d = _manager(kube_api, lease_ns, names, "pod-d", 3, on_acquired=d_acquired)
    await c.step()  # c holds the Lease and then dies (never renews)
    lease = await _holder(kube_api, lease_ns, names[0])
    expires = lease.spec.renew_time.timestamp() + 3
    standby = asyncio.create_task(d.run())
    try:
        await asyncio.wait_for(took_d.wait(), 10)
        late = time.time() - expires
        assert -0.05 < late < 0.75, f"expired Lease taken over {late:+.2f}s after expiry"
        assert d.is_leader(0) and d.epoch(0) == 2
    finally:
        standby.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await standby
