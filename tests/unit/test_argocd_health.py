"""The Argo CD health checks (manifests/argocd/resource_customizations/*/*/health.lua) run in
a real Lua 5.4 interpreter (lupa) against their health_test.yaml cases, the way Argo CD's own
test harness runs them: the object is the global ``obj``; the script returns {status, message}.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

lupa = pytest.importorskip("lupa.lua54", reason="lupa (dev dependency) embeds Lua 5.4")

ROOT = Path(__file__).resolve().parents[2]
CUSTOMIZATIONS = ROOT / "manifests" / "argocd" / "resource_customizations"
ARGOCD_CM = ROOT / "manifests" / "argocd" / "argocd-cm-health.yaml"
KINDS = ("TradingBot", "Strategy", "ExchangeAccount")
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def run_health(script: str, obj: dict[str, Any]) -> dict[str, str]:
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    # JSON -> Lua tables through Lua itself would need a JSON library; lupa converts nested
    # Python containers (lists become 1-based sequences, as in Argo CD's gopher-lua).
    lua.globals().obj = lua.table_from(json.loads(json.dumps(obj)), recursive=True)
    result = lua.execute(script)
    return {"status": result["status"], "message": result["message"]}


def cases() -> list[Any]:
    out = []
    for kind in KINDS:
        folder = CUSTOMIZATIONS / "tradebot.io" / kind
        for case in yaml.safe_load((folder / "health_test.yaml").read_text())["tests"]:
            out.append(pytest.param(folder, case, id=f"{kind}-{Path(case['inputPath']).stem}"))
    return out


@pytest.mark.parametrize(("folder", "case"), cases())
def test_health_check_case(folder: Path, case: dict[str, Any]) -> None:
    obj = yaml.safe_load((folder / case["inputPath"]).read_text())
    assert obj["kind"] == folder.name
    got = run_health((folder / "health.lua").read_text(), obj)
    assert got == case["healthStatus"]


def test_layout_and_coverage() -> None:
    """Every kind has the three parts; every Argo CD status the mapping promises is tested."""
    seen: dict[str, set[str]] = {}
    for kind in KINDS:
        folder = CUSTOMIZATIONS / "tradebot.io" / kind
        assert (folder / "health.lua").is_file()
        tests = yaml.safe_load((folder / "health_test.yaml").read_text())["tests"]
        for case in tests:
            assert (folder / case["inputPath"]).is_file(), case["inputPath"]
            assert case["healthStatus"]["status"] in ARGO_STATUSES
        seen[kind] = {case["healthStatus"]["status"] for case in tests}
        testdata = {p.name for p in (folder / "testdata").glob("*.yaml")}
        assert testdata == {Path(case["inputPath"]).name for case in tests}, "unused testdata"
    assert seen["TradingBot"] == {"Healthy", "Progressing", "Degraded", "Suspended"}
    assert seen["Strategy"] >= {"Healthy", "Progressing", "Degraded"}
    assert seen["ExchangeAccount"] >= {"Healthy", "Progressing", "Degraded"}


@pytest.mark.parametrize("phase", ["Running", "Pending", "Degraded", "Failed", "Suspended"])
def test_stale_status_is_progressing_whatever_the_phase(phase: str) -> None:
    script = (CUSTOMIZATIONS / "tradebot.io" / "TradingBot" / "health.lua").read_text()
    obj = {
        "metadata": {"name": "b", "generation": 5},
        "status": {"phase": phase, "observedGeneration": 4, "conditions": []},
    }
    assert run_health(script, obj)["status"] == "Progressing"


def test_argocd_cm_snippet_carries_the_same_scripts() -> None:
    cm = yaml.safe_load(ARGOCD_CM.read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "argocd-cm"
    expected = {
        f"resource.customizations.health.tradebot.io_{kind}": (
            CUSTOMIZATIONS / "tradebot.io" / kind / "health.lua"
        ).read_text()
        for kind in KINDS
    }
    assert cm["data"] == expected


def test_broken_script_is_detected() -> None:
    """The harness really evaluates Lua: a script returning the wrong status fails the case."""
    folder = CUSTOMIZATIONS / "tradebot.io" / "TradingBot"
    obj = yaml.safe_load((folder / "testdata" / "halted.yaml").read_text())
    script = (folder / "health.lua").read_text().replace('with_detail("Halted"', 'with_detail("H"')
    assert run_health(script, obj)["message"] != "Halted: tradingState is Halted: no new orders"
