"""Static configuration: symbols (filters and price-path parameters), accounts, limits."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

ClientIdReuse = Literal["any", "open"]
# Client order ids are `<intent>-<epoch>-<seq>` by default; see ledger.DuplicateDetector.
DEFAULT_DUPLICATE_PATTERN = r"^(?P<intent>.+)-(?P<epoch>\d+)-(?P<seq>\d+)$"


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One spot market: exchangeInfo filters plus how its synthetic market behaves."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_price: Decimal
    max_price: Decimal
    min_notional: Decimal = Decimal("5")
    max_notional: Decimal = Decimal("9000000")
    market_max_qty: Decimal = Decimal("0")  # 0: MARKET_LOT_SIZE does not limit
    max_num_orders: int = 200
    initial_price: Decimal = Decimal("100")
    drift: Decimal = Decimal("0")  # annualised GBM drift
    volatility: Decimal = Decimal("0.8")  # annualised GBM volatility
    spread_bps: Decimal = Decimal("1")  # best ask - best bid, in basis points of the mid
    level_gap_bps: Decimal = Decimal("1")  # distance between synthetic book levels
    levels: int = 50  # synthetic book depth per side
    level_notional: Decimal = Decimal("25000")  # quote value resting at the best level
    trade_notional: Decimal = Decimal("2000")  # size of the synthetic trade on each tick
    replay_csv: str | None = None  # candles to replay instead of GBM (see pricepath)

    @property
    def lower(self) -> str:
        return self.symbol.lower()


@dataclass(frozen=True, slots=True)
class AccountSpec:
    name: str
    api_key: str
    secret: str
    balances: dict[str, Decimal] = field(default_factory=dict)
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")


@dataclass(frozen=True, slots=True)
class Limits:
    """Binance spot's published limits (exchangeInfo.rateLimits), all configurable."""

    weight_per_minute: int = 6000
    orders_per_10s: int = 100
    orders_per_day: int = 200000
    # After this many 429s inside one minute the bucket is banned (418), like Binance's
    # escalating IP bans; ban_seconds is the first ban's length.
    violations_before_ban: int = 10
    ban_seconds: int = 120
    max_recv_window_ms: int = 60000


@dataclass(frozen=True, slots=True)
class SimConfig:
    seed: int = 42
    symbols: tuple[SymbolSpec, ...] = ()
    accounts: tuple[AccountSpec, ...] = ()
    limits: Limits = Limits()
    # Wall-clock seconds between price-path steps; 0 disables the ticker (tests step it
    # through the admin API).
    tick_interval_s: float = 1.0
    # Market seconds each step represents: raise it to accelerate the price path.
    step_seconds: Decimal = Decimal("1")
    history_minutes: int = 1000  # 1m candles generated before "now" at start
    stream_interval_ms: int = 1000  # update speed of ticker/kline/depth streams
    client_id_reuse: ClientIdReuse = "any"
    duplicate_pattern: str = DEFAULT_DUPLICATE_PATTERN
    duplicate_ignore_groups: tuple[str, ...] = ("epoch",)
    duplicate_decoders: tuple[str, ...] = ("tradebot",)  # tried before the pattern
    similar_window_ms: int = 1000
    host: str = "127.0.0.1"
    port: int = 0

    def with_defaults(self) -> SimConfig:
        """Fill in the default markets and a default account when none are given."""
        cfg = self
        if not cfg.symbols:
            cfg = replace(cfg, symbols=default_symbols())
        if not cfg.accounts:
            cfg = replace(cfg, accounts=(default_account(cfg.seed),))
        return cfg


def _d(value: Any) -> Decimal:
    return Decimal(str(value))


def _spec(
    symbol: str,
    base: str,
    tick: str,
    step: str,
    min_qty: str,
    max_qty: str,
    max_price: str,
    price: str,
    vol: str,
) -> SymbolSpec:
    return SymbolSpec(
        symbol=symbol,
        base=base,
        quote="USDT",
        tick_size=Decimal(tick),
        step_size=Decimal(step),
        min_qty=Decimal(min_qty),
        max_qty=Decimal(max_qty),
        min_price=Decimal(tick),
        max_price=Decimal(max_price),
        initial_price=Decimal(price),
        volatility=Decimal(vol),
    )


