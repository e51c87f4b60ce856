"""A thin async Kubernetes client for the operator's writes.

Server-side apply with one field manager for every child object, deletes that ignore
"already gone", and merge patches. A semaphore bounds concurrent requests so that a burst
of reconciles (1,000 bots at start-up) never floods the API server.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from tradebot_operator.kube.resources import Resource, resource_of

FIELD_MANAGER = "tradebot-operator"
Manifest = dict[str, Any]


class KubeClient:
    def __init__(self, api: client.ApiClient, max_concurrency: int = 16) -> None:
        self._api = api
        self._slots = asyncio.Semaphore(max_concurrency)

    @classmethod
    async def from_environment(
        cls, kubeconfig: str | None = None, max_concurrency: int = 16
    ) -> KubeClient:
        """In a pod: the service account; elsewhere: the given or default kubeconfig."""
        cfg = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        # The client's pool defaults to 5 connections per CPU; let the semaphore be the bound.
        cfg.connection_pool_maxsize = max_concurrency
        return cls(client.ApiClient(configuration=cfg), max_concurrency)

    async def close(self) -> None:
        await self._api.close()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Manifest:
        async with self._slots:
            result = await self._api.call_api(
                path,
                method,
                query_params=query or [],
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body,
                response_types_map={200: "object", 201: "object", 202: "object"},
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
            )
        return result if isinstance(result, dict) else {}

    async def apply(self, manifest: Manifest, *, force: bool = True) -> Manifest:
        """Server-side apply: the API server merges our fields and owns conflicts."""
        res = resource_of(manifest)
        meta = manifest["metadata"]
        return await self._call(
            "PATCH",
            res.object_path(meta.get("namespace"), meta["name"]),
            body=manifest,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true" if force else "false")],
            content_type="application/apply-patch+yaml",
        )

    async def patch_merge(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        patch: Manifest,
        *,
        subresource: str | None = None,
    ) -> Manifest:
        path = res.object_path(namespace, name) + (f"/{subresource}" if subresource else "")
        return await self._call(
            "PATCH", path, body=patch, content_type="application/merge-patch+json"
        )

    async def create(self, manifest: Manifest) -> Manifest:
        res = resource_of(manifest)
        return await self._call(
            "POST", res.collection_path(manifest["metadata"].get("namespace")), body=manifest
        )

    async def get(self, res: Resource, namespace: str | None, name: str) -> Manifest | None:
        try:
            return await self._call("GET", res.object_path(namespace, name))
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    async def list(
        self, res: Resource, namespace: str | None, label_selector: str = ""
    ) -> list[Manifest]:
        query = [("labelSelector", label_selector)] if label_selector else []
        out = await self._call("GET", res.collection_path(namespace), query=query)
        return list(out.get("items", []))

    async def delete(self, res: Resource, namespace: str | None, name: str) -> bool:
        """Delete in the background (children go through garbage collection).

        Returns False when the object was already gone.
        """
        try:
            await self._call(
                "DELETE",
                res.object_path(namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except ApiException as err:
            if err.status == 404:
                return False
            raise
        return True
