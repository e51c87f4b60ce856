"""Live configuration: the ConfigMap watch and applying its live fields (trading state,
risk limits, delete request) to the running engines; roll-relevant changes wait for the
rollout."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import watch as k8s_watch

from tradebot_contracts import runtime_config as rc
from tradebot_contracts.runtime_config import RuntimeConfig
from tradebot_runtime.delete_requests import DeleteRequests
from tradebot_runtime.risk import RiskLimits
from tradebot_runtime.status import diff_config

log = logging.getLogger("tradebot.app")


class LiveConfig(DeleteRequests):
    """Watches the ConfigMap and applies what may change without a rollout."""

    def apply_config(self, new: RuntimeConfig, *, initial: bool = False) -> None:
        """Apply the live fields of ``new``; roll-relevant changes wait for the rollout."""
        diff = diff_config(self.config, new)
        if not initial and diff.empty:
            return
        if diff.rolled:
            self.pending_rollout = diff.rolled
            log.info("config change needs a rollout", extra={"fields": sorted(diff.rolled)})
        else:
            self.pending_rollout = frozenset()
        # keep the roll-relevant fields this process runs with; take the live ones
        live = {name: getattr(new, name) for name in rc.LIVE_FIELDS if name != "config_version"}
        self.config = self.config.model_copy(update=live)
        limits = RiskLimits.from_config(self.config.risk)
        request = self.config.delete_request
        if request is None and self.delete_request is not None:
            log.info("delete request withdrawn")
        self.delete_request = request
        for slot in self.slots.values():
            if slot.engine is not None:
                slot.engine.risk.update_limits(limits)
                slot.engine.set_trading_state(self._risk_state())
        if diff.live:
            log.info(
                "config applied",
                extra={"fields": sorted(diff.live), "tradingState": self.trading_state},
            )
        if request is not None and not initial:
            for slot in self.slots.values():
                if slot.engine is not None and slot.ack != request.id:
                    self._spawn(self._delete_action(slot, request))

    async def watch_config(self) -> None:
        assert self.api is not None
        core = k8s.CoreV1Api(self.api)
        name = self.identity.configmap
        if not name:
            log.warning("no ConfigMap name in the environment: live config changes disabled")
            return
        selector = f"metadata.name={name}"
        delay = 0.5
        while True:
            try:
                listed = await core.list_namespaced_config_map(
                    self.identity.namespace, field_selector=selector
                )
                for item in listed.items:
                    self._config_event(item)
                version = listed.metadata.resource_version
                watcher = k8s_watch.Watch()
                async with watcher.stream(
                    core.list_namespaced_config_map,
                    self.identity.namespace,
                    field_selector=selector,
                    resource_version=version,
                    timeout_seconds=300,
                ) as stream:
                    async for event in stream:
                        if event["type"] in ("ADDED", "MODIFIED"):
                            self._config_event(event["object"])
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("config watch failed: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _config_event(self, obj: Any) -> None:
        data = obj.data or {}
        text = data.get(rc.CONFIG_KEY)
        if text is None:
            return
        try:
            new = RuntimeConfig.loads(text)
        except Exception as exc:
            log.error("ConfigMap payload invalid: %s", exc)
            return
        self.apply_config(new)
