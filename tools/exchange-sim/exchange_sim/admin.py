"""Admin HTTP API under /admin: faults, ledger, accounts, prices, clock. JSON in and out.

Not rate limited and never faulted: tests use it to arrange and to assert.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .config import account_from_json
from .decimals import plain
from .faults import FaultError
from .ledger import balances, positions

if TYPE_CHECKING:
    from .server import Simulator

JSON = Any


def _json(body: JSON, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _bad(msg: str, status: int = 400) -> web.Response:
    return _json({"error": msg}, status)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except json.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=f'{{"error": "invalid JSON: {exc.msg}"}}') from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text='{"error": "expected a JSON object"}')
    return data


class Admin:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/admin/health", self.health),
            web.get("/admin/state", self.state),
            web.get("/admin/faults", self.list_faults),
            web.post("/admin/faults", self.add_fault),
            web.delete("/admin/faults", self.clear_faults),
            web.delete("/admin/faults/{id}", self.delete_fault),
            web.get("/admin/ledger", self.ledger_summary),
            web.post("/admin/ledger/reset", self.ledger_reset),
            web.get("/admin/ledger/{account}", self.ledger_account),
            web.get("/admin/duplicates", self.duplicates),
            web.put("/admin/duplicates", self.configure_duplicates),
            web.get("/admin/positions/{account}", self.positions),
            web.get("/admin/accounts", self.list_accounts),
            web.post("/admin/accounts", self.add_account),
            web.put("/admin/accounts/{account}/balances", self.set_balances),
            web.get("/admin/prices", self.prices),
            web.post("/admin/price", self.set_price),
            web.post("/admin/tick", self.tick),
            web.get("/admin/ratelimits", self.ratelimits),
            web.post("/admin/ratelimits/reset", self.reset_ratelimits),
        ]

    def _account(self, request: web.Request) -> str:
        name = request.match_info["account"]
        if name not in self.sim.engine.accounts:
            raise web.HTTPNotFound(
                text=json.dumps({"error": f"no account {name!r}"}), content_type="application/json"
            )
        return name

    async def health(self, request: web.Request) -> web.Response:
        return _json({"ok": True})

    async def state(self, request: web.Request) -> web.Response:
        sim = self.sim
        return _json(
            {
                "url": sim.url,
                "seed": sim.config.seed,
                "symbols": list(sim.engine.markets),
                "accounts": [
                    {"name": a.name, "api_key": a.spec.api_key, "secret": a.spec.secret}
                    for a in sim.engine.accounts.values()
                ],
                "tick_interval_s": sim.config.tick_interval_s,
                "step_seconds": str(sim.config.step_seconds),
                "ticks": sim.ticks,
                "rest_requests": sim.rest.requests,
                "ws_connections": len(sim.hub.conns),
                "ws_messages_sent": sim.hub.messages_sent,
            }
        )

    async def list_faults(self, request: web.Request) -> web.Response:
        faults = self.sim.faults.active(self.sim.wall_now())
        return _json({"faults": [f.as_json() for f in faults]})

    async def add_fault(self, request: web.Request) -> web.Response:
        try:
            fault = self.sim.faults.add(await _body(request), self.sim.wall_now())
        except (FaultError, ValueError, TypeError) as exc:
            return _bad(str(exc))
        if fault.kind == "ws_drop":
            dropped = self.sim.hub.drop_matching(fault.endpoint, fault.account)
            if dropped:
                self.sim.faults.consume(fault)
        return _json(fault.as_json(), 201)

    async def delete_fault(self, request: web.Request) -> web.Response:
        fault_id = request.match_info["id"]
        if not self.sim.faults.remove(fault_id):
            return _bad(f"no fault {fault_id!r}", 404)
        return _json({"deleted": fault_id})

    async def clear_faults(self, request: web.Request) -> web.Response:
        return _json({"deleted": self.sim.faults.clear()})

    async def ledger_summary(self, request: web.Request) -> web.Response:
        return _json(self.sim.ledger.summary(self.sim.engine))

    async def ledger_account(self, request: web.Request) -> web.Response:
        return _json(self.sim.ledger.report(self.sim.engine, self._account(request)))

    async def ledger_reset(self, request: web.Request) -> web.Response:
        self.sim.ledger.reset()
        return _json({})

    async def duplicates(self, request: web.Request) -> web.Response:
        ledger = self.sim.ledger
        return _json(
            {
                "config": ledger.detector.config(),
                "accounts": {
                    name: ledger.detector.duplicates(ledger.orders_of(name))
                    for name in self.sim.engine.accounts
                },
            }
        )

    async def configure_duplicates(self, request: web.Request) -> web.Response:
        body = await _body(request)
        detector = self.sim.ledger.detector
        current = detector.config()
        try:
            ignore: Any = body.get("ignore_groups", current["ignore_groups"])
            window: Any = body.get("similar_window_ms", current["similar_window_ms"])
            decoders: Any = body.get("decoders", current["decoders"])
            detector.configure(
                str(body.get("pattern", current["pattern"])),
                list(ignore),
                int(window),
                list(decoders),
            )
        except (ValueError, TypeError) as exc:  # re.error is a ValueError
            return _bad(str(exc))
        return _json(detector.config())

    async def positions(self, request: web.Request) -> web.Response:
        name = self._account(request)
        engine = self.sim.engine
        return _json({"positions": positions(engine, name), "balances": balances(engine, name)})

    async def list_accounts(self, request: web.Request) -> web.Response:
        engine = self.sim.engine
        return _json(
            {
                "accounts": [
                    {
                        "name": a.name,
                        "api_key": a.spec.api_key,
                        "secret": a.spec.secret,
                        "balances": balances(engine, a.name),
                    }
                    for a in engine.accounts.values()
                ]
            }
        )

    async def add_account(self, request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            spec = account_from_json(body, self.sim.config.seed)
            self.sim.engine.add_account(spec)
        except (KeyError, ValueError, InvalidOperation) as exc:
            return _bad(f"invalid account: {exc}")
        return _json({"name": spec.name, "api_key": spec.api_key, "secret": spec.secret}, 201)

    async def set_balances(self, request: web.Request) -> web.Response:
        name = self._account(request)
        body = await _body(request)
        try:
            amounts = {str(k): Decimal(str(v)) for k, v in body.items()}
        except InvalidOperation:
            return _bad("balances must be decimal strings")
        events = [
            self.sim.engine.set_balance(name, asset, amount, self.sim.now())
            for asset, amount in amounts.items()
        ]
        await self.sim.publish(events)
        return _json({"balances": balances(self.sim.engine, name)})

    async def prices(self, request: web.Request) -> web.Response:
        return _json({s: plain(m.last_price) for s, m in self.sim.engine.markets.items()})

    async def set_price(self, request: web.Request) -> web.Response:
        body = await _body(request)
        symbol = str(body.get("symbol", ""))
        if symbol not in self.sim.engine.markets:
            return _bad(f"unknown symbol {symbol!r}")
        try:
            price = Decimal(str(body["price"]))
        except (KeyError, InvalidOperation):
            return _bad("price must be a decimal string")
        await self.sim.set_price(symbol, price)
        return _json({"symbol": symbol, "price": plain(self.sim.engine.markets[symbol].last_price)})

    async def tick(self, request: web.Request) -> web.Response:
        body = await _body(request)
        count = int(body.get("count", 1))
        for _ in range(max(0, count)):
            await self.sim.step()
        return _json({"ticks": self.sim.ticks})

    async def ratelimits(self, request: web.Request) -> web.Response:
        return _json(self.sim.limiter.snapshot(self.sim.now()))

    async def reset_ratelimits(self, request: web.Request) -> web.Response:
        self.sim.limiter.reset()
        return _json({})
