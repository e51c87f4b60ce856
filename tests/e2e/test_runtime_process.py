"""Real runtime processes end to end (without the pod runner): the real operator renders
Leases and the ConfigMap for a bot on a simulator account; two `python -m tradebot_runtime`
processes with the Deployment's env trade through the simulator. Checks: orders reach
the simulator, the heartbeat turns the bot Running, kill -9 of the leader -> the standby
trades again (gap measured), no duplicates, journal fills == simulator fills, Halted
through the bot spec stops new orders, deleting the bot leaves no open orders, SIGTERM
exits 0."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from support.cluster import Cluster
from support.objects import eventually, get
from support.runtimes import (
    SIM_ACCOUNT,
    SYMBOL,
    BotSetup,
    Runtime,
    RuntimeEnv,
    compare_pnl,
    heartbeat_pnl_mismatches,
    http_json,
    journal_fills,
    lease,
    ledger,
    net_fill_qty,
    run_runtimes,
    sim_marks,
)
from support.servers import Postgres
from tradebot_contracts.heartbeat import heartbeat_from_annotations
from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_runtime.orders import WORKING_STATES

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_runtime_processes_trade_fail_over_halt_and_delete(
    runtime_env: RuntimeEnv,
    sim_url: str,
) -> None:
    ns = runtime_env.cluster.namespace("rt")
    setup = runtime_env.setup_bot(ns, sim_url)
    with run_runtimes(setup, runtime_env.tmp_path, "rt-a", "rt-b") as runtimes:
        _scenario(runtime_env.cluster, ns, sim_url, setup.leases, runtimes,
                  runtime_env.postgres, setup.bot_id)  # fmt: skip


def _scenario(
    cluster: Cluster,
    ns: str,
    sim_url: str,
    leases: list[str],
    runtimes: dict[str, Runtime],
    postgres: Postgres,
    bot_id: str,
) -> None:
    def holder() -> str | None:
        spec = lease(cluster, ns, leases[0]).get("spec") or {}
        value = spec.get("holderIdentity")
        return str(value) if value else None

    def alive() -> bool:
        for rt in runtimes.values():
            if rt.proc.poll() is not None and rt.proc.returncode != -9:
                pytest.fail(f"{rt.name} exited {rt.proc.returncode}:\n{rt.tail()}")
        return True

    # 1. orders reach the simulator
    eventually(lambda: alive() and len(ledger(sim_url)["orders"]) >= 2, 60, "orders at sim")

    # 2. the heartbeat turns the bot Running with leader/PnL/openOrders in status
    def running() -> dict[str, Any] | None:
        obj = get(cluster, ns, "tradingbot", "rtbot") or {}
        status = obj.get("status") or {}
        return status if status.get("phase") == "Running" else None

    status = eventually(running, 30, "bot Running")
    leader = holder()
    assert leader in runtimes
    text = json.dumps(status)
    assert f'"leader": "{leader}"' in text
    assert "realizedPnl" in text and "openOrders" in text

    # 3. kill -9 the leader: the standby takes over and trades again
    standby = next(n for n in runtimes if n != leader)
    before = len(ledger(sim_url)["orders"])
    killed_at = time.monotonic()
    runtimes[leader].proc.send_signal(signal.SIGKILL)
    takeover: float | None = None
    traded: float | None = None
    deadline = killed_at + 40
    while time.monotonic() < deadline and traded is None:
        alive()
        if takeover is None and holder() == standby:
            takeover = time.monotonic() - killed_at
        if takeover is not None and len(ledger(sim_url)["orders"]) > before:
            traded = time.monotonic() - killed_at
        time.sleep(0.1)
    print(f"failover: standby holds the lease after {takeover} s, first order after {traded} s")
    assert takeover is not None, runtimes[standby].tail()
    assert traded is not None, runtimes[standby].tail()
    duration = 6
    assert takeover <= duration + 1, f"takeover took {takeover:.2f}s"

    # 4. no duplicates; the journal's fills match the simulator's
    book = ledger(sim_url)
    assert book["duplicates"] == []
    time.sleep(2)  # let the leader's poll book the last fills

    def fills_match() -> bool:
        book = ledger(sim_url)
        rows = asyncio.run(journal_fills(postgres.dsn, bot_id))
        sim_net = Decimal(book["positions"].get("BTCUSDT", {}).get("net_qty", "0"))
        return len(rows) == len(book["trades"]) and net_fill_qty(rows) == sim_net

    eventually(fills_match, 15, "journal fills == simulator fills")

    # 5. Halted through the bot spec stops new orders
    cluster.kubectl("patch", "tradingbot", "rtbot", "-n", ns, "--type=merge",
                    "-p", json.dumps({"spec": {"tradingState": "Halted"}}))  # fmt: skip
    halted_at = time.monotonic()

    def halted() -> bool:
        hb = heartbeat_from_annotations(
            (lease(cluster, ns, leases[0]).get("metadata") or {}).get("annotations")
        )
        return hb is not None and hb.state == "Halted"

    eventually(halted, 15, "runtime Halted")
    print(f"halt: heartbeat Halted after {time.monotonic() - halted_at:.2f} s")
    count = len(ledger(sim_url)["orders"])
    time.sleep(5)
    assert len(ledger(sim_url)["orders"]) == count, "orders placed while Halted"

    # 5b. halted: positions and realized/unrealized PnL in the journal == the same
    # accounting over the simulator's ledger; the leader's heartbeat carries them
    def pnl_matches() -> bool:
        problems, journal, _ = compare_pnl(sim_url, postgres.dsn, bot_id)
        hb = heartbeat_from_annotations(
            (lease(cluster, ns, leases[0]).get("metadata") or {}).get("annotations")
        )
        price = sim_marks(sim_url, [SYMBOL])[SYMBOL]
        return not problems and hb is not None and not heartbeat_pnl_mismatches(hb, journal, price)

    eventually(pnl_matches, 20, "journal and heartbeat PnL == simulator ledger")
    journal = compare_pnl(sim_url, postgres.dsn, bot_id)[1]
    print(f"pnl: journal == simulator ledger: {journal.positions()}, "
          f"realized {journal.realized_pnl()}, fees {journal.fees()}")  # fmt: skip

    # 6. delete with onDelete cancelOrders: the runtime acknowledges, nothing stays open
    cluster.kubectl("delete", "tradingbot", "rtbot", "-n", ns, "--timeout=60s")
    summary = http_json(f"{sim_url}/admin/ledger")
    assert summary["accounts"][SIM_ACCOUNT]["open_orders"] == 0
    assert ledger(sim_url)["duplicates"] == []

    # 7. SIGTERM: the survivor exits 0
    survivor = runtimes[standby]
    survivor.proc.send_signal(signal.SIGTERM)
    assert survivor.proc.wait(timeout=15) == 0, survivor.tail()


# -- fencing: a paused leader that wakes up after a takeover ------------------------------

_WAITING_ON_ORDERS = """
SELECT count(*) FROM pg_locks
WHERE NOT granted AND relation = 'orders'::regclass AND mode = 'RowExclusiveLock'
"""


def _epochs_at_sim(sim_url: str, ids: ClientOrderIds) -> dict[int, int]:
    """Orders the simulator received, per epoch decoded from the client order id."""
    out: dict[int, int] = {}
    for order in ledger(sim_url)["orders"]:
        cid = order["clientOrderId"]
        if ids.owns(cid):
            epoch = ids.parse(cid).epoch
            out[epoch] = out.get(epoch, 0) + 1
    return out


def test_paused_leader_is_fenced_after_takeover(
    runtime_env: RuntimeEnv,
    sim_url: str,
) -> None:
    """SIGSTOP the leader while its intent INSERT is in flight, past its Lease; the standby
    takes over at a new epoch; SIGCONT: the old leader's journal write is refused
    (StaleEpochError, counted), it sends nothing, and positions still match.

    The in-flight write is made deterministic with a table lock held by the test
    (LOCK orders IN EXCLUSIVE MODE): the leader passes its is_leader() check, its fenced
    INSERT waits on the lock, the test pauses the process, waits for the takeover (the
    new epoch is written to shard_epochs, which the lock does not cover), then releases
    the lock and resumes the process."""
    ns = runtime_env.cluster.namespace("rtfence")
    setup = runtime_env.setup_bot(ns, sim_url)
    ids = ClientOrderIds("binance", setup.bot_id, "sim")
    with run_runtimes(setup, runtime_env.tmp_path, "rt-a", "rt-b") as runtimes:
        eventually(lambda: len(ledger(sim_url)["orders"]) >= 1, 60, "first order at sim")
        asyncio.run(_fencing(setup, sim_url, runtime_env.postgres, runtimes, ids))


async def _shard_epoch(conn: asyncpg.Connection, bot_id: str) -> tuple[int, str]:
    row = await conn.fetchrow(
        "SELECT epoch, holder FROM shard_epochs WHERE bot = $1 AND shard = 0", bot_id
    )
    assert row is not None
    return int(row["epoch"]), str(row["holder"])


async def _until(check: Callable[[], Any], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


async def _fencing(
    setup: BotSetup,
    sim_url: str,
    postgres: Postgres,
    runtimes: dict[str, Runtime],
    ids: ClientOrderIds,
) -> None:
    conn = await asyncpg.connect(postgres.dsn)
    try:
        old_epoch, leader = await _shard_epoch(conn, setup.bot_id)
        assert leader in runtimes
        standby = next(n for n in runtimes if n != leader)
        old = runtimes[leader]
        assert old.metric("tradebot_journal_fenced_total", shard="0") in (None, 0.0)

        # 1. hold the orders table until the leader's next intent INSERT waits on it. A
        # blocked write on `orders` is that INSERT when the shard has no working order
        # (otherwise it could be the ack UPDATE of an order already sent: try again).
        for _attempt in range(5):
            tx = conn.transaction()
            await tx.start()
            await conn.execute("LOCK TABLE orders IN EXCLUSIVE MODE")

            async def waiting() -> bool:
                return bool(await conn.fetchval(_WAITING_ON_ORDERS))

            try:
                await _until(waiting, 90, "the leader's next journal write to wait on the lock")
            except BaseException:
                await tx.rollback()
                raise
            working = await conn.fetchval(
                "SELECT count(*) FROM orders WHERE bot = $1 AND state = ANY($2::text[])",
                setup.bot_id, [s.value for s in WORKING_STATES],
            )  # fmt: skip
            if working == 0:
                break
            await tx.rollback()
            await asyncio.sleep(0.5)
        else:
            pytest.fail("never caught an intent INSERT in flight")
        sent_before = _epochs_at_sim(sim_url, ids).get(old_epoch, 0)
        journal_before = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE bot = $1 AND epoch = $2", setup.bot_id, old_epoch
        )
        assert sent_before == journal_before  # every journaled intent of the epoch was sent

        # 2. pause the leader past its Lease; the standby takes over at a new epoch
        old.proc.send_signal(signal.SIGSTOP)
        paused_at = time.monotonic()

        async def taken_over() -> tuple[int, str] | None:
            epoch, holder = await _shard_epoch(conn, setup.bot_id)
            return (epoch, holder) if epoch > old_epoch and holder == standby else None

        new_epoch, _ = await _until(taken_over, 20, "standby takes the shard at a new epoch")
        print(f"fencing: standby took epoch {new_epoch} {time.monotonic() - paused_at:.1f}s "
              f"after SIGSTOP (old epoch {old_epoch})")  # fmt: skip

        # 3. release the lock: the paused leader's INSERT runs now and matches no fence row
        await tx.commit()
        await asyncio.sleep(0.5)
        old.proc.send_signal(signal.SIGCONT)

        async def fenced() -> float | None:
            value = old.metric("tradebot_journal_fenced_total", shard="0")
            return value if value else None

        assert await _until(fenced, 15, "StaleEpochError counted by the old leader") >= 1
        assert "journal write refused" in old.tail()
        assert old.proc.poll() is None, "the fenced runtime crashed:\n" + old.tail()

        # 4. the new leader trades; the old epoch placed nothing after the pause
        async def new_orders() -> bool:
            return _epochs_at_sim(sim_url, ids).get(new_epoch, 0) >= 1

        await _until(new_orders, 30, "orders of the new epoch at the simulator")
        await asyncio.sleep(2)
        assert _epochs_at_sim(sim_url, ids).get(old_epoch, 0) == sent_before
        journal_after = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE bot = $1 AND epoch = $2", setup.bot_id, old_epoch
        )
        assert journal_after == journal_before, "a stale intent reached the journal"
        assert ledger(sim_url)["duplicates"] == []
        assert old.metric("tradebot_leader", shard="0") == 0.0

        # 5. positions still match: journal fills == simulator fills
        async def fills_match() -> bool:
            book = ledger(sim_url)
            rows = await conn.fetch("SELECT * FROM fills WHERE bot = $1", setup.bot_id)
            sim_net = Decimal(book["positions"].get("BTCUSDT", {}).get("net_qty", "0"))
            return len(rows) == len(book["trades"]) and net_fill_qty(rows) == sim_net

        await _until(fills_match, 15, "journal fills == simulator fills")
    finally:
        await conn.close()
