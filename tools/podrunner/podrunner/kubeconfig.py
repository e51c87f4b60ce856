"""The pod's own kubeconfig: the cluster's server and CA, the pod's token *file*.

Pointing at the projected token file (tokenFile) rather than embedding the token means a
client that re-reads it picks up the runner's refreshes, as in-cluster clients do.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from podrunner.kube import ClusterInfo
from podrunner.paths import PodPaths, Remapper

SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def token_file(container: dict[str, object], remapper: Remapper) -> Path | None:
    """The remapped token of the container's service-account mount, if it has one."""
    for mount in container.get("volumeMounts") or []:  # type: ignore[attr-defined]
        if mount["mountPath"].rstrip("/") == SA_MOUNT:
            return remapper.path(SA_MOUNT) / "token"
    return None


def write(paths: PodPaths, info: ClusterInfo, namespace: str, token: Path) -> Path:
    cluster: dict[str, object] = {"server": info.server}
    if info.insecure:
        cluster["insecure-skip-tls-verify"] = True
    elif info.ca_pem is not None:
        paths.ca.write_bytes(info.ca_pem)
        cluster["certificate-authority"] = str(paths.ca)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": "pod", "user": {"tokenFile": str(token)}}],
        "contexts": [
            {
                "name": "pod",
                "context": {"cluster": "cluster", "user": "pod", "namespace": namespace},
            }
        ],
        "current-context": "pod",
    }
    paths.kubeconfig.write_text(yaml.safe_dump(config))
    paths.kubeconfig.chmod(0o600)
    return paths.kubeconfig
