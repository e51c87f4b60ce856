"""Command line: ``python -m exchange_sim --port 0 --seed 42 --accounts accounts.json``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from .config import DEFAULT_DUPLICATE_PATTERN, Limits, SimConfig, load_accounts, load_symbols
from .server import LOOPBACK, Simulator

_LIMITS = Limits()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m exchange_sim",
        description="Local fake Binance spot exchange (REST /api/v3, WebSocket streams, "
        "WebSocket API user data) with a seeded market, fault injection and a ledger. "
        "Prints the base URL and the accounts' API keys on start.",
        epilog="Admin API (faults, ledger, prices, accounts) under /admin; ccxt overrides from "
        "exchange_sim.ccxt_config.binance_overrides(url). See tools/exchange-sim/README.md.",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="loopback address to bind (default %(default)s)"
    )
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    p.add_argument(
        "--seed", type=int, default=42, help="seed of every random choice (default %(default)s)"
    )
    p.add_argument(
        "--accounts",
        type=Path,
        help='JSON: [{"name", "api_key", "secret", "balances": {"USDT": "1000"}}]; '
        "default: one account 'default' with keys derived from the seed",
    )
    p.add_argument(
        "--symbols",
        type=Path,
        help="JSON list of SymbolSpec fields (default: the "
        "ccxt fixture markets BTCUSDT, ETHUSDT, LTCUSDT, ADAUSDT, XRPUSDT, DOGEUSDT, TRXUSDT)",
    )
    p.add_argument(
        "--replay",
        action="append",
        default=[],
        metavar="SYMBOL=CSV",
        help="replay a Binance kline CSV for SYMBOL instead of GBM (repeatable)",
    )
    p.add_argument(
        "--tick-interval",
        type=float,
        default=1.0,
        help="wall seconds between price steps; 0 = only on POST /admin/tick (default %(default)s)",
    )
    p.add_argument(
        "--step-seconds",
        type=Decimal,
        default=None,
        help="market seconds per step (accelerates the path; default = tick interval)",
    )
    p.add_argument(
        "--history-minutes", type=int, default=1000, help="1m candles generated before start"
    )
    p.add_argument(
        "--stream-interval-ms",
        type=int,
        default=1000,
        help="update speed of ticker/kline/depth streams (default %(default)s)",
    )
    p.add_argument(
        "--weight-limit",
        type=int,
        default=_LIMITS.weight_per_minute,
        help="request weight per minute per API key (or IP) (default %(default)s)",
    )
    p.add_argument(
        "--orders-per-10s",
        type=int,
        default=_LIMITS.orders_per_10s,
        help="new orders per 10 s per account (default %(default)s)",
    )
    p.add_argument(
        "--orders-per-day",
        type=int,
        default=_LIMITS.orders_per_day,
        help="new orders per day per account (default %(default)s)",
    )
    p.add_argument(
        "--ban-after",
        type=int,
        default=_LIMITS.violations_before_ban,
        help="429s within a minute before a 418 ban",
    )
    p.add_argument(
        "--ban-seconds",
        type=int,
        default=_LIMITS.ban_seconds,
        help="length of a 418 ban (default %(default)s)",
    )
    p.add_argument(
        "--client-id-reuse",
        choices=("any", "open"),
        default="any",
        help="reject a newClientOrderId already used by any order of the account "
        "(default) or only by an open one (Binance's exact rule)",
    )
    p.add_argument(
        "--duplicate-pattern",
        default=DEFAULT_DUPLICATE_PATTERN,
        help="regex splitting client order ids for the ledger's duplicate detector",
    )
    p.add_argument(
        "--duplicate-decoders",
        default="tradebot",
        help="comma-separated id decoders tried before the regex; 'tradebot' decodes the "
        "runtime's client order ids ('' for none; default %(default)s)",
    )
    p.add_argument("--url-file", type=Path, help="also write the base URL to this file")
    p.add_argument(
        "--log-level", default="WARNING", help="Python logging level (default %(default)s)"
    )
    return p


def config_from_args(args: argparse.Namespace) -> SimConfig:
    if args.host not in LOOPBACK:
        raise ValueError(f"--host must be a loopback address ({', '.join(LOOPBACK)})")
    cfg = SimConfig(
        seed=args.seed,
        host=args.host,
        port=args.port,
        tick_interval_s=args.tick_interval,
        step_seconds=args.step_seconds
        if args.step_seconds is not None
        else Decimal(str(args.tick_interval or 1)),
        history_minutes=args.history_minutes,
        stream_interval_ms=args.stream_interval_ms,
        client_id_reuse=args.client_id_reuse,
        duplicate_pattern=args.duplicate_pattern,
        duplicate_decoders=tuple(d for d in args.duplicate_decoders.split(",") if d),
        limits=Limits(
            weight_per_minute=args.weight_limit,
            orders_per_10s=args.orders_per_10s,
            orders_per_day=args.orders_per_day,
            violations_before_ban=args.ban_after,
            ban_seconds=args.ban_seconds,
        ),
    )
    if args.symbols:
        cfg = replace(cfg, symbols=load_symbols(args.symbols))
    if args.accounts:
        cfg = replace(cfg, accounts=load_accounts(args.accounts, args.seed))
    cfg = cfg.with_defaults()
    if args.replay:
        replays = dict(item.split("=", 1) for item in args.replay)
        unknown = set(replays) - {s.symbol for s in cfg.symbols}
        if unknown:
            raise SystemExit(f"--replay: unknown symbols {sorted(unknown)}")
        cfg = replace(
            cfg,
            symbols=tuple(
                replace(s, replay_csv=replays.get(s.symbol, s.replay_csv)) for s in cfg.symbols
            ),
        )
    return cfg


async def serve(cfg: SimConfig, url_file: Path | None) -> None:
    sim = Simulator(cfg)
    url = await sim.start()
    print(url, flush=True)
    accounts = [
        {"name": a.name, "api_key": a.spec.api_key, "secret": a.spec.secret}
        for a in sim.engine.accounts.values()
    ]
    print(json.dumps({"url": url, "accounts": accounts}), flush=True)
    if url_file is not None:
        await asyncio.to_thread(url_file.write_text, url + "\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    try:
        cfg = config_from_args(args)
    except (OSError, ValueError, KeyError) as exc:
        print(f"exchange_sim: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(cfg, args.url_file))
    return 0
