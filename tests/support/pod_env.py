"""The environment of a runtime process that a test starts on this machine (no kubelet, no
pod runner), derived from the Deployment the operator renders (`desired()`, or the one the
operator under test created) instead of re-typing the names of tradebot_contracts.env.

`declared_env` resolves the runtime container's ``env`` as kubelet would for one pod:
literal ``value``s as they are ($(VAR) references are not expanded; the operator renders
none), downward-API ``fieldRef``s from the pod's `PodFields`. `process_env` then replaces
only what a local process cannot take from the Deployment (`LOCAL_OVERRIDES`: the config
file is not at the container path, and each local process needs a metrics port of its own)
and adds names the Deployment never sets (development-only settings such as
``env.JOURNAL_DSN``, and PATH or KUBECONFIG).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from tradebot_contracts import env
from tradebot_operator.builders.deployment import CONTAINER_NAME

LOCAL_OVERRIDES: Final = frozenset({env.CONFIG_PATH, env.METRICS_PORT})
"""The Deployment's names whose value a local process replaces."""


@dataclass(frozen=True)
class PodFields:
    """The downward-API fields of the pod a local process stands for."""

    namespace: str
    name: str
    uid: str
    node_name: str

    def field(self, path: str) -> str:
        values = {
            "metadata.namespace": self.namespace,
            "metadata.name": self.name,
            "metadata.uid": self.uid,
            "spec.nodeName": self.node_name,
        }
        if path not in values:
            raise ValueError(f"fieldRef {path!r} is not resolved for a local process")
        return values[path]


def runtime_container(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """The runtime container of a Deployment rendered by the operator."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    found = [c for c in containers if c["name"] == CONTAINER_NAME]
    if len(found) != 1:
        names = [c["name"] for c in containers]
        raise ValueError(f"no single container {CONTAINER_NAME!r} in {names}")
    container: dict[str, Any] = found[0]
    return container


def declared_env(deployment: Mapping[str, Any], pod: PodFields) -> dict[str, str]:
    """The runtime container's env for ``pod``, resolved as kubelet does (literal values,
    downward-API fieldRefs). Any other source (a Secret or ConfigMap key, a resource
    field) is refused: the operator puts no such thing into a runtime pod's env."""
    out: dict[str, str] = {}
    for var in runtime_container(deployment).get("env") or []:
        name = str(var["name"])
        source = var.get("valueFrom")
        if source is None:
            out[name] = str(var.get("value", ""))
        elif set(source) == {"fieldRef"}:
            out[name] = pod.field(str(source["fieldRef"]["fieldPath"]))
        else:
            raise ValueError(f"{name}: valueFrom {sorted(source)} is not resolved locally")
    return out


def process_env(
    deployment: Mapping[str, Any],
    pod: PodFields,
    *,
    local: Mapping[str, str],
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The env of a local runtime process for ``pod``: the Deployment's (`declared_env`),
    with ``local`` replacing the values of `LOCAL_OVERRIDES` names and ``extra`` adding
    names the Deployment does not set. Replacing any other name the Deployment sets, or a
    ``local`` name it does not set, is an error: the test would not run what a pod runs."""
    declared = declared_env(deployment, pod)
    extra = dict(extra or {})
    not_local = sorted(set(local) - LOCAL_OVERRIDES)
    if not_local:
        raise ValueError(f"only {sorted(LOCAL_OVERRIDES)} may be replaced, not {not_local}")
    not_declared = sorted(set(local) - set(declared))
    if not_declared:
        raise ValueError(f"{not_declared} are not in the Deployment's env")
    clash = sorted(set(extra) & set(declared))
    if clash:
        raise ValueError(f"{clash} are set by the Deployment; the test may not re-type them")
    return declared | dict(local) | extra
