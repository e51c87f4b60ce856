"""A live bot on a sandbox account, end to end through a real `python -m tradebot_runtime`
process against the simulator (the operator renders the ConfigMap and Leases; credentials
are the Secret's files, which validation allows for sandbox with a development Warning).

Checks: orders reach the simulator; with trading halted, the journal's positions and
realized/unrealized PnL equal the same accounting over the simulator's ledger, and the
Lease heartbeat and the bot's status carry the same realized PnL (unrealized consistent
with one mark near the simulator's price); deleting the bot with ``onDelete: flatten``
closes the position at the simulator (flat balance, no open orders) and the journal
still equals the ledger."""

from __future__ import annotations

import json
import signal
import time
from decimal import Decimal
from typing import Any

import pytest

from support.cluster import Cluster
from support.objects import eventually, get
from support.runtimes import (
    SIM_ACCOUNT,
    SYMBOL,
    Runtime,
    RuntimeEnv,
    compare_pnl,
    heartbeat_pnl_mismatches,
    heartbeat_quantum,
    http_json,
    lease,
    ledger,
    run_runtimes,
    sim_marks,
)
from support.servers import Postgres
from tradebot_contracts.heartbeat import Heartbeat, heartbeat_from_annotations
from tradebot_contracts.runtime_config import CONFIG_KEY, RuntimeConfig

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
STEP = Decimal("0.00001")  # BTCUSDT amount step at the simulator
LONG = Decimal("0.0002")  # a position worth closing (one order is ~0.00033 BTC)


def _heartbeat(cluster: Cluster, ns: str, name: str) -> Heartbeat | None:
    meta = lease(cluster, ns, name).get("metadata") or {}
    return heartbeat_from_annotations(meta.get("annotations"))


def _btc_balance(url: str) -> Decimal:
    return Decimal(ledger(url)["balances"].get("BTC", {}).get("total", "0"))


def test_sandbox_bot_pnl_matches_the_ledger_and_flatten_on_delete_closes_it(
    runtime_env: RuntimeEnv,
    sim_url: str,
) -> None:
    ns = runtime_env.cluster.namespace("rtsandbox")
    setup = runtime_env.setup_bot(
        ns, sim_url, account_spec={"mode": "sandbox"},
        bot_spec={"mode": "live", "onDelete": "flatten"},
    )  # fmt: skip
    config = RuntimeConfig.loads((runtime_env.tmp_path / CONFIG_KEY).read_text())
    assert (config.mode, config.account_mode, config.on_delete) == ("live", "sandbox", "flatten")
    with run_runtimes(setup, runtime_env.tmp_path, "sb-a") as runtimes:
        rt = runtimes["sb-a"]
        _scenario(runtime_env.cluster, ns, sim_url, setup.leases[0], rt,
                  runtime_env.postgres, setup.bot_id)  # fmt: skip


