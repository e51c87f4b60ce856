"""`python -m tradebot_operator`: run the operator.

Equivalent to `kopf run -m tradebot_operator.handlers --all-namespaces` with the
liveness endpoint and log format the deployment expects. Environment:

  TRADEBOT_WATCH_NAMESPACES   comma-separated namespaces (default: all namespaces)
  TRADEBOT_LIVENESS_ENDPOINT  default http://0.0.0.0:8080/healthz ("" disables it)
  TRADEBOT_LOG_FORMAT         json (default) | plain
  TRADEBOT_PEERING            kopf peering object name for active/standby operators
                              (default: standalone, one active replica)
  TRADEBOT_API_CONCURRENCY    API requests in flight at most (default 16)
  TRADEBOT_RECONCILE_WORKERS  bots reconciled at once by the work queue (default 16)
  TRADEBOT_DEBUG              verbose logs, kopf's per-event lines included
"""

from __future__ import annotations

import os

import kopf


def main() -> None:
    import tradebot_operator.handlers  # noqa: F401 - registers the handlers

    json_logs = os.environ.get("TRADEBOT_LOG_FORMAT", "json") == "json"
    kopf.configure(
        log_format=kopf.LogFormat.JSON if json_logs else kopf.LogFormat.FULL,
        verbose=bool(os.environ.get("TRADEBOT_DEBUG")),
    )
    namespaces = [n for n in os.environ.get("TRADEBOT_WATCH_NAMESPACES", "").split(",") if n]
    peering = os.environ.get("TRADEBOT_PEERING") or None
    liveness = os.environ.get("TRADEBOT_LIVENESS_ENDPOINT", "http://0.0.0.0:8080/healthz")
    if peering:
        kopf.run(
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=liveness or None,
            peering_name=peering,
        )
    else:
        kopf.run(
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=liveness or None,
            standalone=True,
        )


if __name__ == "__main__":
    main()
