"""`python -m tradebot_operator`: run the operator.

Equivalent to `kopf run -m tradebot_operator.handlers --all-namespaces` with the
liveness endpoint and log format the deployment expects. The environment it reads is
documented on tradebot_operator.settings.ProcessSettings (TRADEBOT_WATCH_NAMESPACES,
TRADEBOT_LIVENESS_ENDPOINT, TRADEBOT_LOG_FORMAT, TRADEBOT_PEERING, TRADEBOT_API_CONCURRENCY,
TRADEBOT_RECONCILE_WORKERS, TRADEBOT_DEBUG) and OperatorSettings (everything else).
"""

from __future__ import annotations

import kopf

from tradebot_operator.settings import ProcessSettings


def main() -> None:
    import tradebot_operator.handlers  # noqa: F401 - registers the handlers

    process = ProcessSettings.from_env()
    kopf.configure(
        log_format=kopf.LogFormat.JSON if process.json_logs else kopf.LogFormat.FULL,
        verbose=process.debug,
    )
    namespaces = list(process.watch_namespaces)
    if process.peering:
        kopf.run(
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=process.liveness_endpoint,
            peering_name=process.peering,
        )
    else:
        kopf.run(
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=process.liveness_endpoint,
            standalone=True,
        )


if __name__ == "__main__":
    main()
