"""Probe handlers: httpGet and tcpSocket against the pod's local port, exec as a process."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp

from podrunner import ports


async def _http(handler: dict[str, Any], port: int, seconds: float) -> bool:
    path = handler.get("path") or "/"
    scheme = str(handler.get("scheme") or "HTTP").lower()
    headers = {h["name"]: h["value"] for h in handler.get("httpHeaders") or []}
    url = f"{scheme}://127.0.0.1:{port}{path if path.startswith('/') else '/' + path}"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as session,
            session.get(url, headers=headers, ssl=False, allow_redirects=False) as resp,
        ):
            return 200 <= resp.status < 400
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


async def _tcp(port: int, seconds: float) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), seconds)
    except (TimeoutError, OSError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _exec(command: list[str], env: dict[str, str], seconds: float) -> bool:
    proc = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        return await asyncio.wait_for(proc.wait(), seconds) == 0
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return False


async def check(
    probe: dict[str, Any],
    container: dict[str, Any],
    port_map: dict[int, int],
    env: dict[str, str],
    argv0: dict[str, str],
) -> bool:
    """One probe attempt. `argv0` maps command names (python) to local binaries."""
    timeout = float(probe.get("timeoutSeconds", 1))
    for kind in ("httpGet", "tcpSocket"):
        if kind in probe:
            port = ports.resolve(container, probe[kind]["port"], port_map)
            if port is None:
                return False
            if kind == "httpGet":
                return await _http(probe[kind], port, timeout)
            return await _tcp(port, timeout)
    if "exec" in probe:
        command = list(probe["exec"].get("command") or [])
        if not command:
            return False
        command[0] = argv0.get(command[0], command[0])
        return await _exec(command, env, timeout)
    return True  # grpc probes: not supported, treated as passing
