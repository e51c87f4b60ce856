"""The test cluster's name and state directory, and `Cluster`: devenv's kubectl wrapper
plus per-test namespaces (the `cluster` fixture in tests/fixtures/cluster.py yields one)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field

import yaml

from devenv.kube import Kube
from support.procs import REPO_ROOT

TEST_CLUSTER = os.environ.get("TRADEBOT_TEST_CLUSTER", "tradebot-test")
TEST_STATE = REPO_ROOT / ".state" / TEST_CLUSTER


@dataclass(frozen=True)
class Cluster(Kube):
    """A reachable cluster: devenv's kubectl wrapper plus per-test namespaces."""

    _namespaces: list[str] = field(default_factory=list)

    def namespace(self, prefix: str = "t") -> str:
        """Create a fresh namespace (restricted PodSecurity enforced) for one test."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.kubectl(
            "create", "-f", "-",
            input=yaml.safe_dump({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
                },
            }),
        )  # fmt: skip
        self._namespaces.append(name)
        return name
