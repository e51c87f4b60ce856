"""Golden tests: desired() for each tests/unit/golden/<case>/input.yaml must equal
expected.yaml. Regenerate after an intended change with
``UPDATE_GOLDEN=1 pytest tests/unit/test_builders_golden.py`` and review the diff."""

from __future__ import annotations

import difflib
import os

import pytest
import yaml
from builder_inputs import GOLDEN_DIR, golden_cases, load_case

UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


class _GoldenDumper(yaml.SafeDumper):
    """Multi-line strings (the runtime.json payload) as literal blocks, for readable diffs."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_GoldenDumper.add_representer(str, _str)


def render(manifests: list[dict[str, object]]) -> str:
    return yaml.dump_all(
        manifests, Dumper=_GoldenDumper, sort_keys=True, default_flow_style=False, width=1000
    )


def test_there_are_golden_cases() -> None:
    assert {
        "paper-two-symbols",
        "sharded-two-exchanges-hpa",
        "suspended",
        "long-name",
    } <= set(golden_cases())


@pytest.mark.parametrize("name", golden_cases())
def test_desired_matches_golden(name: str) -> None:
    actual = render(load_case(name).desired())
    expected_path = GOLDEN_DIR / name / "expected.yaml"
    if UPDATE:
        expected_path.write_text(actual)
    assert expected_path.exists(), f"missing {expected_path}; run with UPDATE_GOLDEN=1"
    expected = expected_path.read_text()
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile="expected.yaml",
                tofile="desired()",
            )
        )
        pytest.fail(f"{name}: desired() differs from golden file:\n{diff}")


@pytest.mark.parametrize("name", golden_cases())
def test_desired_is_deterministic(name: str) -> None:
    assert render(load_case(name).desired()) == render(load_case(name).desired())
