"""OperatorSettings from the environment, and the api package staying kopf-free."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from tradebot_operator.settings import OperatorSettings, ProcessSettings


def test_defaults() -> None:
    settings = OperatorSettings()
    assert settings.metrics_port == 9090
    assert settings.lease_duration_seconds == 6
    assert settings.vault_address is None


def test_from_env_reads_prefixed_variables() -> None:
    settings = OperatorSettings.from_env(
        {
            "TRADEBOT_RUNTIME_IMAGE": "registry/tradebot:2",
            "TRADEBOT_METRICS_PORT": "9400",
            "TRADEBOT_VAULT_ADDRESS": "https://vault:8200",
            "TRADEBOT_DEFAULT_REQUESTS": '{"cpu": "10m"}',
            "UNRELATED": "x",
        }
    )
    assert settings.runtime_image == "registry/tradebot:2"
    assert settings.metrics_port == 9400
    assert settings.vault_address == "https://vault:8200"
    assert settings.default_requests == {"cpu": "10m"}


def test_from_env_rejects_bad_values() -> None:
    with pytest.raises(ValidationError):
        OperatorSettings.from_env({"TRADEBOT_METRICS_PORT": "80"})


def test_api_and_builders_do_not_import_kopf() -> None:
    code = (
        "import sys, tradebot_operator.api, tradebot_contracts.strategies, "
        "tradebot_contracts.heartbeat, tradebot_contracts.runtime_config, "
        "tradebot_contracts.names, tradebot_operator.builders, tradebot_operator.checks; "
        "print('kopf' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_process_settings_from_env() -> None:
    default = ProcessSettings.from_env({})
    assert default == ProcessSettings()
    assert default.liveness_endpoint == "http://0.0.0.0:8080/healthz"
    assert default.json_logs and not default.debug and default.peering is None
    process = ProcessSettings.from_env(
        {
            "TRADEBOT_WATCH_NAMESPACES": "a,,b",
            "TRADEBOT_LIVENESS_ENDPOINT": "",
            "TRADEBOT_LOG_FORMAT": "plain",
            "TRADEBOT_PEERING": "tradebot",
            "TRADEBOT_API_CONCURRENCY": "4",
            "TRADEBOT_RECONCILE_WORKERS": "2",
            "TRADEBOT_DEBUG": "1",
        }
    )
    assert process.watch_namespaces == ("a", "b")
    assert process.liveness_endpoint is None  # "" disables it
    assert not process.json_logs and process.debug and process.peering == "tradebot"
    assert (process.api_concurrency, process.reconcile_workers) == (4, 2)
