"""The simulator's wire protocol seen without ccxt: REST errors, statuses and headers,
the admin API, raw market streams, the WebSocket API and listenKey user streams."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from exchange_sim.auth import sign, ws_payload
from exchange_sim.config import Limits
from exchange_sim.testing import TEST_CONFIG, RawResponse, RunningSimulator, running_simulator

pytestmark = pytest.mark.integration

BTC = {"symbol": "BTCUSDT"}
LIMIT_BUY = {
    **BTC,
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01",
    "price": "50000",
}


async def test_weight_header_counts_each_call(simulator: RunningSimulator) -> None:
    raw = simulator.raw()
    first = await raw.call(
        "GET", "/api/v3/depth", BTC, headers={"X-MBX-APIKEY": simulator.account().api_key}
    )
    second = await raw.call("GET", "/api/v3/account", signed=True)
    assert first.headers["X-MBX-USED-WEIGHT-1M"] == "5"
    assert second.headers["X-MBX-USED-WEIGHT-1M"] == "25"


@pytest.mark.parametrize(
    ("headers", "params", "status", "code"),
    [
        ({}, {}, 401, -2014),
        ({"X-MBX-APIKEY": "unknownkey"}, {}, 401, -2015),
        ({"X-MBX-APIKEY": "bad key!"}, {}, 401, -2014),
    ],
)
async def test_api_key_errors(
    simulator: RunningSimulator,
    headers: dict[str, str],
    params: dict[str, str],
    status: int,
    code: int,
) -> None:
    resp = await simulator.raw(anonymous=True).call(
        "GET", "/api/v3/account", params, headers=headers
    )
    assert (resp.status, resp.body["code"]) == (status, code)


async def test_signature_and_timestamp_errors(simulator: RunningSimulator) -> None:
    raw = simulator.raw()
    key = {"X-MBX-APIKEY": simulator.account().api_key}
    now = int(time.time() * 1000)
    forged = await raw.call(
        "GET", "/api/v3/account", {"timestamp": now, "signature": "00" * 32}, headers=key
    )
    unsigned = await raw.call("GET", "/api/v3/account", {"timestamp": now}, headers=key)
    stale = await raw.call("GET", "/api/v3/account", signed=True, timestamp=now - 6000)
    ahead = await raw.call("GET", "/api/v3/account", signed=True, timestamp=now + 5000)
    wide = await raw.call("GET", "/api/v3/account", {"recvWindow": 70000}, signed=True)
    assert [(r.status, r.body["code"]) for r in (forged, unsigned, stale, ahead, wide)] == [
        (400, -1022),
        (400, -1102),
        (400, -1021),
        (400, -1021),
        (400, -1131),
    ]
    assert ahead.body["msg"] == "Timestamp for this request was 1000ms ahead of the server's time."


async def test_order_errors_and_response_types(simulator: RunningSimulator) -> None:
    raw = simulator.raw()
    ack = await raw.call(
        "POST", "/api/v3/order", {**LIMIT_BUY, "newOrderRespType": "ACK"}, signed=True
    )
    result = await raw.call(
        "POST", "/api/v3/order", {**LIMIT_BUY, "newOrderRespType": "RESULT"}, signed=True
    )
    full = await raw.call("POST", "/api/v3/order", LIMIT_BUY, signed=True)
    assert set(ack.body) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    assert "fills" not in result.body and result.body["status"] == "NEW"
    assert full.body["fills"] == [] and full.headers["X-MBX-ORDER-COUNT-10S"] == "3"
    assert full.headers["X-MBX-ORDER-COUNT-1D"] == "3"
    cases = {
        "bad symbol": ("POST", "/api/v3/order", {**LIMIT_BUY, "symbol": "NOPE"}),
        "lot size": ("POST", "/api/v3/order", {**LIMIT_BUY, "quantity": "0.000001"}),
        "bad number": ("POST", "/api/v3/order", {**LIMIT_BUY, "quantity": "1e-3"}),
        "unknown order": ("GET", "/api/v3/order", {**BTC, "orderId": "999"}),
        "cancel unknown": ("DELETE", "/api/v3/order", {**BTC, "orderId": "999"}),
        "no id": ("GET", "/api/v3/order", BTC),
    }
    got: dict[str, RawResponse] = {
        name: await raw.call(m, p, q, signed=True) for name, (m, p, q) in cases.items()
    }
    assert {name: (r.status, r.body["code"]) for name, r in got.items()} == {
        "bad symbol": (400, -1121),
        "lot size": (400, -1013),
        "bad number": (400, -1100),
        "unknown order": (400, -2013),
        "cancel unknown": (400, -2011),
        "no id": (400, -1102),
    }
    assert got["lot size"].body["msg"] == "Filter failure: LOT_SIZE"
    interval = await raw.call("GET", "/api/v3/klines", {**BTC, "interval": "2m"})
    assert (interval.status, interval.body["code"]) == (400, -1120)


async def test_order_count_limit_is_429_with_retry_after() -> None:
    async with running_simulator(TEST_CONFIG, limits=Limits(orders_per_10s=2)) as sim:
        raw = sim.raw()
        codes = [
            (await raw.call("POST", "/api/v3/order", LIMIT_BUY, signed=True)) for _ in range(3)
        ]
        assert [r.status for r in codes] == [200, 200, 429]
        assert codes[2].body["code"] == -1015 and 1 <= int(codes[2].headers["Retry-After"]) <= 10
        assert codes[2].headers["X-MBX-ORDER-COUNT-10S"] == "2"
        assert (await sim.admin.ledger("default"))["rate_limit"]["orders_429"] == 1


async def test_weight_429_then_418_with_retry_after() -> None:
    limits = Limits(weight_per_minute=10, violations_before_ban=1, ban_seconds=90)
    async with running_simulator(TEST_CONFIG, limits=limits) as sim:
        raw = sim.raw(anonymous=True)
        replies = [await raw.call("GET", "/api/v3/depth", BTC) for _ in range(4)]
        assert [r.status for r in replies] == [200, 200, 429, 418]
        assert replies[2].body["code"] == replies[3].body["code"] == -1003
        assert int(replies[2].headers["Retry-After"]) <= 60
        assert 89 <= int(replies[3].headers["Retry-After"]) <= 90
        assert (
            replies[3].body["msg"].startswith("Way too much request weight used; IP banned until")
        )
        limits_now = await sim.admin.request("GET", "/admin/ratelimits")
        assert limits_now["ip:127.0.0.1"]["banned_until"] is not None
        await sim.admin.request("POST", "/admin/ratelimits/reset")
        assert (await raw.call("GET", "/api/v3/depth", BTC)).status == 200


async def test_duplicates_are_rejected_and_epoch_resends_are_reported(
    simulator: RunningSimulator,
) -> None:
    raw = simulator.raw()
    first = await raw.call(
        "POST", "/api/v3/order", {**LIMIT_BUY, "newClientOrderId": "bot-a-0-1-5"}, signed=True
    )
    again = await raw.call(
        "POST", "/api/v3/order", {**LIMIT_BUY, "newClientOrderId": "bot-a-0-1-5"}, signed=True
    )
    epoch2 = await raw.call(
        "POST", "/api/v3/order", {**LIMIT_BUY, "newClientOrderId": "bot-a-0-2-5"}, signed=True
    )
    assert first.status == epoch2.status == 200
    assert (again.status, again.body) == (400, {"code": -2010, "msg": "Duplicate order sent."})
    report = await simulator.admin.ledger("default")
    assert [d["client_order_ids"] for d in report["duplicates"]] == [["bot-a-0-1-5", "bot-a-0-2-5"]]
    assert [r["clientOrderId"] for r in report["rejections"]] == ["bot-a-0-1-5"]
    summary = (await simulator.admin.summary())["accounts"]["default"]
    assert (summary["orders"], summary["duplicate_intents"], summary["rejections"]) == (2, 1, 1)
    # keep the epoch in the intent: no duplicates any more
    config = await simulator.admin.request("PUT", "/admin/duplicates", {"ignore_groups": []})
    assert config["ignore_groups"] == []
    assert (await simulator.admin.request("GET", "/admin/duplicates"))["accounts"]["default"] == []


async def test_admin_api(simulator: RunningSimulator) -> None:
    admin = simulator.admin
    state = await admin.request("GET", "/admin/state")
    assert state["url"] == simulator.url and state["symbols"][0] == "BTCUSDT"
    fault = await admin.add_fault(kind="latency", delay_ms=1, id="slow")
    assert fault["id"] == "slow" and [f["id"] for f in await admin.faults()] == ["slow"]
    await admin.clear_fault("slow")
    assert await admin.faults() == []
    async with simulator.session.delete(simulator.url + "/admin/faults/slow") as resp:
        assert resp.status == 404
    async with simulator.session.post(simulator.url + "/admin/faults", json={"kind": "x"}) as resp:
        assert resp.status == 400 and "kind must be" in (await resp.json())["error"]
    async with simulator.session.post(simulator.url + "/admin/faults", data="{") as resp:
        assert resp.status == 400

    created = await admin.request(
        "POST", "/admin/accounts", {"name": "carol", "balances": {"ETH": "2"}}
    )
    assert len(created["api_key"]) == 64
    await admin.set_balances("carol", {"USDT": "123.45"})
    balances = (await admin.positions("carol"))["balances"]
    assert balances["USDT"]["free"] == "123.45" and balances["ETH"]["total"] == "2"

    ticks = state["ticks"]
    await admin.tick(3)
    assert (await admin.request("GET", "/admin/state"))["ticks"] == ticks + 3
    await admin.set_price("ETHUSDT", "2500.5")
    assert (await admin.prices())["ETHUSDT"] == Decimal("2500.5")

    unsupported = await simulator.raw(anonymous=True).call("GET", "/sapi/v1/capital/config/getall")
    assert unsupported.status == 404
    assert (await admin.summary())["unsupported_requests"] == ["GET /sapi/v1/capital/config/getall"]
    simulator.sim.ledger.unsupported.clear()  # deliberate: keep the fixture's guard green


async def test_positions_follow_fills(simulator: RunningSimulator) -> None:
    raw = simulator.raw()
    await raw.call(
        "POST",
        "/api/v3/order",
        {**BTC, "side": "BUY", "type": "MARKET", "quantity": "0.1"},
        signed=True,
    )
    await raw.call(
        "POST",
        "/api/v3/order",
        {**BTC, "side": "SELL", "type": "MARKET", "quantity": "0.04"},
        signed=True,
    )
    pos = (await simulator.admin.positions("default"))["positions"]["BTCUSDT"]
    assert Decimal(pos["net_qty"]) == Decimal("0.06")
    assert (pos["fills"], pos["bought_qty"], pos["sold_qty"]) == (2, "0.1", "0.04")


# --- raw WebSocket ---


async def recv_json(ws: aiohttp.ClientWebSocketResponse) -> Any:
    return json.loads((await asyncio.wait_for(ws.receive(), 3)).data)


async def test_combined_stream_envelope_and_subscriptions(simulator: RunningSimulator) -> None:
    url = simulator.url.replace("http", "ws") + "/stream?streams=btcusdt@trade/btcusdt@kline_1m"
    async with simulator.session.ws_connect(url) as ws:
        await simulator.admin.tick()
        got: dict[str, Any] = {}
        while len(got) < 2:
            msg = await recv_json(ws)
            got[msg["stream"]] = msg["data"]
        assert got["btcusdt@trade"]["e"] == "trade" and got["btcusdt@trade"]["s"] == "BTCUSDT"
        kline = got["btcusdt@kline_1m"]["k"]
        assert kline["i"] == "1m" and kline["t"] % 60_000 == 0
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 7})
        assert await recv_json(ws) == {"result": ["btcusdt@kline_1m", "btcusdt@trade"], "id": 7}
        await ws.send_json({"method": "SUBSCRIBE", "params": ["nope@trade"], "id": 8})
        error = await recv_json(ws)
        assert error["id"] == 8 and error["error"]["code"] == 2


async def test_depth_diff_stream_continues_the_rest_snapshot(simulator: RunningSimulator) -> None:
    url = simulator.url.replace("http", "ws") + "/ws"
    async with simulator.session.ws_connect(url) as ws:
        await ws.send_json(
            {"method": "SUBSCRIBE", "params": ["btcusdt@depth@100ms", "btcusdt@depth5"], "id": 1}
        )
        assert await recv_json(ws) == {"result": None, "id": 1}
        snapshot = (
            await simulator.raw(anonymous=True).call(
                "GET", "/api/v3/depth", {**BTC, "limit": "1000"}
            )
        ).body
        await simulator.admin.tick()
        book = {"bids": dict(snapshot["bids"]), "asks": dict(snapshot["asks"])}
        diff = partial = None
        while diff is None or partial is None:
            msg = await recv_json(ws)
            if msg.get("e") == "depthUpdate":
                diff = msg
            else:
                partial = msg
        assert diff["U"] <= snapshot["lastUpdateId"] + 1 <= diff["u"]
        for side, key in (("bids", "b"), ("asks", "a")):
            for price, qty in diff[key]:
                if Decimal(qty) == 0:
                    book[side].pop(price, None)
                else:
                    book[side][price] = qty
        now = (
            await simulator.raw(anonymous=True).call(
                "GET", "/api/v3/depth", {**BTC, "limit": "1000"}
            )
        ).body
        assert book == {"bids": dict(now["bids"]), "asks": dict(now["asks"])}
        assert len(partial["bids"]) == 5 and partial["lastUpdateId"] == now["lastUpdateId"]


async def test_ws_api_user_stream_and_errors(simulator: RunningSimulator) -> None:
    account = simulator.account()
    url = simulator.url.replace("http", "ws") + "/ws-api/v3"

    def params(secret: str, **extra: Any) -> dict[str, Any]:
        p: dict[str, Any] = {
            "apiKey": account.api_key,
            "timestamp": int(time.time() * 1000),
            **extra,
        }
        p["signature"] = sign(ws_payload(p), secret)
        return p

    async with simulator.session.ws_connect(url) as ws:
        await ws.send_json(
            {"id": "a", "method": "userDataStream.subscribe.signature", "params": params("wrong")}
        )
        bad = await recv_json(ws)
        assert (bad["status"], bad["error"]["code"]) == (400, -1022)
        await ws.send_json(
            {
                "id": "b",
                "method": "userDataStream.subscribe.signature",
                "params": params(account.secret),
            }
        )
        ok = await recv_json(ws)
        assert ok["status"] == 200 and ok["result"]["subscriptionId"] >= 0
        await simulator.raw().call(
            "POST", "/api/v3/order", {**LIMIT_BUY, "newClientOrderId": "u-1"}, signed=True
        )
        report = await recv_json(ws)
        position = await recv_json(ws)
        assert report["subscriptionId"] == ok["result"]["subscriptionId"]
        event = report["event"]
        assert (event["e"], event["x"], event["X"], event["c"]) == (
            "executionReport",
            "NEW",
            "NEW",
            "u-1",
        )
        assert position["event"]["e"] == "outboundAccountPosition"
        assert {b["a"]: b["l"] for b in position["event"]["B"]}["USDT"] == "500.00000000"


async def test_legacy_listen_key_stream(simulator: RunningSimulator) -> None:
    raw = simulator.raw()
    key = (await raw.call("POST", "/api/v3/userDataStream")).body["listenKey"]
    async with simulator.session.ws_connect(
        simulator.url.replace("http", "ws") + "/ws/" + key
    ) as ws:
        await raw.call(
            "POST",
            "/api/v3/order",
            {**BTC, "side": "BUY", "type": "MARKET", "quantity": "0.01"},
            signed=True,
        )
        events = [await recv_json(ws) for _ in range(3)]
        assert [e["e"] for e in events] == [
            "executionReport",
            "executionReport",
            "outboundAccountPosition",
        ]
        assert [e["x"] for e in events[:2]] == ["NEW", "TRADE"]
    assert (await raw.call("PUT", "/api/v3/userDataStream", {"listenKey": key})).body == {}
    assert (await raw.call("DELETE", "/api/v3/userDataStream", {"listenKey": key})).body == {}
    gone = await raw.call("PUT", "/api/v3/userDataStream", {"listenKey": key})
    assert gone.body["code"] == -1125
