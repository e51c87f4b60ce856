"""Start-up helpers of the runtime process: the Kubernetes API client, the ccxt instances
(with the account's credentials and the order side over them), retries of what start-up
needs, freezing the start-up heap out of the GC."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from tradebot_contracts.endpoint import endpoint_overrides
from tradebot_contracts.order_ids import ClientOrderIds
from tradebot_contracts.runtime_config import RuntimeConfig
from tradebot_runtime.credentials import (
    CredentialsProvider,
    apply_to_exchange,
    credentials_refusal,
)
from tradebot_runtime.exchange.client import ExchangeClient
from tradebot_runtime.exchange.paper import PaperBroker

log = logging.getLogger("tradebot.app")


def freeze_startup_heap() -> None:
    """Take what start-up allocated (modules, ccxt's markets, config) out of the garbage
    collector's generations: it lives as long as the process, and without this a full
    collection walks all of it between a signal and its order (an 83 ms gen-2 pause
    measured by tests/bench/bench_runtime_hotpath.py)."""
    gc.collect()
    gc.freeze()


async def kube_api_client() -> k8s.ApiClient:
    """KUBECONFIG when set (pod runner, out-of-cluster), else in-cluster config."""
    cfg = k8s.Configuration()
    if os.environ.get("KUBECONFIG"):
        await k8s_config.load_kube_config(
            config_file=os.environ["KUBECONFIG"], client_configuration=cfg
        )
    else:
        k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    return k8s.ApiClient(configuration=cfg)


def ccxt_config(config: RuntimeConfig, credentials: Mapping[str, str]) -> dict[str, Any]:
    """The ccxt constructor options: endpoint overrides, market type, credentials."""
    conf: dict[str, Any] = {"enableRateLimit": True, "timeout": 10_000}
    if config.endpoint:
        conf.update(endpoint_overrides(config.exchange, config.endpoint))
    if config.market_type != "spot":
        options = dict(conf.get("options") or {})
        options["defaultType"] = config.market_type
        conf["options"] = options
    conf.update(credentials)
    return conf


def make_exchange(module: Any, config: RuntimeConfig, credentials: Mapping[str, str]) -> Any:
    """A ccxt instance of ``module`` (ccxt.async_support or ccxt.pro) for ``config``."""
    cls = getattr(module, config.exchange, None)
    if cls is None:
        raise SystemExit(f"ccxt has no exchange {config.exchange!r}")
    if credentials and credentials_refusal(config):  # last line: open_exchange loads none
        raise RuntimeError("refused: a paper bot's ccxt instance gets no sandbox or live key")
    exchange = cls(ccxt_config(config, credentials))
    if config.account_mode == "sandbox" and not config.endpoint:
        exchange.set_sandbox_mode(True)
    return exchange


@dataclass
class ExchangeAccess:
    """The account's ccxt instance, the order side over it and where its keys come from."""

    exchange: Any
    client: ExchangeClient
    """``PaperBroker`` (orders filled in process) or ``ExchangeClient`` (orders sent)."""
    credentials: CredentialsProvider | None
    refusal: str | None = None
    """Set when this pod must not trade at all (see credentials.credentials_refusal)."""


async def open_exchange(
    config: RuntimeConfig, ids: ClientOrderIds, *, fee_rate: Decimal, module: Any = ccxt_async
) -> ExchangeAccess:
    """Load the credentials, build the ccxt instance with them and choose the order side.

    A paper bot on a sandbox or live account loads no credentials at all (nothing is
    read from Vault or the files): its ccxt instance has no key, its order side is the
    in-process PaperBroker, and ``refusal`` says why (no shard of it starts trading)."""
    refusal = credentials_refusal(config)
    if refusal is not None:
        log.error(
            refusal,
            extra={"bot": config.bot, "account": config.account, "mode": config.mode,
                   "account_mode": config.account_mode},
        )  # fmt: skip
        exchange = make_exchange(module, config, {})
        return ExchangeAccess(
            exchange, PaperBroker(exchange, ids, fee_rate=fee_rate), None, refusal
        )
    provider = CredentialsProvider(config.credentials)
    credentials = await provider.start()
    exchange = make_exchange(module, config, credentials)
    if credentials:  # key rotation / fail closed swap the keys of this ccxt instance
        provider.on_change(lambda values: apply_to_exchange(exchange, values))
    client: ExchangeClient
    if config.mode == "paper" and not credentials:
        client = PaperBroker(exchange, ids, fee_rate=fee_rate)
        log.info("paper broker: orders are filled in process", extra={"fee_rate": str(fee_rate)})
    else:
        client = ExchangeClient(exchange, ids)
    del credentials
    return ExchangeAccess(exchange, client, provider)


async def retry(what: str, call: Any, attempts: int = 30) -> Any:
    """Await ``call()`` until it succeeds (exponential back-off, at most ``attempts``)."""
    delay = 0.5
    for attempt in range(attempts):
        try:
            return await call()
        except Exception as exc:
            if attempt == attempts - 1:
                raise
            log.warning("%s failed, retrying: %s", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
    raise AssertionError("unreachable")
