"""CRD generator internals: the structural converter refuses what Kubernetes would refuse,
and the Helm chart rendering wraps the same CRDs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, Field

from tradebot_operator.crdgen import SchemaError, rendered_files, to_structural
from tradebot_operator.crdgen.__main__ import main


class _Child(BaseModel):
    """A child."""

    name: str = Field(max_length=10, description="The name.")


class _Parent(BaseModel):
    """A parent."""

    child: _Child | None = Field(default=None, description="Optional child.")
    children: list[_Child] = Field(default_factory=list, max_length=3, description="Kids.")


def schema(model: type[BaseModel]) -> dict[str, Any]:
    return to_structural(model.model_json_schema(by_alias=True))


def test_references_are_inlined_and_optional_is_folded() -> None:
    out = schema(_Parent)
    child = out["properties"]["child"]
    assert child["type"] == "object"
    assert child["description"] == "Optional child."  # the field's text wins
    assert child["properties"]["name"]["maxLength"] == 10
    assert out["properties"]["children"]["items"]["type"] == "object"
    assert "$ref" not in str(out) and "anyOf" not in str(out) and "title" not in str(out)


def test_non_structural_unions_are_refused() -> None:
    class Bad(BaseModel):
        value: int | str

    with pytest.raises(SchemaError, match="value"):
        schema(Bad)


def test_unknown_keywords_are_refused() -> None:
    with pytest.raises(SchemaError, match="unsupported schema keyword 'oneOf'"):
        to_structural({"type": "object", "oneOf": [{"type": "string"}]})


def test_exclusive_bounds_are_refused() -> None:
    class Bad(BaseModel):
        value: int = Field(gt=0)

    with pytest.raises(SchemaError, match="exclusiveMinimum"):
        schema(Bad)


def test_chart_templates_wrap_the_same_crds() -> None:
    plain = rendered_files()
    chart = rendered_files(chart=True)
    assert set(chart) == set(plain)
    for name, text in chart.items():
        lines = text.splitlines()
        assert lines[1] == "{{- if .Values.crds.enabled }}"
        assert lines[-1] == "{{- end }}"
        assert "  {{- if .Values.crds.keep }}" in lines
        assert "    helm.sh/resource-policy: keep" in lines
        # Without the template lines it is the plain CRD plus the keep annotation.
        body = "\n".join(line for line in lines if "{{" not in line)
        document = yaml.safe_load(body)
        expected = yaml.safe_load(plain[name])
        expected["metadata"]["annotations"] = {"helm.sh/resource-policy": "keep"}
        assert document == expected


def test_cli_writes_chart_templates(tmp_path: Path) -> None:
    out, chart = tmp_path / "crds", tmp_path / "chart"
    assert main(["--out", str(out), "--chart", str(chart)]) == 0
    assert sorted(p.name for p in chart.iterdir()) == sorted(rendered_files())
    assert main(["--out", str(out), "--chart", str(chart), "--check"]) == 0
    (chart / "tradebot.io_strategies.yaml").write_text("stale\n")
    assert main(["--out", str(out), "--chart", str(chart), "--check"]) == 1
