"""A thin async Kubernetes client for the operator's writes.

Server-side apply with one field manager for every child object, deletes that ignore
"already gone", and merge/JSON patches. A semaphore bounds concurrent requests so that a
burst of reconciles (1,000 bots at start-up) never floods the API server.

Requests go straight through one aiohttp session (connection settings and credentials from
kubernetes_asyncio's config loaders). The generated ApiClient was measurably expensive per
request: its session trusts the environment, so every request looked up proxies and
`~/.netrc` in a thread, and every body was walked twice (sanitize, deserialize).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from tradebot_operator.kube.resources import Resource, resource_of

FIELD_MANAGER = "tradebot-operator"
Manifest = dict[str, Any]
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
MAX_ERROR_MESSAGE = 1000


def status_message(body: bytes | str | None) -> str | None:
    """The ``message`` of a Kubernetes ``Status`` response body (None if it is not one)."""
    if not body:
        return None
    try:
        status = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    message = status.get("message") if isinstance(status, dict) else None
    return str(message) if message else None


PARTIAL_METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


class KubeApiError(ApiException):
    """An error response of the API server, told by the server's own words.

    An ApiException (``status``, ``reason``, raw ``body`` as the generated client sets
    them, so ``except ApiException`` and ``err.status`` work unchanged), whose text is the
    Status body's ``message`` instead of the raw body: it goes into conditions and logs.
    """

    def __init__(self, status: int, reason: str | None, body: bytes | None) -> None:
        super().__init__(status=status, reason=reason)
        self.body = body
        text = body.decode(errors="replace").strip() if body else ""
        self.message: str = (status_message(body) or text)[:MAX_ERROR_MESSAGE]
        """The Status body's message (else the body's text; "" when there was none)."""

    def __str__(self) -> str:
        code = f"{self.status} {self.reason}" if self.reason else str(self.status)
        return f"{self.message} ({code})" if self.message else f"HTTP {code}"


def error_message(exc: BaseException) -> str:
    """One line for a condition or a log: the API server's message for an API error (also
    one raised by the generated client, whose text embeds the raw body), else the type
    and text of the exception."""
    if isinstance(exc, KubeApiError):
        return str(exc)
    if isinstance(exc, ApiException):
        return str(KubeApiError(exc.status, exc.reason, exc.body))
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_MESSAGE]


def _ssl_context(cfg: client.Configuration) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, keyfile=cfg.key_file)
    if not cfg.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class KubeClient:
    def __init__(
        self, cfg: client.Configuration, max_concurrency: int = 16, timeout: float = 60
    ) -> None:
        self._cfg = cfg
        self._host = str(cfg.host).rstrip("/")
        self._slots = asyncio.Semaphore(max_concurrency)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_concurrency, ssl=_ssl_context(cfg)),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )

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
        return cls(cfg, max_concurrency)

    async def close(self) -> None:
        await self._session.close()

    async def _headers(self, content_type: str, accept: str = "application/json") -> dict[str, str]:
        headers = {"Accept": accept, "Content-Type": content_type}
        # Refreshes an expiring service-account or exec token when the loader set a hook.
        auth = await self._cfg.auth_settings()
        bearer = auth.get("BearerToken")
        if bearer and bearer.get("value"):
            headers["Authorization"] = str(bearer["value"])
        return headers

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        want_body: bool = True,
        accept: str = "application/json",
    ) -> Manifest:
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        headers = await self._headers(content_type, accept)
        async with (
            self._slots,
            self._session.request(
                method,
                self._host + path,
                params=query or None,
                data=data,
                headers=headers,
                proxy=self._cfg.proxy or None,
                server_hostname=self._cfg.tls_server_name or None,
            ) as resp,
        ):
            if resp.status >= 400:
                raise KubeApiError(resp.status, resp.reason, await resp.read())
            if not want_body:  # applies: the response (with managedFields) is not needed
                return {}
            result = await resp.json(content_type=None)
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
            content_type=APPLY,
            want_body=False,
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
        return await self._call("PATCH", path, body=patch, content_type=MERGE)

    async def patch_json(
        self, res: Resource, namespace: str | None, name: str, ops: list[dict[str, Any]]
    ) -> None:
        """RFC 6902 patch; a failing `test` op surfaces as ApiException 422."""
        path = res.object_path(namespace, name)
        await self._call("PATCH", path, body=ops, content_type=JSON_PATCH, want_body=False)

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

    async def get_metadata(self, res: Resource, namespace: str, name: str) -> Manifest | None:
        """The object's metadata only (PartialObjectMetadata: no data, no spec); None on
        404. For Secrets: the server never sends their values."""
        try:
            return await self._call(
                "GET", res.object_path(namespace, name), accept=PARTIAL_METADATA
            )
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
                want_body=False,
            )
        except ApiException as err:
            if err.status == 404:
                return False
            raise
        return True
