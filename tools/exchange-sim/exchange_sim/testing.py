"""Helpers for tests and tools: run the simulator in-process and point ccxt at it.

async with running_simulator() as sim:
    exchange = make_ccxt(ccxt.async_support.binance, sim.url, sim.account())
    await exchange.load_markets()
    await sim.admin.add_fault(kind="error", endpoint="POST /api/v3/order", code=-1021)
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp

from .auth import sign
from .ccxt_config import binance_overrides, non_local_urls
from .config import AccountSpec, SimConfig
from .server import Simulator

T = TypeVar("T")

# Fast and fully deterministic by default: the market only moves when a test steps it.
TEST_CONFIG = SimConfig(
    seed=42,
    tick_interval_s=0.0,
    history_minutes=120,
    stream_interval_ms=0,
)


class AdminClient:
    """Thin async client of the /admin API."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = base_url

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        async with self._session.request(method, self._base + path, json=body) as resp:
            data = await resp.json()
            if resp.status >= 400:
                raise AssertionError(f"admin {method} {path} -> {resp.status}: {data}")
            return data

    async def add_fault(self, **spec: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", "/admin/faults", spec)
        return result

    async def clear_fault(self, fault_id: str) -> None:
        await self.request("DELETE", f"/admin/faults/{fault_id}")

    async def clear_faults(self) -> None:
        await self.request("DELETE", "/admin/faults")

    async def faults(self) -> list[dict[str, Any]]:
        return list((await self.request("GET", "/admin/faults"))["faults"])

    async def summary(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/admin/ledger")
        return result

    async def ledger(self, account: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", f"/admin/ledger/{account}")
        return result

    async def positions(self, account: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", f"/admin/positions/{account}")
        return result

    async def tick(self, count: int = 1) -> None:
        await self.request("POST", "/admin/tick", {"count": count})

    async def set_price(self, symbol: str, price: Decimal | str) -> None:
        await self.request("POST", "/admin/price", {"symbol": symbol, "price": str(price)})

    async def prices(self) -> dict[str, Decimal]:
        return {k: Decimal(v) for k, v in (await self.request("GET", "/admin/prices")).items()}

    async def set_balances(self, account: str, balances: dict[str, str]) -> None:
        await self.request("PUT", f"/admin/accounts/{account}/balances", balances)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: Any


class RawClient:
    """Signs and sends Binance REST requests by hand (to see exact bodies and headers)."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, account: AccountSpec | None
    ) -> None:
        self._session = session
        self._base = base_url
        self.account = account

    async def call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        signed: bool = False,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> RawResponse:
        query = dict(params or {})
        send_headers = dict(headers or {})
        if self.account is not None and (signed or path.endswith("userDataStream")):
            send_headers.setdefault("X-MBX-APIKEY", self.account.api_key)
        if signed:
            assert self.account is not None, "signed calls need an account"
            query.setdefault("timestamp", timestamp if timestamp is not None else _now_ms())
            payload = urlencode(query)
            query_string = payload + "&signature=" + sign(payload, self.account.secret)
        else:
            query_string = urlencode(query)
        url = self._base + path
        data = None
        if method in ("POST", "PUT") and query_string:
            data = query_string
            send_headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif query_string:
            url += "?" + query_string
        async with self._session.request(method, url, data=data, headers=send_headers) as resp:
            text = await resp.text()
            try:
                body: Any = await resp.json(content_type=None)
            except ValueError:
                body = text
            return RawResponse(resp.status, dict(resp.headers), body)


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class RunningSimulator:
    sim: Simulator
    url: str
    admin: AdminClient
    session: aiohttp.ClientSession

    @property
    def accounts(self) -> dict[str, AccountSpec]:
        return {name: state.spec for name, state in self.sim.engine.accounts.items()}

    def account(self, name: str | None = None) -> AccountSpec:
        """The named account, or the first one."""
        accounts = self.accounts
        return accounts[name] if name is not None else next(iter(accounts.values()))

    def raw(self, account: str | None = None, *, anonymous: bool = False) -> RawClient:
        """A hand-signing REST client for ``account`` (the first one by default)."""
        return RawClient(self.session, self.url, None if anonymous else self.account(account))


@asynccontextmanager
async def running_simulator(
    config: SimConfig | None = None, **overrides: Any
) -> AsyncIterator[RunningSimulator]:
    """Start a simulator on 127.0.0.1 with a free port; stop it on exit."""
    cfg = replace(config or TEST_CONFIG, host="127.0.0.1", port=0, **overrides)
    sim = Simulator(cfg)
    url = await sim.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield RunningSimulator(sim, url, AdminClient(session, url), session)
    finally:
        await sim.stop()


def _deep_merge(into: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(into)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def ccxt_config(
    base_url: str,
    account: AccountSpec | None = None,
    *,
    rate_limit: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """Constructor config for ``ccxt.async_support.binance`` / ``ccxt.pro.binance``.

    ccxt's client-side throttle is off by default (tests measure the simulator's limits,
    not ccxt's). ``extra`` is deep-merged last (e.g. ``options``, ``timeout``).
    """
    config = binance_overrides(base_url)
    config["enableRateLimit"] = rate_limit
    if account is not None:
        config["apiKey"] = account.api_key
        config["secret"] = account.secret
    return _deep_merge(config, extra)


def make_ccxt(cls: type[T], base_url: str, account: AccountSpec | None = None, **extra: Any) -> T:
    """Instantiate a stock ccxt binance class against ``base_url``; refuses to return an
    instance that still has any URL pointing elsewhere."""
    exchange = cls(ccxt_config(base_url, account, **extra))  # type: ignore[call-arg]
    stray = non_local_urls(exchange.urls["api"], base_url)  # type: ignore[attr-defined]
    if stray:
        raise RuntimeError(f"ccxt URLs not redirected to the simulator: {stray}")
    return exchange
