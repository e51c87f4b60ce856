"""Invariants the chaos tests check against the simulator's ledger and the journal, and
small helpers to run real runtime processes against dedicated (destructible) servers.

Invariants (money):
* no duplicate order intents at the simulator (the same intent under two epochs);
* every order the simulator received is in the journal (nothing sent without an intent
  row), and the journal never wrote off an order the exchange has (abandoned/rejected);
* 0 lost fills: the journal's fills are exactly the simulator's trades, so the positions
  built from them equal the ledger's;
* epochs never interleave: once an order of epoch e+1 reached the exchange, no order of
  an older epoch follows (no two leaders ever traded one shard)."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from decimal import Decimal
from typing import Any

import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from support.runtimes import Runtime, ledger
from tradebot_contracts.order_ids import ClientOrderIds

WRITTEN_OFF = frozenset({"abandoned", "rejected"})
SIM_TERMINAL = frozenset({"FILLED", "CANCELED", "EXPIRED", "REJECTED", "EXPIRED_IN_MATCH"})


async def _journal(dsn: str, bot_id: str) -> tuple[dict[str, asyncpg.Record], list[Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        orders = await conn.fetch(
            "SELECT client_order_id, epoch, state, filled FROM orders WHERE bot = $1", bot_id
        )
        fills = await conn.fetch("SELECT trade_id, side, amount FROM fills WHERE bot = $1", bot_id)
        return {r["client_order_id"]: r for r in orders}, list(fills)
    finally:
        await conn.close()


def journal_snapshot(dsn: str, bot_id: str) -> tuple[dict[str, asyncpg.Record], list[Any]]:
    return asyncio.run(_journal(dsn, bot_id))


def problems(sim_url: str, dsn: str, bot_id: str, *, settled: bool = True) -> list[str]:
    """What violates the invariants right now (empty: all hold). ``settled``: also require
    the fills and final order states to have been synced (after the faults stopped)."""
    book = ledger(sim_url)
    orders, fills = journal_snapshot(dsn, bot_id)
    out: list[str] = []
    if book["duplicates"]:
        out.append(f"duplicate intents at the simulator: {book['duplicates']}")
    for order in book["orders"]:
        cid = order["clientOrderId"]
        row = orders.get(cid)
        if row is None:
            out.append(f"order {cid} at the simulator has no journal entry")
            continue
        if row["state"] in WRITTEN_OFF:
            out.append(f"order {cid} is {order['status']} at the simulator, {row['state']} in "
                       "the journal")  # fmt: skip
        elif (
            settled
            and order["status"] in SIM_TERMINAL
            and (Decimal(row["filled"]) != Decimal(order["executedQty"]))
        ):
            out.append(f"order {cid}: filled {row['filled']} in the journal, "
                       f"{order['executedQty']} at the simulator")  # fmt: skip
    if settled:
        trade_ids = {str(t["id"]) for t in book["trades"]}
        journal_ids = {str(f["trade_id"]) for f in fills}
        if trade_ids != journal_ids:
            missing, unknown = len(trade_ids - journal_ids), len(journal_ids - trade_ids)
            out.append(f"fills: {missing} simulator trades missing in the journal, {unknown} "
                       "unknown to the simulator")  # fmt: skip
        net = sum((f["amount"] if f["side"] == "buy" else -f["amount"] for f in fills), Decimal(0))
        sim_net = Decimal(book["positions"].get("BTCUSDT", {}).get("net_qty", "0"))
        if net != sim_net:
            out.append(f"position: journal {net}, simulator {sim_net}")
    return out


def assert_invariants(sim_url: str, dsn: str, bot_id: str, within: float = 40) -> None:
    """Wait (up to ``within`` s) until every invariant holds: fills are synced by the
    leader's poll loop after the faults end."""
    deadline = time.monotonic() + within
    found = problems(sim_url, dsn, bot_id)
    while found and time.monotonic() < deadline:
        time.sleep(1)
        found = problems(sim_url, dsn, bot_id)
    assert not found, "\n".join(found[:20])


def epochs_in_exchange_order(sim_url: str, ids: ClientOrderIds) -> list[tuple[int, int]]:
    """(exchange order id, epoch) of our orders, in the order the exchange accepted them."""
    out = []
    for order in ledger(sim_url)["orders"]:
        cid = order["clientOrderId"]
        if ids.owns(cid):
            out.append((int(order["orderId"]), ids.parse(cid).epoch))
    return sorted(out)


def interleaved_epochs(sim_url: str, ids: ClientOrderIds) -> list[str]:
    """Orders of an older epoch accepted after an order of a newer one."""
    newest = -1
    out = []
    for order_id, epoch in epochs_in_exchange_order(sim_url, ids):
        if epoch < newest:
            out.append(f"order {order_id} of epoch {epoch} after epoch {newest}")
        newest = max(newest, epoch)
    return out


def alive(runtimes: dict[str, Runtime]) -> None:
    for rt in runtimes.values():
        code = rt.proc.poll()
        assert code is None, f"{rt.name} exited with {code}:\n{rt.tail()}"


def metric(runtime: Runtime, name: str, **labels: str) -> float:
    value = runtime.metric(name, **labels)
    return 0.0 if value is None else value


def metric_sum(runtime: Runtime, name: str, **labels: str) -> float:
    """Sum of every sample of ``name`` whose labels include ``labels``."""
    with urllib.request.urlopen(runtime.metrics_url, timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += float(sample.value)
    return total


def wait_for(check: Any, timeout: float, what: str, runtimes: dict[str, Runtime]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive(runtimes)
        value = check()
        if value:
            return value
        time.sleep(0.3)
    tails = "\n".join(f"--- {rt.name}\n{rt.tail()}" for rt in runtimes.values())
    raise AssertionError(f"timed out waiting for {what}\n{tails}")
