"""Tracing is off unless an OTLP endpoint is configured; the engine's default tracer is
the global (no-op) one and records nothing."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from tradebot_runtime import tracing


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_configured(env: dict[str, str], on: bool) -> None:
    assert tracing.tracing_configured(env) is on


def test_setup_without_endpoint_installs_nothing() -> None:
    assert tracing.setup_tracing("tradebot-runtime", {"tradebot.bot": "b"}, env={}) is False
    assert tracing._provider is None
    tracing.shutdown_tracing()  # harmless when off


def test_default_tracer_records_nothing() -> None:
    tracer = tracing.get_tracer()
    with tracer.start_as_current_span("tick") as span:
        assert not span.is_recording()
    assert not trace.get_current_span().is_recording()


def test_exporter_importable() -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    assert OTLPSpanExporter is not None
