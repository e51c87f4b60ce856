"""The handle the `pod_runner` fixture yields (tests/fixtures/podrunner.py): devenv's pod
runner. Pods reach it with `PodRunnerNode.placement()` (nodeSelector + toleration)."""

from __future__ import annotations

from devenv.podrunner import PodRunner

PodRunnerNode = PodRunner

__all__ = ["PodRunnerNode"]
