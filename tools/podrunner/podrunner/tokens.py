"""Service-account tokens from the TokenRequest API, bound to the pod, refreshed early.

Like kubelet: a token is replaced once 80% of its lifetime has passed (the lifetime the pod
asked for; the API server may issue a longer one).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from podrunner import timefmt
from podrunner.kube import Kube

log = logging.getLogger("podrunner.tokens")

DEFAULT_EXPIRATION = 3600
REFRESH_FRACTION = 0.8


@dataclass
class _Cached:
    token: str
    refresh_at: float


def refresh_delay(requested: int, issued_lifetime: float) -> float:
    return REFRESH_FRACTION * min(float(requested), issued_lifetime)


class PodTokens:
    def __init__(self, kube: Kube, pod: dict[str, Any]) -> None:
        self.kube = kube
        self.pod = pod
        self._cache: dict[tuple[str, int], _Cached] = {}

    async def get(self, audience: str, expiration: int | None) -> str:
        seconds = int(expiration or DEFAULT_EXPIRATION)
        key = (audience, seconds)
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() < cached.refresh_at:
            return cached.token
        meta, spec = self.pod["metadata"], self.pod["spec"]
        sa = spec.get("serviceAccountName") or "default"
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                # Empty audiences: the API server's own audience (a token for the API).
                "audiences": [audience] if audience else [],
                "expirationSeconds": seconds,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        result = await self.kube.request(
            "POST", f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{sa}/token", body=body
        )
        status = result["status"]
        lifetime = (timefmt.parse(status["expirationTimestamp"]) - timefmt.now()).total_seconds()
        delay = refresh_delay(seconds, lifetime)
        self._cache[key] = _Cached(status["token"], time.monotonic() + delay)
        log.info(
            "token for %s/%s (sa %s, audience %s): refresh in %.0fs",
            meta["namespace"], meta["name"], sa, audience or "<api>", delay,
        )  # fmt: skip
        return str(status["token"])
