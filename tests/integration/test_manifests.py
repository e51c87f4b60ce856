"""manifests/ on the real API server: the kustomize base (CRDs, operator, RBAC) applies
server-side, and every sample is accepted by the CRDs (applied for real)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from support.cluster import Cluster
from support.procs import REPO_ROOT

pytestmark = pytest.mark.integration

BASE = REPO_ROOT / "manifests" / "base"
SAMPLES = REPO_ROOT / "manifests" / "samples"


def sample_files() -> list[Path]:
    return [
        SAMPLES / f
        for f in yaml.safe_load((SAMPLES / "kustomization.yaml").read_text())["resources"]
    ]


def contained(sample: Any, stored: Any) -> bool:
    """Every field of ``sample`` is in ``stored`` with the same value."""
    if isinstance(sample, dict):
        return isinstance(stored, dict) and all(
            k in stored and contained(v, stored[k]) for k, v in sample.items()
        )
    if isinstance(sample, list):
        return (
            isinstance(stored, list)
            and len(sample) == len(stored)
            and all(contained(a, b) for a, b in zip(sample, stored, strict=True))
        )
    return bool(sample == stored)


def test_kustomize_base_applies_server_side(cluster: Cluster) -> None:
    built = cluster.kubectl("kustomize", str(BASE)).stdout
    docs = [d for d in yaml.safe_load_all(built) if d]
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole",
            "ClusterRoleBinding", "Deployment"} <= kinds  # fmt: skip
    assert "Pod" not in kinds, "helm test hooks do not belong in the base"
    (namespace,) = [d for d in docs if d["kind"] == "Namespace"]
    name = namespace["metadata"]["name"]
    existed = cluster.kubectl("get", "namespace", name, check=False).returncode == 0
    # The namespace for real (namespaced objects need it even in a dry run), the rest as a
    # server-side dry run: the CRDs are shared with the other tests in this cluster.
    cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(namespace))
    try:
        result = cluster.kubectl(
            "apply", "--server-side", "--dry-run=server", "--force-conflicts",
            "--field-manager=tradebot-manifests-test", "-f", "-", input=built,
        )  # fmt: skip
        assert result.stdout.count("serverside-applied (server dry run)") == len(docs)
    finally:
        if not existed:
            cluster.kubectl("delete", "namespace", name, "--wait=false")


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: str(p.relative_to(SAMPLES)))
def test_sample_is_accepted_by_the_crds(crds_installed: Cluster, path: Path) -> None:
    ns = crds_installed.namespace("sample")
    if path.name == "hpa-sharded.yaml":
        # Refers to the paper account and strategy of paper-simulator.yaml.
        crds_installed.kubectl("apply", "--server-side", "-n", ns,
                               "-f", str(SAMPLES / "paper-simulator.yaml"))  # fmt: skip
    result = crds_installed.kubectl("apply", "--server-side", "-n", ns, "-f", str(path))
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert result.stdout.count("serverside-applied") == len(docs)
    for doc in docs:
        stored = yaml.safe_load(
            crds_installed.kubectl(
                "get", f"{doc['kind'].lower()}.tradebot.io", doc["metadata"]["name"],
                "-n", ns, "-o", "yaml",
            ).stdout
        )  # fmt: skip
        # Nothing was pruned: every field of the sample is in the schema (defaults may be added).
        assert contained(doc["spec"], stored["spec"]), (doc["spec"], stored["spec"])


def test_all_samples_together_and_a_broken_one_rejected(crds_installed: Cluster) -> None:
    ns = crds_installed.namespace("samples")
    built = crds_installed.kubectl("kustomize", str(SAMPLES)).stdout
    crds_installed.kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=built)
    bots = crds_installed.kubectl("get", "tradingbots", "-n", ns, "-o", "name").stdout.split()
    assert len(bots) == 3
    broken = yaml.safe_load((SAMPLES / "paper-simulator.yaml").read_text().split("---")[-1])
    broken["spec"]["mode"] = "yolo"
    result = crds_installed.kubectl(
        "apply", "--server-side", "--dry-run=server", "-n", ns, "-f", "-",
        input=yaml.safe_dump(broken), check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "spec.mode" in result.stderr
