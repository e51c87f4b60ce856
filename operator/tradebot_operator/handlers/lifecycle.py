"""Start-up and clean-up: kopf's settings, then the OperatorContext on the memo."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from tradebot_operator.checks import known_exchange
from tradebot_operator.handlers.context import OperatorContext, context_of
from tradebot_operator.kube.indexes import Indexes
from tradebot_operator.settings import OperatorSettings, ProcessSettings

PREFIX = "tradebot.io"


@kopf.on.startup()
async def configure(
    settings: kopf.OperatorSettings,
    memo: kopf.Memo,
    bot_bodies: kopf.Index[Any, Any],
    strategy_bodies: kopf.Index[Any, Any],
    account_bodies: kopf.Index[Any, Any],
    bot_leases: kopf.Index[Any, Any],
    bots_by_reference: kopf.Index[Any, Any],
    priority_classes: kopf.Index[Any, Any],
    **_: Any,
) -> None:
    # Our own annotation and finalizer names from day one (never kopf's defaults). kopf's
    # finalizer is only on Strategies and ExchangeAccounts (their timers); TradingBots
    # carry the controller's own (controllers/tradingbot/finalize.py, BOT_FINALIZER).
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    # Log lines are not events: we post events for meaningful transitions explicitly.
    settings.posting.level = logging.WARNING
    process = ProcessSettings.from_env()
    if not process.debug:
        # kopf logs "Handler ... succeeded" for every watch event: thousands of lines a
        # minute with many bots, and measurable CPU. Warnings and errors stay.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    settings.watching.server_timeout = 300
    settings.background.instant_exit_timeout = 2.0
    settings.background.cancellation_polling = 2.0
    settings.networking.request_timeout = 60
    operator_settings = OperatorSettings.from_env()
    # Validation looks exchange ids up in ccxt: a multi-second import that would otherwise
    # stall the event loop (every worker) in the first reconcile.
    await asyncio.to_thread(known_exchange, "binance")
    indexes = Indexes(
        bots=bot_bodies,
        strategies=strategy_bodies,
        accounts=account_bodies,
        leases=bot_leases,
        bots_by_reference=bots_by_reference,
        priority_classes=priority_classes,
    )
    context = await OperatorContext.create(operator_settings, process, indexes)
    context.start()
    memo.context = context


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    await context_of(memo).close()
