"""`python -m exchange_sim` as the demo runs it: a separate process with moving prices."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def test_help_describes_the_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "exchange_sim", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for option in (
        "--port",
        "--seed",
        "--accounts",
        "--tick-interval",
        "--step-seconds",
        "--replay",
    ):
        assert option in out


def test_the_process_prints_its_url_and_serves_a_moving_market(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.json"
    accounts.write_text(
        json.dumps(
            [
                {
                    "name": "demo",
                    "api_key": "demokey",
                    "secret": "demosecret",
                    "balances": {"USDT": "500"},
                }
            ]
        )
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exchange_sim",
            "--port",
            "0",
            "--seed",
            "3",
            "--accounts",
            str(accounts),
            "--tick-interval",
            "0.05",
            "--step-seconds",
            "600",
            "--history-minutes",
            "30",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        info = json.loads(proc.stdout.readline())
        assert info["accounts"] == [{"name": "demo", "api_key": "demokey", "secret": "demosecret"}]
        assert get(url + "/api/v3/ping") == {}
        first = get(url + "/api/v3/ticker/price?symbol=BTCUSDT")
        time.sleep(0.5)
        second = get(url + "/api/v3/ticker/price?symbol=BTCUSDT")
        assert first != second, "the price path advances on its own"
        state = get(url + "/admin/state")
        assert isinstance(state, dict) and state["seed"] == 3 and state["ticks"] >= 5
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