def _scenario(
    cluster: Cluster, ns: str, url: str, lease_name: str, rt: Runtime, postgres: Postgres,
    bot_id: str,
) -> None:  # fmt: skip
    def alive() -> bool:
        if rt.proc.poll() is not None:
            pytest.fail(f"runtime exited {rt.proc.returncode}:\n{rt.tail()}")
        return True

    def patch_state(state: str) -> None:
        cluster.kubectl("patch", "tradingbot", "rtbot", "-n", ns, "--type=merge",
                        "-p", json.dumps({"spec": {"tradingState": state}}))  # fmt: skip

    def heartbeat_state(state: str) -> bool:
        hb = _heartbeat(cluster, ns, lease_name)
        return alive() and hb is not None and hb.state == state

    # 1. the live bot trades on the sandbox account: buys and (realizing) sells
    def traded() -> bool:
        sides = [t["side"] for t in ledger(url)["trades"]]
        return alive() and sides.count("SELL") >= 2 and sides.count("BUY") >= 2

    eventually(traded, 90, "buys and sells at the simulator")

    # 2. halt while holding a position (the fast crossover is long half of the time)
    for _attempt in range(10):
        # the BTC balance, not the ledger's gross net_qty: Binance takes buy fees in BTC
        eventually(lambda: alive() and _btc_balance(url) >= LONG, 30, "a long position")
        patch_state("Halted")
        eventually(lambda: heartbeat_state("Halted"), 15, "runtime Halted")
        time.sleep(2.5)  # in-flight orders settle, the poll books the last fills
        if _btc_balance(url) >= LONG:
            break
        patch_state("Active")
        eventually(lambda: heartbeat_state("Trading"), 15, "runtime Trading")
    else:
        pytest.fail("never halted while holding a position")
    orders_halted = len(ledger(url)["orders"])

    # 3. journal == simulator ledger: positions, realized and unrealized PnL, fees
    def journal_matches() -> tuple[Any, Any] | None:
        problems, journal, sim = compare_pnl(url, postgres.dsn, bot_id)
        return (journal, sim) if not problems and alive() else None

    journal, sim = eventually(journal_matches, 20, "journal PnL == simulator ledger")
    position = journal.position(SYMBOL)
    assert position.amount == _btc_balance(url) >= LONG, position
    assert journal.realized_pnl() != 0, position
    fills = len(ledger(url)["trades"])
    print(f"sandbox: position {position.amount} @ {position.avg_entry_price}, realized "
          f"{journal.realized_pnl()}, fees {journal.fees()}, {fills} fills")  # fmt: skip

    # 4. the heartbeat and the bot's status report the same PnL
    def heartbeat_matches() -> Heartbeat | None:
        hb = _heartbeat(cluster, ns, lease_name)
        price = sim_marks(url, [SYMBOL])[SYMBOL]
        ok = hb is not None and not heartbeat_pnl_mismatches(hb, journal, price)
        return hb if ok else None

    hb = eventually(heartbeat_matches, 15, "heartbeat PnL == journal")
    assert hb.open_orders == 0 and hb.mismatches == 0, hb

    seen: list[Any] = []
    quantum = heartbeat_quantum(hb)  # the runtime publishes at the quote's precision

    def status_realized() -> bool:
        status = (get(cluster, ns, "tradingbot", "rtbot") or {}).get("status") or {}
        value = ((status.get("exchanges") or {}).get("sim") or {}).get("realizedPnl")
        seen[:] = [status]
        return value is not None and Decimal(value) == sim.realized_pnl().quantize(quantum)

    started = time.monotonic()
    deadline = started + 60
    while not status_realized():
        if time.monotonic() > deadline:
            pytest.fail(f"status realizedPnl != {sim.realized_pnl()}: {seen}")
        time.sleep(0.5)
    print(f"status realizedPnl matched after {time.monotonic() - started:.1f}s")
    assert len(ledger(url)["orders"]) == orders_halted, "orders placed while Halted"

    # 5. delete with onDelete flatten: the runtime sells the position, nothing stays open
    cluster.kubectl("delete", "tradingbot", "rtbot", "-n", ns, "--timeout=60s")
    summary = http_json(f"{url}/admin/ledger")
    assert summary["accounts"][SIM_ACCOUNT]["open_orders"] == 0
    book = ledger(url)
    assert book["duplicates"] == []
    flatten = [o for o in book["orders"][orders_halted:] if o["side"] == "SELL"]
    assert [(o["type"], o["status"]) for o in flatten] == [("MARKET", "FILLED")], flatten
    # flat at the exchange: what remains is below one amount step (not sellable)
    assert _btc_balance(url) < STEP, book["balances"]
    problems, journal, _ = compare_pnl(url, postgres.dsn, bot_id)
    assert problems == ""
    assert abs(journal.position(SYMBOL).amount) < STEP
    print(f"flatten: sold {flatten[0]['executedQty']}, realized {journal.realized_pnl()}")

    # 6. SIGTERM: the runtime exits 0
    rt.proc.send_signal(signal.SIGTERM)
    assert rt.proc.wait(timeout=15) == 0, rt.tail()
