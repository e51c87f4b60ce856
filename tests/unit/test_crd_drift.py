"""The committed crds/*.yaml must be exactly what the pydantic models generate."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradebot_operator.crdgen import diff_files, rendered_files
from tradebot_operator.crdgen.__main__ import main

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"


def test_committed_crds_match_models() -> None:
    drift = diff_files(CRD_DIR, rendered_files())
    assert drift == "", (
        "crds/ is out of date; run `python -m tradebot_operator.crdgen --out crds`\n" + drift
    )


def test_no_stray_crd_files() -> None:
    committed = {path.name for path in CRD_DIR.glob("*.yaml")}
    assert committed == set(rendered_files())


def test_generation_is_deterministic() -> None:
    assert rendered_files() == rendered_files()


def test_check_flag_detects_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--out", str(tmp_path), "--check"]) == 0
    target = tmp_path / "tradebot.io_tradingbots.yaml"
    target.write_text(target.read_text().replace("maxItems: 8", "maxItems: 9", 1))
    capsys.readouterr()
    assert main(["--out", str(tmp_path), "--check"]) == 1
    out = capsys.readouterr().out
    assert "-" in out and "maxItems: 9" in out and "maxItems: 8" in out


def test_check_flag_detects_missing_file(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    (tmp_path / "tradebot.io_strategies.yaml").unlink()
    assert main(["--out", str(tmp_path), "--check"]) == 1


# ---- the chart's copies (charts/tradebot/templates/crds) -------------------------------------

CHART_CRD_DIR = CRD_DIR.parent / "charts" / "tradebot" / "templates" / "crds"


def test_chart_crds_match_models() -> None:
    drift = diff_files(CHART_CRD_DIR, rendered_files(chart=True))
    assert drift == "", "chart CRDs are out of date; run `make chart-crds`\n" + drift


def test_no_stray_chart_crd_files() -> None:
    committed = {path.name for path in CHART_CRD_DIR.glob("*.yaml")}
    assert committed == set(rendered_files(chart=True))


def test_chart_crds_are_the_plain_crds_behind_the_gates() -> None:
    """Without the two Helm gates a chart CRD is byte for byte the plain one (less the header)."""
    plain, chart = rendered_files(), rendered_files(chart=True)
    for name, text in chart.items():
        lines = text.splitlines(keepends=True)
        assert lines[1] == "{{- if .Values.crds.enabled }}\n"
        assert lines[-1] == "{{- end }}\n"
        body = "".join(
            line
            for line in lines[2:-1]
            if not line.strip().startswith("{{")
            and line not in ("  annotations:\n", "    helm.sh/resource-policy: keep\n")
        )
        assert body == plain[name].split("\n", 1)[1]


def test_check_flag_detects_chart_drift(tmp_path: Path) -> None:
    out, chart = tmp_path / "crds", tmp_path / "chart"
    assert main(["--out", str(out), "--chart", str(chart)]) == 0
    assert main(["--out", str(out), "--chart", str(chart), "--check"]) == 0
    target = chart / "tradebot.io_strategies.yaml"
    target.write_text(target.read_text().replace(".Values.crds.keep", ".Values.crds.kept"))
    assert main(["--out", str(out), "--chart", str(chart), "--check"]) == 1