def default_symbols() -> tuple[SymbolSpec, ...]:
    """The spot markets of the ccxt fixtures, with their real filters."""
    return (
        _spec("BTCUSDT", "BTC", "0.01", "0.00001", "0.00001", "9000", "1000000", "60000", "0.6"),
        _spec("ETHUSDT", "ETH", "0.01", "0.0001", "0.0001", "9000", "1000000", "3000", "0.75"),
        _spec("LTCUSDT", "LTC", "0.01", "0.001", "0.001", "90000", "100000", "80", "0.9"),
        _spec("ADAUSDT", "ADA", "0.0001", "0.1", "0.1", "900000", "1000", "0.45", "0.9"),
        _spec("XRPUSDT", "XRP", "0.0001", "1", "1", "9222449", "10000", "0.5", "0.9"),
        _spec("DOGEUSDT", "DOGE", "0.00001", "1", "1", "9000000", "1000", "0.12", "1.0"),
        _spec("TRXUSDT", "TRX", "0.00001", "0.1", "0.1", "9000000", "1000", "0.11", "0.8"),
    )


def derive_key(seed: int, name: str, kind: str, length: int = 64) -> str:
    """Deterministic alphanumeric credentials (Binance keys are 64 alphanumerics)."""
    digest = hashlib.sha256(f"exchange-sim:{seed}:{name}:{kind}".encode()).hexdigest()
    return (digest * 2)[:length]


def default_account(seed: int, name: str = "default") -> AccountSpec:
    return AccountSpec(
        name=name,
        api_key=derive_key(seed, name, "key"),
        secret=derive_key(seed, name, "secret"),
        balances={"USDT": Decimal("100000"), "BTC": Decimal("1"), "ETH": Decimal("10")},
    )


def account_from_json(raw: dict[str, Any], seed: int) -> AccountSpec:
    name = str(raw["name"])
    return AccountSpec(
        name=name,
        api_key=str(raw.get("api_key") or derive_key(seed, name, "key")),
        secret=str(raw.get("secret") or derive_key(seed, name, "secret")),
        balances={str(k): _d(v) for k, v in dict(raw.get("balances", {})).items()},
        maker_fee=_d(raw.get("maker_fee", "0.001")),
        taker_fee=_d(raw.get("taker_fee", "0.001")),
    )


def load_accounts(path: Path, seed: int) -> tuple[AccountSpec, ...]:
    """A JSON list ``[{"name", "api_key", "secret", "balances": {"USDT": "1000"}}]``
    (or that list under ``{"accounts": ...}``); missing keys are derived from the seed."""
    data = json.loads(path.read_text())
    items = data["accounts"] if isinstance(data, dict) else data
    return tuple(account_from_json(item, seed) for item in items)


_DECIMAL_FIELDS = {
    "tick_size",
    "step_size",
    "min_qty",
    "max_qty",
    "min_price",
    "max_price",
    "min_notional",
    "max_notional",
    "market_max_qty",
    "initial_price",
    "drift",
    "volatility",
    "spread_bps",
    "level_gap_bps",
    "level_notional",
    "trade_notional",
}


def symbol_from_json(raw: dict[str, Any]) -> SymbolSpec:
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        kwargs[key] = _d(value) if key in _DECIMAL_FIELDS else value
    kwargs.setdefault("min_price", kwargs.get("tick_size"))
    return SymbolSpec(**kwargs)


def load_symbols(path: Path) -> tuple[SymbolSpec, ...]:
    """A JSON list of SymbolSpec fields (decimals as strings)."""
    data = json.loads(path.read_text())
    items = data["symbols"] if isinstance(data, dict) else data
    return tuple(symbol_from_json(item) for item in items)
