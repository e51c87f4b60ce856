"""OperatorSettings from the environment, and the api package staying kopf-free."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from tradebot_operator.settings import OperatorSettings


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
        "tradebot_contracts.names, tradebot_operator.builders, tradebot_operator.validation; "
        "print('kopf' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
