"""Materialise a pod's volumes under its directory and keep them in sync.

configMap, secret, downwardAPI and projected (serviceAccountToken, configMap, secret,
downwardAPI) volumes are written with the atomic writer and rewritten when their content
changes (ConfigMap edits, token refreshes); emptyDir is a plain directory. Other kinds
(hostPath, PVCs, ...) become an empty directory with a warning.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import Any

from podrunner import atomic
from podrunner.envvars import EnvError, field_value
from podrunner.kube import Kube, is_status
from podrunner.paths import PodPaths
from podrunner.tokens import PodTokens

log = logging.getLogger("podrunner.volumes")

DEFAULT_MODE = 0o644


class VolumeError(Exception):
    """A volume cannot be set up yet (missing ConfigMap/Secret): the pod waits."""


async def _object(kube: Kube, namespace: str, resource: str, name: str) -> dict[str, Any] | None:
    try:
        return await kube.get(f"/api/v1/namespaces/{namespace}/{resource}/{name}")
    except Exception as exc:
        if is_status(exc, 404):
            return None
        raise


def _select(
    data: dict[str, bytes], items: list[dict[str, Any]] | None, mode: int, what: str, optional: bool
) -> atomic.Payload:
    if not items:
        return {key: (value, mode) for key, value in data.items()}
    out: atomic.Payload = {}
    for item in items:
        if item["key"] not in data:
            if optional:
                continue
            raise VolumeError(f"key {item['key']} not in {what}")
        out[item["path"]] = (data[item["key"]], int(item.get("mode", mode)))
    return out


async def _keyed(
    kube: Kube, namespace: str, source: dict[str, Any], secret: bool, mode: int
) -> atomic.Payload:
    name = source["secretName"] if secret and "secretName" in source else source["name"]
    resource = "secrets" if secret else "configmaps"
    optional = bool(source.get("optional"))
    obj = await _object(kube, namespace, resource, name)
    if obj is None:
        if optional:
            return {}
        raise VolumeError(f"{resource[:-1]} {namespace}/{name} not found")
    if secret:
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    else:
        data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return _select(data, source.get("items"), mode, f"{resource[:-1]} {name}", optional)


def _downward(pod: dict[str, Any], items: list[dict[str, Any]], mode: int) -> atomic.Payload:
    out: atomic.Payload = {}
    for item in items:
        if "fieldRef" in item:
            value = field_value(pod, item["fieldRef"]["fieldPath"])
        else:
            ref = item["resourceFieldRef"]
            containers = {c["name"]: c for c in pod["spec"]["containers"]}
            container = containers.get(ref.get("containerName", ""), {})
            kind, _, res = ref["resource"].partition(".")
            value = str(((container.get("resources") or {}).get(kind) or {}).get(res, "0"))
        out[item["path"]] = (value.encode(), int(item.get("mode", mode)))
    return out


class PodVolumes:
    def __init__(self, kube: Kube, pod: dict[str, Any], paths: PodPaths) -> None:
        self.kube = kube
        self.pod = pod
        self.paths = paths
        self.tokens = PodTokens(kube, pod)
        self._written: dict[str, str] = {}

    async def _payload(self, volume: dict[str, Any]) -> atomic.Payload | None:
        ns = self.pod["metadata"]["namespace"]
        if "configMap" in volume:
            src = volume["configMap"]
            return await _keyed(
                self.kube, ns, src, False, int(src.get("defaultMode", DEFAULT_MODE))
            )
        if "secret" in volume:
            src = volume["secret"]
            return await _keyed(self.kube, ns, src, True, int(src.get("defaultMode", DEFAULT_MODE)))
        if "downwardAPI" in volume:
            src = volume["downwardAPI"]
            mode = int(src.get("defaultMode", DEFAULT_MODE))
            return _downward(self.pod, src.get("items") or [], mode)
        if "projected" in volume:
            return await self._projected(volume["projected"])
        return None

    async def _projected(self, projected: dict[str, Any]) -> atomic.Payload:
        ns = self.pod["metadata"]["namespace"]
        mode = int(projected.get("defaultMode", DEFAULT_MODE))
        out: atomic.Payload = {}
        for source in projected.get("sources") or []:
            if "serviceAccountToken" in source:
                sat = source["serviceAccountToken"]
                token = await self.tokens.get(sat.get("audience", ""), sat.get("expirationSeconds"))
                out[sat["path"]] = (token.encode(), 0o600 if mode == DEFAULT_MODE else mode)
            elif "configMap" in source:
                out.update(await _keyed(self.kube, ns, source["configMap"], False, mode))
            elif "secret" in source:
                out.update(await _keyed(self.kube, ns, source["secret"], True, mode))
            elif "downwardAPI" in source:
                out.update(_downward(self.pod, source["downwardAPI"].get("items") or [], mode))
        return out

    async def sync(self) -> None:
        """Write every volume whose content changed; raises VolumeError if one cannot be."""
        for volume in self.pod["spec"].get("volumes") or []:
            name = volume["name"]
            directory = self.paths.volume(name)
            try:
                payload = await self._payload(volume)
            except EnvError as exc:
                raise VolumeError(f"volume {name}: {exc}") from exc
            if payload is None:
                if "emptyDir" not in volume and name not in self._written:
                    log.warning("volume %s: unsupported kind, using an empty directory", name)
                directory.mkdir(parents=True, exist_ok=True)
                self._written[name] = ""
                continue
            digest = hashlib.sha256(
                repr(sorted((k, v, m) for k, (v, m) in payload.items())).encode()
            ).hexdigest()
            if self._written.get(name) == digest:
                continue
            atomic.write(directory, payload)
            if name in self._written:
                log.info("volume %s of %s updated", name, self.pod["metadata"]["name"])
            self._written[name] = digest
