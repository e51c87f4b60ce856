"""Benchmark of the exchange simulator: sustained signed REST order throughput and
WebSocket market-data fan-out, with the simulator pinned to one CPU core.

    .venv/bin/python tests/bench/bench_simulator.py [--duration 10] [--clients 20]

The simulator runs as a child process (``python -m exchange_sim``) pinned to core 0; the
load generator runs here, pinned to core 1, so that the client's own CPU use does not
count against the server. Order and weight limits are lifted for the run: this measures
the simulator, not Binance's published limits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

from exchange_sim.auth import sign

REPO = Path(__file__).resolve().parents[2]


def start_simulator(
    accounts: int, tick_interval: float
) -> tuple[subprocess.Popen[str], str, list[dict[str, str]]]:
    spec = [
        {"name": f"pod{i}", "balances": {"USDT": "100000000", "BTC": "1000"}}
        for i in range(accounts)
    ]
    path = Path(tempfile.mkstemp(suffix=".json")[1])
    path.write_text(json.dumps(spec))
    cmd = [
        sys.executable,
        "-m",
        "exchange_sim",
        "--port",
        "0",
        "--accounts",
        str(path),
        "--tick-interval",
        str(tick_interval),
        "--history-minutes",
        "60",
        "--orders-per-10s",
        "100000000",
        "--orders-per-day",
        "1000000000",
        "--weight-limit",
        "1000000000",
        "--stream-interval-ms",
        "1000",
    ]

    def pin() -> None:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {0})

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO, preexec_fn=pin)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    info = json.loads(proc.stdout.readline())
    path.unlink()
    return proc, url, info["accounts"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux), to normalise for a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def order_client(
    session: aiohttp.ClientSession,
    url: str,
    account: dict[str, str],
    deadline: float,
    latencies: list[float],
    errors: list[int],
) -> int:
    sent = 0
    headers = {
        "X-MBX-APIKEY": account["api_key"],
        "Content-Type": "application/x-www-form-urlencoded",
    }
    while time.monotonic() < deadline:
        side = "BUY" if sent % 2 == 0 else "SELL"
        params = {
            "symbol": "BTCUSDT",
            "side": side,
            "type": "MARKET",
            "quantity": "0.001",
            "newClientOrderId": f"{account['name']}-1-{sent}",
            "timestamp": int(time.time() * 1000),
        }
        payload = urlencode(params)
        body = payload + "&signature=" + sign(payload, account["secret"])
        start = time.perf_counter()
        async with session.post(url + "/api/v3/order", data=body, headers=headers) as resp:
            await resp.read()
            if resp.status != 200:
                errors.append(resp.status)
        latencies.append(time.perf_counter() - start)
        sent += 1
    return sent


async def bench_orders(
    url: str, accounts: list[dict[str, str]], duration: float, pid: int
) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[int] = []
    connector = aiohttp.TCPConnector(limit=len(accounts))
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.monotonic() + duration
        start, cpu = time.monotonic(), cpu_seconds(pid)
        counts = await asyncio.gather(
            *(order_client(session, url, a, deadline, latencies, errors) for a in accounts)
        )
        elapsed, cpu = time.monotonic() - start, cpu_seconds(pid) - cpu
    latencies.sort()
    return {
        "orders": sum(counts),
        "orders_per_s": round(sum(counts) / elapsed, 1),
        "simulator_cpu_s": round(cpu, 2),
        "orders_per_cpu_s": round(sum(counts) / cpu, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "errors": len(errors),
    }


async def ws_client(
    url: str, streams: list[str], ready: asyncio.Barrier, stop: asyncio.Event, counts: list[int]
) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(url + "/ws") as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": streams, "id": 1})
        while (await ws.receive()).data != '{"result":null,"id":1}':
            pass
        await ready.wait()
        received = 0
        while not stop.is_set():
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                received += 1
            elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
        counts.append(received)


async def bench_ws(url: str, clients: int, duration: float, pid: int) -> dict[str, float]:
    symbols = ["btcusdt", "ethusdt", "ltcusdt", "adausdt", "xrpusdt", "dogeusdt", "trxusdt"]
    streams = [f"{s}@{c}" for s in symbols for c in ("trade", "bookTicker")]
    counts: list[int] = []
    ready = asyncio.Barrier(clients + 1)
    stop = asyncio.Event()
    ws_url = url.replace("http", "ws")
    async with aiohttp.ClientSession() as session:
        tasks = [
            asyncio.create_task(ws_client(ws_url, streams, ready, stop, counts))
            for _ in range(clients)
        ]
        await ready.wait()  # every client is subscribed
        async with session.get(url + "/admin/state") as resp:
            before = await resp.json()
        start, cpu = time.monotonic(), cpu_seconds(pid)
        await asyncio.sleep(duration)
        async with session.get(url + "/admin/state") as resp:
            after = await resp.json()
        elapsed, cpu = time.monotonic() - start, cpu_seconds(pid) - cpu
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    sent = after["ws_messages_sent"] - before["ws_messages_sent"]
    return {
        "clients": clients,
        "streams_per_client": len(streams),
        "ticks_per_s": round((after["ticks"] - before["ticks"]) / elapsed, 1),
        "sent_per_s": round(sent / elapsed, 1),
        "simulator_cpu_s": round(cpu, 2),
        "sent_per_cpu_s": round(sent / cpu, 1),
        "received_per_s": round(sum(counts) / elapsed, 1),
    }


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    results: dict[str, object] = {}
    proc, url, accounts = start_simulator(args.clients, 0)
    try:
        results["orders"] = await bench_orders(url, accounts, args.duration, proc.pid)
    finally:
        proc.terminate()
        proc.wait()
    proc, url, _ = start_simulator(1, args.tick_interval)
    try:
        results["websocket"] = await bench_ws(url, args.ws_clients, args.duration, proc.pid)
    finally:
        proc.terminate()
        proc.wait()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--clients", type=int, default=20, help="order clients (one account each)")
    parser.add_argument("--ws-clients", type=int, default=20, help="WebSocket subscribers")
    parser.add_argument(
        "--tick-interval", type=float, default=0.005, help="price step interval (s)"
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    results = asyncio.run(main_async(args))
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
