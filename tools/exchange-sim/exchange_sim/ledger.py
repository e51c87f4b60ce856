"""What reliability tests assert on: every accepted order and fill per account, rejections,
rate-limit violations, duplicate order intents and the resulting positions.

Duplicate detection. A client order id encodes an intent (bot, account, shard, journal
sequence) and the Lease term (epoch) it was sent under. One intent accepted under two
epochs is exactly the failover bug the design forbids, so by default two accepted orders
whose ids differ only in the epoch are duplicates. Ids are split by, in order:

* decoders: ``tradebot`` decodes the runtime's own format (``tradebot_contracts.order_ids``,
  ``t<owner><shard><epoch><seq>`` in length-prefixed base36) into owner/shard/epoch/seq;
* the regex (default ``<intent>-<epoch>-<seq>``), its named groups being the fields;
* otherwise the whole id is the key.

Fields named in ``ignore_groups`` (default: ``epoch``) are dropped from the key. All of it
is configurable (SimConfig or PUT /admin/duplicates). A second, heuristic report lists
"similar" orders: same account, symbol, side, type, quantity and price within a window.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .decimals import ZERO, plain
from .engine import Engine
from .models import BUY, Order

JSON = dict[str, Any]


Decoder = Callable[[str], dict[str, str] | None]


def _tradebot_decoder() -> Decoder:
    # The runtime owns its id format; decode with its own code instead of a copy.
    from tradebot_contracts.order_ids import ClientOrderIdError, decode_client_order_id

    def decode(client_order_id: str) -> dict[str, str] | None:
        try:
            parts = decode_client_order_id(client_order_id)
        except ClientOrderIdError:
            return None
        return {"owner": parts.owner, "shard": str(parts.shard), "epoch": str(parts.epoch),
                "seq": str(parts.seq)}  # fmt: skip

    return decode


DECODERS: dict[str, Callable[[], Decoder]] = {"tradebot": _tradebot_decoder}
DEFAULT_DECODERS = ("tradebot",)


class DuplicateDetector:
    def __init__(
        self,
        pattern: str,
        ignore_groups: Sequence[str],
        similar_window_ms: int,
        decoders: Sequence[str] = DEFAULT_DECODERS,
    ) -> None:
        self.configure(pattern, ignore_groups, similar_window_ms, decoders)

    def configure(
        self,
        pattern: str,
        ignore_groups: Sequence[str],
        similar_window_ms: int,
        decoders: Sequence[str] = DEFAULT_DECODERS,
    ) -> None:
        unknown = [name for name in decoders if name not in DECODERS]
        if unknown:
            raise ValueError(f"unknown decoders {unknown}; known: {sorted(DECODERS)}")
        self.regex = re.compile(pattern)
        self.ignore_groups = tuple(ignore_groups)
        self.similar_window_ms = similar_window_ms
        self.decoder_names = tuple(decoders)
        self._decoders = [DECODERS[name]() for name in decoders]

    def config(self) -> JSON:
        return {
            "pattern": self.regex.pattern,
            "ignore_groups": list(self.ignore_groups),
            "similar_window_ms": self.similar_window_ms,
            "decoders": list(self.decoder_names),
        }

    def fields(self, client_order_id: str) -> dict[str, str] | None:
        for decode in self._decoders:
            decoded = decode(client_order_id)
            if decoded is not None:
                return decoded
        match = self.regex.match(client_order_id)
        return match.groupdict() if match is not None else None

    def intent_key(self, client_order_id: str) -> str:
        fields = self.fields(client_order_id)
        if fields is None:
            return client_order_id
        kept = [f"{k}={v}" for k, v in fields.items() if k not in self.ignore_groups]
        return "|".join(kept) if kept else client_order_id

    def duplicates(self, orders: Iterable[Order]) -> list[JSON]:
        groups: dict[tuple[str, str], list[Order]] = defaultdict(list)
        for order in orders:
            groups[(order.account, self.intent_key(order.client_order_id))].append(order)
        return [
            {
                "account": account,
                "intent": intent,
                "client_order_ids": [o.client_order_id for o in group],
                "order_ids": [o.order_id for o in group],
                "symbols": [o.symbol for o in group],
            }
            for (account, intent), group in groups.items()
            if len(group) > 1
        ]

    def similar(self, orders: Iterable[Order]) -> list[JSON]:
        last_seen: dict[tuple[str, str, str, str, Decimal, Decimal], Order] = {}
        found: list[JSON] = []
        for order in orders:
            key = (order.account, order.symbol, order.side, order.type, order.orig_qty, order.price)
            previous = last_seen.get(key)
            if previous is not None and order.time - previous.time <= self.similar_window_ms:
                found.append(
                    {
                        "account": order.account,
                        "symbol": order.symbol,
                        "client_order_ids": [previous.client_order_id, order.client_order_id],
                        "gap_ms": order.time - previous.time,
                    }
                )
            last_seen[key] = order
        return found


@dataclass
class RateCounters:
    weight_429: int = 0  # requests refused because the weight budget was exceeded
    banned_418: int = 0  # requests refused during a ban
    orders_429: int = 0  # orders refused by the 10s/1d order-count limits

    @property
    def violations(self) -> int:
        return self.weight_429 + self.banned_418 + self.orders_429


@dataclass
class Ledger:
    detector: DuplicateDetector
    orders: list[Order] = field(default_factory=list)
    rejections: list[JSON] = field(default_factory=list)
    rate: dict[str, RateCounters] = field(default_factory=lambda: defaultdict(RateCounters))
    unsupported: list[str] = field(default_factory=list)

    def record_order(self, order: Order) -> None:
        self.orders.append(order)

    def record_rejection(
        self, account: str, endpoint: str, code: int, msg: str, params: dict[str, str], now: int
    ) -> None:
        self.rejections.append(
            {
                "account": account,
                "endpoint": endpoint,
                "code": code,
                "msg": msg,
                "clientOrderId": params.get("newClientOrderId"),
                "time": now,
            }
        )

    def record_rate_limited(self, who: str, kind: str) -> None:
        counters = self.rate[who]
        setattr(counters, kind, getattr(counters, kind) + 1)

    def record_unsupported(self, method: str, path: str) -> None:
        self.unsupported.append(f"{method} {path}")

    def reset(self) -> None:
        self.orders.clear()
        self.rejections.clear()
        self.rate.clear()
        self.unsupported.clear()

    # --- reports ---

    def orders_of(self, account: str) -> list[Order]:
        return [o for o in self.orders if o.account == account]

    def report(self, engine: Engine, account: str) -> JSON:
        orders = self.orders_of(account)
        counters = self.rate.get(account, RateCounters())
        return {
            "orders": [order_json(o, self.detector) for o in orders],
            "trades": [
                {
                    "symbol": f.symbol,
                    "id": f.trade_id,
                    "orderId": f.order_id,
                    "side": f.side,
                    "price": plain(f.price),
                    "qty": plain(f.qty),
                    "quoteQty": plain(f.quote_qty),
                    "commission": plain(f.commission),
                    "commissionAsset": f.commission_asset,
                    "isMaker": f.is_maker,
                    "time": f.time,
                }
                for f in engine.accounts[account].fills
            ],
            "rejections": [r for r in self.rejections if r["account"] == account],
            "rate_limit": rate_json(counters),
            "duplicates": self.detector.duplicates(orders),
            "similar_orders": self.detector.similar(orders),
            "positions": positions(engine, account),
            "balances": balances(engine, account),
        }

    def summary(self, engine: Engine) -> JSON:
        accounts: JSON = {}
        for name, state in engine.accounts.items():
            orders = self.orders_of(name)
            counters = self.rate.get(name, RateCounters())
            accounts[name] = {
                "orders": len(orders),
                "open_orders": len(state.open_orders()),
                "trades": len(state.fills),
                "rejections": sum(1 for r in self.rejections if r["account"] == name),
                "rate_limit_violations": counters.violations,
                "duplicate_intents": len(self.detector.duplicates(orders)),
                "similar_orders": len(self.detector.similar(orders)),
            }
        anonymous = {k: rate_json(v) for k, v in self.rate.items() if k not in engine.accounts}
        return {
            "accounts": accounts,
            "unattributed_rate_limit": anonymous,
            "unsupported_requests": list(self.unsupported),
        }


def rate_json(c: RateCounters) -> JSON:
    return {
        "violations": c.violations,
        "weight_429": c.weight_429,
        "banned_418": c.banned_418,
        "orders_429": c.orders_429,
    }


def order_json(o: Order, detector: DuplicateDetector) -> JSON:
    return {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "clientOrderId": o.client_order_id,
        "intent": detector.intent_key(o.client_order_id),
        "side": o.side,
        "type": o.type,
        "price": plain(o.price),
        "origQty": plain(o.orig_qty),
        "executedQty": plain(o.executed_qty),
        "status": o.status,
        "time": o.time,
        "updateTime": o.update_time,
    }


def balances(engine: Engine, account: str) -> JSON:
    return {
        asset: {"free": plain(b.free), "locked": plain(b.locked), "total": plain(b.free + b.locked)}
        for asset, b in sorted(engine.accounts[account].balances.items())
    }


def positions(engine: Engine, account: str) -> JSON:
    """Net base position per symbol from the account's fills (spot: no leverage)."""
    acc: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for f in engine.accounts[account].fills:
        row = acc[f.symbol]
        if f.side == BUY:
            row["bought"] += f.qty
            row["quote_spent"] += f.quote_qty
        else:
            row["sold"] += f.qty
            row["quote_received"] += f.quote_qty
        row[f"fee_{f.commission_asset}"] += f.commission
        row["fills"] += 1
    out: JSON = {}
    for symbol, row in sorted(acc.items()):
        net = row["bought"] - row["sold"]
        avg_buy = row["quote_spent"] / row["bought"] if row["bought"] > ZERO else ZERO
        last = engine.markets[symbol].last_price
        out[symbol] = {
            "net_qty": plain(net),
            "bought_qty": plain(row["bought"]),
            "sold_qty": plain(row["sold"]),
            "quote_spent": plain(row["quote_spent"]),
            "quote_received": plain(row["quote_received"]),
            "avg_buy_price": plain(avg_buy.quantize(Decimal("0.00000001"))),
            "fees": {k[4:]: plain(v) for k, v in row.items() if k.startswith("fee_")},
            "fills": int(row["fills"]),
            "last_price": plain(last),
            "mark_value": plain(net * last),
        }
    return out
