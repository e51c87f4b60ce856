"""The generated CRDs (crds/*.yaml) and the field manager the tests apply them with (the
`crds_installed` fixture in tests/fixtures/crds.py; clusters of a test's own)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from support.procs import REPO_ROOT

CRD_DIR = REPO_ROOT / "crds"
FIELD_MANAGER = "tradebot-tests"


def crd_files() -> list[Path]:
    files = sorted(CRD_DIR.glob("*.yaml"))
    if not files:
        pytest.fail(f"no CRDs in {CRD_DIR}; run `python -m tradebot_operator.crdgen`")
    return files


def crd_names(files: list[Path]) -> list[str]:
    return [str(yaml.safe_load(path.read_text())["metadata"]["name"]) for path in files]
