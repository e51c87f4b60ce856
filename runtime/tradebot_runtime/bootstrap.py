"""Start-up helpers of the runtime process: the Kubernetes API client, the ccxt instances,
retries of what start-up needs, freezing the start-up heap out of the GC."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from tradebot_contracts.endpoint import endpoint_overrides
from tradebot_contracts.runtime_config import RuntimeConfig

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
    exchange = cls(ccxt_config(config, credentials))
    if config.account_mode == "sandbox" and not config.endpoint:
        exchange.set_sandbox_mode(True)
    return exchange


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
