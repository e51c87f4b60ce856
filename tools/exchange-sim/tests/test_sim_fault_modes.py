"""Each fault mode of the simulator, seen through stock ccxt: which exception class the
client gets, and what the exchange did meanwhile (the ledger)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

from exchange_sim.config import Limits
from exchange_sim.testing import TEST_CONFIG, RunningSimulator, make_ccxt, running_simulator

pytestmark = pytest.mark.integration


async def place(binance: ccxt_async.binance, client_id: str = "f-acc-0-1-1") -> dict[str, Any]:
    order: dict[str, Any] = await binance.create_order(
        "BTC/USDT", "limit", "buy", 0.01, 50000, {"newClientOrderId": client_id}
    )
    return order


async def orders_in_ledger(sim: RunningSimulator) -> list[str]:
    return [o["clientOrderId"] for o in (await sim.admin.ledger("default"))["orders"]]


async def test_latency_delays_the_reply(
    simulator: RunningSimulator, binance: ccxt_async.binance
) -> None:
    await simulator.admin.add_fault(
        kind="latency", endpoint="GET /api/v3/ticker/24hr", delay_ms=300
    )
    start = time.monotonic()
    await binance.fetch_ticker("BTC/USDT")
    assert time.monotonic() - start >= 0.3
    start = time.monotonic()
    await binance.fetch_order_book("BTC/USDT")  # other endpoints are not delayed
    assert time.monotonic() - start < 0.3


async def test_latency_beyond_the_client_timeout_is_a_request_timeout(
    simulator: RunningSimulator, binance: ccxt_async.binance
) -> None:
    binance.timeout = 200
    await simulator.admin.add_fault(kind="latency", endpoint="GET /api/v3/time", delay_ms=600)
    with pytest.raises(ccxt_async.RequestTimeout):
        await binance.fetch_time()


async def test_accepted_then_timed_out_order_is_found_by_client_id(
    simulator: RunningSimulator, binance: ccxt_async.binance
) -> None:
    binance.timeout = 300
    await simulator.admin.add_fault(
        kind="timeout", endpoint="POST /api/v3/order", delay_ms=1000, count=1
    )
    with pytest.raises(ccxt_async.RequestTimeout):
        await place(binance, "f-acc-0-1-1")
    # the order exists: the runtime must look it up, never resend blindly
    found = await binance.fetch_order(None, "BTC/USDT", {"origClientOrderId": "f-acc-0-1-1"})
    assert found["status"] == "open" and found["clientOrderId"] == "f-acc-0-1-1"
    assert await orders_in_ledger(simulator) == ["f-acc-0-1-1"]
    # a blind resend is refused by the exchange and would not create a second order
    with pytest.raises(ccxt_async.InvalidOrder, match="Duplicate order sent"):
        await place(binance, "f-acc-0-1-1")
    assert await orders_in_ledger(simulator) == ["f-acc-0-1-1"]


@pytest.mark.parametrize(("when", "placed"), [("before", False), ("after", True)])
async def test_dropped_connection_is_exchange_not_available(
    simulator: RunningSimulator, binance: ccxt_async.binance, when: str, placed: bool
) -> None:
    await simulator.admin.add_fault(kind="drop", endpoint="POST /api/v3/order", when=when, count=1)
    with pytest.raises(ccxt_async.ExchangeNotAvailable):
        await place(binance)
    assert (await orders_in_ledger(simulator) == ["f-acc-0-1-1"]) is placed
    if not placed:
        with pytest.raises(ccxt_async.OrderNotFound):
            await binance.fetch_order(None, "BTC/USDT", {"origClientOrderId": "f-acc-0-1-1"})


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (500, ccxt_async.ExchangeNotAvailable),
        (502, ccxt_async.ExchangeNotAvailable),
        (503, ccxt_async.ExchangeNotAvailable),
        (504, ccxt_async.RequestTimeout),
    ],
)
async def test_http_5xx(
    simulator: RunningSimulator, binance: ccxt_async.binance, status: int, exception: type
) -> None:
    await simulator.admin.add_fault(kind="http_status", status=status, count=1)
    with pytest.raises(exception):
        await binance.fetch_ticker("BTC/USDT")
    assert (await binance.fetch_ticker("BTC/USDT"))["last"] > 0  # count=1: next call is fine


async def test_error_after_accept_hides_a_placed_order(
    simulator: RunningSimulator, binance: ccxt_async.binance
) -> None:
    await simulator.admin.add_fault(
        kind="error", code=-1007, endpoint="POST /api/v3/order", when="after", count=1
    )
    with pytest.raises(ccxt_async.RequestTimeout):
        await place(binance)
    assert await orders_in_ledger(simulator) == ["f-acc-0-1-1"]


async def test_maintenance_is_on_maintenance(
    simulator: RunningSimulator, binance: ccxt_async.binance
) -> None:
    fault = await simulator.admin.add_fault(kind="maintenance")
    with pytest.raises(ccxt_async.OnMaintenance):
        await binance.fetch_balance()
    with pytest.raises(ccxt_async.OnMaintenance):
        await place(binance)
    await simulator.admin.clear_fault(fault["id"])
    assert (await binance.fetch_balance())["USDT"]["free"] == 100000
    assert await orders_in_ledger(simulator) == []


@pytest.mark.parametrize(
    ("code", "exception"),
    [
        (-1021, ccxt_async.InvalidNonce),
        (-1022, ccxt_async.AuthenticationError),
        (-2015, ccxt_async.AuthenticationError),
        (-2010, ccxt_async.InsufficientFunds),  # the catalog message is the balance one
        (-2011, ccxt_async.OrderNotFound),
        (-1013, ccxt_async.BadRequest),
        (-1121, ccxt_async.BadSymbol),
        (-1007, ccxt_async.RequestTimeout),
        (-1003, ccxt_async.DDoSProtection),  # 429
        (-1015, ccxt_async.DDoSProtection),  # 429
    ],
)
async def test_injected_binance_errors(
    simulator: RunningSimulator, binance: ccxt_async.binance, code: int, exception: type
) -> None:
    await simulator.admin.add_fault(kind="error", code=code, endpoint="POST /api/v3/order")
    with pytest.raises(exception):
        await place(binance)
    assert await orders_in_ledger(simulator) == []
    rejections = (await simulator.admin.ledger("default"))["rejections"]
    assert [r["code"] for r in rejections] == [code]


async def test_injected_error_rate_is_seeded_and_partial(
    simulator: RunningSimulator, binance: ccxt_async.binance
) -> None:
    await simulator.admin.add_fault(kind="error", code=-1001, endpoint="GET /api/v3/time", rate=0.5)
    outcomes = []
    for _ in range(40):
        try:
            await binance.fetch_time()
            outcomes.append(True)
        except ccxt_async.OperationFailed:  # -1001: "Internal error; ... try again"
            outcomes.append(False)
    assert 8 < outcomes.count(False) < 32


async def test_ban_is_ddos_protection_with_retry_after(
    simulator: RunningSimulator, binance: ccxt_async.binance
) -> None:
    fault = await simulator.admin.add_fault(kind="ban", duration_s=30)
    with pytest.raises(ccxt_async.DDoSProtection, match="418"):
        await binance.fetch_balance()
    assert 0 < int(binance.last_response_headers["Retry-After"]) <= 30
    with pytest.raises(ccxt_async.DDoSProtection, match="418"):
        await binance.fetch_ticker("BTC/USDT")  # anonymous: counted against the IP
    summary = await simulator.admin.summary()
    assert summary["accounts"]["default"]["rate_limit_violations"] == 1
    assert summary["unattributed_rate_limit"]["ip:127.0.0.1"]["banned_418"] == 1
    await simulator.admin.clear_fault(fault["id"])
    assert (await binance.fetch_balance())["USDT"]["free"] == 100000


async def test_account_scoped_faults_spare_other_accounts(simulator: RunningSimulator) -> None:
    bob = await simulator.admin.request(
        "POST", "/admin/accounts", {"name": "bob", "balances": {"USDT": "1000"}}
    )
    await simulator.admin.add_fault(kind="error", code=-2015, account="default")
    alice_client = make_ccxt(ccxt_async.binance, simulator.url, simulator.account("default"))
    bob_client = make_ccxt(ccxt_async.binance, simulator.url, simulator.account("bob"))
    try:
        with pytest.raises(ccxt_async.AuthenticationError):
            await alice_client.fetch_balance()
        assert (await bob_client.fetch_balance())["USDT"]["free"] == 1000
        assert bob["api_key"] == simulator.account("bob").api_key
    finally:
        await alice_client.close()
        await bob_client.close()


async def test_clock_skew_is_invalid_nonce_until_the_client_resyncs(
    simulator: RunningSimulator, binance: ccxt_async.binance
) -> None:
    await simulator.admin.add_fault(kind="clock_skew", offset_ms=30_000)  # server 30 s ahead
    with pytest.raises(ccxt_async.InvalidNonce):
        await binance.fetch_balance()
    await binance.load_time_difference()
    assert abs(binance.options["timeDifference"] + 30_000) < 1000
    assert (await binance.fetch_balance())["USDT"]["free"] == 100000


async def test_exceeding_the_weight_limit_is_counted_then_banned() -> None:
    limits = Limits(weight_per_minute=30, violations_before_ban=2, ban_seconds=60)
    async with running_simulator(TEST_CONFIG, limits=limits) as sim:
        client = make_ccxt(ccxt_async.binance, sim.url, sim.account())
        try:
            await client.load_markets()  # exchangeInfo: weight 20 (anonymous, per IP)
            statuses = []
            for _ in range(6):
                try:
                    await client.fetch_balance()  # weight 20 on the account's key
                    statuses.append(200)
                except ccxt_async.DDoSProtection as exc:
                    statuses.append(418 if " 418 " in str(exc) else 429)
            assert statuses == [200, 429, 429, 418, 418, 418]
            assert client.last_response_headers["X-MBX-USED-WEIGHT-1M"] is not None
            rate = (await sim.admin.ledger("default"))["rate_limit"]
            assert rate == {"violations": 5, "weight_429": 2, "banned_418": 3, "orders_429": 0}
        finally:
            await client.close()


# --- WebSocket faults ---


async def _tick_forever(sim: RunningSimulator) -> None:
    while True:
        await asyncio.sleep(0.05)
        await sim.admin.tick()


async def test_dropped_market_socket_is_a_network_error_then_recovers(
    simulator: RunningSimulator, binance_pro: ccxt_pro.binance
) -> None:
    ticking = asyncio.create_task(_tick_forever(simulator))
    try:
        await asyncio.wait_for(binance_pro.watch_trades("BTC/USDT"), 5)
        fault = await simulator.admin.add_fault(kind="ws_drop", endpoint="ws:market")
        with pytest.raises(ccxt_pro.NetworkError):
            for _ in range(50):
                await asyncio.wait_for(binance_pro.watch_trades("BTC/USDT"), 5)
        await simulator.admin.clear_fault(fault["id"])
        trades = await asyncio.wait_for(binance_pro.watch_trades("BTC/USDT"), 5)
        assert trades and trades[-1]["symbol"] == "BTC/USDT"
    finally:
        ticking.cancel()


async def test_frozen_socket_goes_silent_and_misses_pongs(simulator: RunningSimulator) -> None:
    client = make_ccxt(
        ccxt_pro.binance, simulator.url, simulator.account(), streaming={"keepAlive": 300}
    )
    ticking = asyncio.create_task(_tick_forever(simulator))
    try:
        await client.load_markets()
        await asyncio.wait_for(client.watch_trades("BTC/USDT"), 5)
        fault = await simulator.admin.add_fault(kind="ws_freeze", endpoint="ws:market")
        start = time.monotonic()
        with pytest.raises(ccxt_pro.RequestTimeout, match="ping-pong"):
            for _ in range(100):
                await asyncio.wait_for(client.watch_trades("BTC/USDT"), 5)
        assert time.monotonic() - start < 3
        await simulator.admin.clear_fault(fault["id"])
        trades = await asyncio.wait_for(client.watch_trades("BTC/USDT"), 5)
        assert trades
    finally:
        ticking.cancel()
        await client.close()


async def test_dropped_user_stream_fails_watch_orders(
    simulator: RunningSimulator, binance_pro: ccxt_pro.binance
) -> None:
    watch = asyncio.create_task(binance_pro.watch_orders())
    await asyncio.sleep(0.3)
    await simulator.admin.add_fault(kind="ws_drop", endpoint="ws:user", account="default", count=1)
    with pytest.raises(ccxt_pro.NetworkError):
        await asyncio.wait_for(watch, 5)


async def test_weight_limit_fault_lowers_the_limit_and_escalates_to_a_ban() -> None:
    """weight_limit: while the rule is active the account's weight limit is lower (another
    tenant uses the budget); the 429s it causes count towards the 418 ban like any other,
    and clearing the rule restores the configured limit."""
    limits = Limits(weight_per_minute=6000, violations_before_ban=2, ban_seconds=60)
    async with running_simulator(TEST_CONFIG, limits=limits) as sim:
        client = make_ccxt(ccxt_async.binance, sim.url, sim.account())
        try:
            await client.load_markets()
            await client.fetch_balance()  # weight 20: far below 6000
            fault = await sim.admin.add_fault(kind="weight_limit", limit=30, account="default")
            statuses = []
            for _ in range(5):
                try:
                    await client.fetch_balance()
                    statuses.append(200)
                except ccxt_async.DDoSProtection as exc:
                    statuses.append(418 if " 418 " in str(exc) else 429)
                    assert int(client.last_response_headers["Retry-After"]) > 0
            assert statuses == [429, 429, 418, 418, 418]
            await sim.admin.clear_fault(fault["id"])
            await sim.admin.request("POST", "/admin/ratelimits/reset")
            assert (await client.fetch_balance())["USDT"]["free"] == 100000
            with pytest.raises(Exception, match="limit"):
                await sim.admin.add_fault(kind="weight_limit")
        finally:
            await client.close()


async def test_clock_skew_with_a_lifetime_outlives_the_requests_it_skews(
    simulator: RunningSimulator, binance: ccxt_async.binance
) -> None:
    """Rules expire by wall time: the skewed server clock must not expire the skew rule
    itself (or any other rule) early."""
    await simulator.admin.add_fault(kind="clock_skew", offset_ms=30_000, duration_s=30)
    drop = await simulator.admin.add_fault(kind="ws_drop", duration_s=20)
    for _ in range(3):  # every signed call is refused while the rule lives
        with pytest.raises(ccxt_async.InvalidNonce):
            await binance.fetch_balance()
    await binance.fetch_ticker("BTC/USDT")  # an anonymous call sees the skewed clock too
    kinds = {f["kind"] for f in await simulator.admin.faults()}
    assert kinds == {"clock_skew", "ws_drop"}, kinds
    await simulator.admin.clear_fault(drop["id"])
