"""A thin JSON client over kubernetes_asyncio: plain dicts in, plain dicts out.

The runner handles pod specs as the API server's JSON (camelCase keys) because it mirrors
them into files, env and status; going through the generated models would mean converting
back and forth for every field.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

JSON = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


@dataclass(frozen=True)
class ClusterInfo:
    """What a pod's own kubeconfig needs: the API server URL and how to trust it."""

    server: str
    ca_pem: bytes | None
    insecure: bool


def cluster_info(kubeconfig: Path) -> ClusterInfo:
    cfg = yaml.safe_load(kubeconfig.read_text())
    current = cfg.get("current-context")
    contexts = {c["name"]: c["context"] for c in cfg.get("contexts", [])}
    cluster_name = contexts[current]["cluster"] if current in contexts else None
    clusters = {c["name"]: c["cluster"] for c in cfg["clusters"]}
    cl = clusters[cluster_name] if cluster_name in clusters else cfg["clusters"][0]["cluster"]
    ca: bytes | None = None
    if "certificate-authority-data" in cl:
        ca = base64.b64decode(cl["certificate-authority-data"])
    elif "certificate-authority" in cl:
        path = Path(cl["certificate-authority"])
        if not path.is_absolute():
            path = kubeconfig.parent / path
        ca = path.read_bytes()
    return ClusterInfo(
        server=str(cl["server"]), ca_pem=ca, insecure=bool(cl.get("insecure-skip-tls-verify"))
    )


def is_status(exc: BaseException, *codes: int) -> bool:
    return isinstance(exc, ApiException) and exc.status in codes


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api

    @classmethod
    async def from_kubeconfig(cls, kubeconfig: Path) -> Kube:
        cfg = client.Configuration()
        await config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        return cls(client.ApiClient(configuration=cfg))

    async def close(self) -> None:
        await self.api.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        request_timeout: float = 30,
    ) -> JSON:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        result = await self.api.call_api(
            path,
            method,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            response_types_map={200: "object", 201: "object", 202: "object"},
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _request_timeout=request_timeout,
        )
        return result if isinstance(result, dict) else {}

    async def get(self, path: str, **query: str) -> JSON:
        return await self.request("GET", path, query=query)

    async def watch(self, path: str, query: dict[str, str]) -> AsyncIterator[JSON]:
        """Yield watch events ({type, object}) until the server closes the stream."""
        resp = await self.api.call_api(
            path,
            "GET",
            query_params=[*query.items(), ("watch", "true")],
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=int(query.get("timeoutSeconds", "300")) + 30,
        )
        try:
            if resp.status != 200:
                raise ApiException(status=resp.status, reason=await resp.text())
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            resp.release()
