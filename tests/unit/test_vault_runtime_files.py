"""Runtime credentials from files (the Vault agent injector's output): parsing, rotation
when a file changes, and the key swap on the ccxt instance (fail closed on {})."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import ccxt
import pytest

from tradebot_contracts.runtime_config import CredentialsConfig, FileCredentials
from tradebot_runtime.credentials import (
    CredentialsError,
    CredentialsProvider,
    apply_to_exchange,
    read_directory,
)


def _write(directory: Path, **files: str) -> None:
    for name, value in files.items():
        (directory / name).write_text(value)


def test_injector_files_are_parsed_one_value_per_file_whitespace_stripped(tmp_path: Path) -> None:
    # The injector template renders only the value; a trailing newline must not count.
    _write(tmp_path, apiKey="key-1\n", secret="  sec-1\n", password="pw\n")
    assert read_directory(str(tmp_path)) == {"apiKey": "key-1", "secret": "sec-1", "password": "pw"}


def test_missing_files_name_the_directory_not_a_value(tmp_path: Path) -> None:
    _write(tmp_path, apiKey="only-the-key")
    with pytest.raises(CredentialsError) as err:
        read_directory(str(tmp_path))
    assert "only-the-key" not in str(err.value) and str(tmp_path) in str(err.value)


def test_pod_runner_root_prefixes_container_paths(tmp_path: Path) -> None:
    inner = tmp_path / "vault" / "secrets"
    inner.mkdir(parents=True)
    _write(inner, apiKey="k", secret="s")
    env = {"PODRUNNER_ROOT": str(tmp_path)}
    assert read_directory("/vault/secrets", env) == {"apiKey": "k", "secret": "s"}


def test_file_provider_picks_up_rotated_files_and_swaps_ccxt_keys(tmp_path: Path) -> None:
    _write(tmp_path, apiKey="key-1", secret="sec-1")
    config = CredentialsConfig(source="file", file=FileCredentials(directory=str(tmp_path)))
    provider = CredentialsProvider(config, poll_interval_s=0.01)
    exchange = ccxt.binance({"apiKey": "key-1", "secret": "sec-1"})

    async def scenario() -> None:
        assert await provider.start() == {"apiKey": "key-1", "secret": "sec-1"}
        provider.on_change(lambda values: apply_to_exchange(exchange, values))
        await provider.tick()
        assert exchange.apiKey == "key-1"  # nothing changed
        _write(tmp_path, apiKey="key-2", secret="sec-2-longer")
        os.utime(tmp_path / "apiKey", (1, 1))  # a new mtime even on coarse clocks
        await provider.tick()

    asyncio.run(scenario())
    assert (exchange.apiKey, exchange.secret) == ("key-2", "sec-2-longer")
    assert provider.problem() is None and provider.usable


def test_removed_keys_make_private_calls_fail_locally() -> None:
    exchange = ccxt.binance({"apiKey": "k", "secret": "s"})
    exchange.check_required_credentials()
    apply_to_exchange(exchange, {})
    with pytest.raises(ccxt.AuthenticationError):
        exchange.check_required_credentials()
