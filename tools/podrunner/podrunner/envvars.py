"""A container's environment, resolved the way kubelet does, plus the runner's conventions.

Conventions (what a program running here can rely on):
- env values (and command args) that start with one of the container's mountPaths are
  rewritten to the remapped path under $PODRUNNER_ROOT, so TRADEBOT_CONFIG_PATH=/etc/...
  points at the materialised file;
- every containerPort gets a free local port: env values that equal a declared containerPort
  (e.g. TRADEBOT_METRICS_PORT=9090) are rewritten to that port, and named ports are also
  exported as PODRUNNER_PORT_<NAME> (upper case, '-' -> '_'); probes hit the local port;
- KUBECONFIG points at a kubeconfig that authenticates as the pod's ServiceAccount (its
  projected token file, kept fresh) when the pod mounts a service-account token;
- TMPDIR is the remapped /tmp when the pod mounts something there.
The runner's own environment is not inherited (only PATH), so no admin credential leaks.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

from podrunner.kube import Kube, is_status
from podrunner.paths import Remapper

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
POD_IP = "127.0.0.1"


class EnvError(Exception):
    """A referenced ConfigMap/Secret key is missing: CreateContainerConfigError."""


def expand(value: str, env: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REF.sub(sub, value)


def field_value(pod: dict[str, Any], path: str) -> str:
    meta, spec = pod["metadata"], pod["spec"]
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": POD_IP,
        "status.podIPs": POD_IP,
        "status.hostIP": POD_IP,
        "status.hostIPs": POD_IP,
    }
    if path in simple:
        return str(simple[path] or "")
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = sorted((meta.get(path.split(".")[1]) or {}).items())
        return "\n".join(f'{k}="{v}"' for k, v in items)
    raise EnvError(f"unsupported fieldRef {path}")


async def _object_data(kube: Kube, namespace: str, kind: str, name: str) -> dict[str, str]:
    resource = "secrets" if kind == "secret" else "configmaps"
    obj = await kube.get(f"/api/v1/namespaces/{namespace}/{resource}/{name}")
    if kind == "secret":
        return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    return dict(obj.get("data") or {})


async def _key_ref(kube: Kube, namespace: str, kind: str, ref: dict[str, Any]) -> str | None:
    try:
        data = await _object_data(kube, namespace, kind, ref["name"])
    except Exception as exc:
        if is_status(exc, 404) and ref.get("optional"):
            return None
        if is_status(exc, 404):
            raise EnvError(f"{kind} {ref['name']} not found") from exc
        raise
    if ref["key"] not in data:
        if ref.get("optional"):
            return None
        raise EnvError(f"key {ref['key']} not found in {kind} {ref['name']}")
    return data[ref["key"]]


def _resource_value(container: dict[str, Any], ref: dict[str, Any]) -> str:
    kind, _, name = ref["resource"].partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(name)
    return str(value) if value is not None else "0"


async def pod_env(kube: Kube, pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """envFrom then env, in order, with $(VAR) expansion: exactly the pod's declared env."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("configmap", "configMapRef"), ("secret", "secretRef")):
            ref = source.get(key)
            if not ref:
                continue
            try:
                data = await _object_data(kube, namespace, kind, ref["name"])
            except Exception as exc:
                if is_status(exc, 404) and ref.get("optional"):
                    continue
                if is_status(exc, 404):
                    raise EnvError(f"{kind} {ref['name']} not found") from exc
                raise
            env.update({prefix + k: v for k, v in data.items()})
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(str(var.get("value", "")), env)
            continue
        source = var["valueFrom"]
        value: str | None
        if "fieldRef" in source:
            value = field_value(pod, source["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in source:
            value = _resource_value(container, source["resourceFieldRef"])
        elif "secretKeyRef" in source:
            value = await _key_ref(kube, namespace, "secret", source["secretKeyRef"])
        elif "configMapKeyRef" in source:
            value = await _key_ref(kube, namespace, "configmap", source["configMapKeyRef"])
        else:
            raise EnvError(f"unsupported valueFrom for {name}")
        if value is not None:
            env[name] = value
    return env


def port_env(container: dict[str, Any], ports: dict[int, int]) -> dict[str, str]:
    out = {}
    for declared in container.get("ports") or []:
        if declared.get("name") and int(declared["containerPort"]) in ports:
            key = "PODRUNNER_PORT_" + re.sub(r"[^A-Z0-9]", "_", declared["name"].upper())
            out[key] = str(ports[int(declared["containerPort"])])
    return out


def process_env(
    *,
    pod: dict[str, Any],
    container: dict[str, Any],
    declared: dict[str, str],
    remapper: Remapper,
    ports: dict[int, int],
    kubeconfig: Path | None,
    python: str,
) -> dict[str, str]:
    """The env the local process gets: declared env rewritten by the conventions above."""
    port_values = {str(c): str(local) for c, local in ports.items()}
    env = {
        "PATH": os.pathsep.join(
            [str(Path(python).parent), os.environ.get("PATH", "/usr/bin:/bin")]
        ),
        "HOSTNAME": pod["metadata"]["name"],
        "HOME": str(remapper.rootfs),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    for name, value in declared.items():
        env[name] = port_values.get(value, remapper.remap(value))
    env.update(port_env(container, ports))
    env["PODRUNNER_ROOT"] = str(remapper.rootfs)
    env["PODRUNNER_POD_IP"] = POD_IP
    if "/tmp" in remapper.mounts:
        env["TMPDIR"] = str(remapper.path("/tmp"))
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return env
