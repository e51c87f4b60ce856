"""Who this runtime process is: the identity the Deployment passes in the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from tradebot_contracts import env
from tradebot_contracts import runtime_config as rc


@dataclass(frozen=True)
class Identity:
    """Who this process is (env from the Deployment's downward API; never a secret)."""

    namespace: str
    pod: str
    bot: str
    account: str
    configmap: str
    config_path: str
    leases: list[str]
    metrics_port: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Identity:
        e = os.environ if environ is None else environ
        missing = [k for k in (env.NAMESPACE, env.POD_NAME, env.BOT, env.ACCOUNT) if not e.get(k)]
        if missing:
            raise SystemExit(f"missing environment: {', '.join(missing)}")
        return cls(
            namespace=e[env.NAMESPACE],
            pod=e[env.POD_NAME],
            bot=e[env.BOT],
            account=e[env.ACCOUNT],
            configmap=e.get(env.CONFIGMAP, ""),
            config_path=e.get(env.CONFIG_PATH) or rc.CONFIG_PATH,
            leases=[n for n in e.get(env.LEASES, "").split(",") if n],
            metrics_port=int(e.get(env.METRICS_PORT) or 9090),
        )
