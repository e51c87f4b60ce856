"""OpenTelemetry tracing of the order path: tick -> decision -> risk -> order -> ack.

Tracing is on only when an OTLP endpoint is configured (``OTEL_EXPORTER_OTLP_ENDPOINT``
or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``): then a TracerProvider with a
BatchSpanProcessor and the OTLP/HTTP exporter is installed as the global provider.
Otherwise no provider is installed, the global tracer stays the no-op one and a span
costs a context switch and nothing else (no export, no attribute work: the engine checks
``is_recording()`` before building attributes).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from opentelemetry import trace

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

log = logging.getLogger("tradebot.tracing")

TRACER_NAME: Final = "tradebot.runtime"
ENDPOINT_ENVS: Final = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

_provider: SdkTracerProvider | None = None


def tracing_configured(env: Mapping[str, str] | None = None) -> bool:
    """True when an OTLP endpoint is set and the SDK is not disabled."""
    e = os.environ if env is None else env
    if e.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(e.get(name, "").strip() for name in ENDPOINT_ENVS)


def setup_tracing(
    service_name: str,
    attributes: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> bool:
    """Install the exporting TracerProvider when an OTLP endpoint is configured.

    Returns whether tracing is on. The exporter reads its endpoint, headers and timeout
    from the standard ``OTEL_EXPORTER_OTLP_*`` environment variables.
    """
    global _provider
    if _provider is not None:
        return True
    if not tracing_configured(env):
        return False
    # imported lazily: nothing of the SDK or the exporter is loaded when tracing is off
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({**(attributes or {}), SERVICE_NAME: service_name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    log.info("tracing on: spans exported over OTLP/HTTP", extra={"service": service_name})
    return True


def shutdown_tracing() -> None:
    """Flush and stop the exporter (bounded by the SDK's own timeouts)."""
    global _provider
    provider, _provider = _provider, None
    if provider is None:
        return
    try:
        provider.shutdown()
    except Exception as exc:
        log.warning("tracing shutdown failed: %s", exc)


def get_tracer(provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """The runtime's tracer: from ``provider`` (tests) or the global provider (a proxy
    that stays no-op until ``setup_tracing`` installs one)."""
    return trace.get_tracer(TRACER_NAME, tracer_provider=provider)
