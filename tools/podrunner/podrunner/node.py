"""The runner's own Node: registration, heartbeat (node Lease + Ready condition), exit.

hack/kwokctl.yaml limits kwok to the nodes annotated kwok.x-k8s.io/node=fake, which this
node is not. The runner still creates and renews its node Lease *before* the Node exists:
the Lease tells a second runner the node is taken, and a kwok started with its default
--manage-all-nodes=true defers to an unexpired holder (it claims the node once the Lease
looks stale, so that default is not safe on its own).

The node carries the label tradebot.io/pod-runner=true and the taint
tradebot.io/pod-runner=true:NoSchedule, so only pods that ask for it land here:

    nodeSelector: {tradebot.io/pod-runner: "true"}   # or kubernetes.io/hostname: <node>
    tolerations: [{key: tradebot.io/pod-runner, operator: Exists, effect: NoSchedule}]

(TradingBot.spec.runtime.nodeSelector / .tolerations pass both through to the Deployment.)
"""

from __future__ import annotations

import asyncio
import logging
import platform
import time
from typing import Any

from podrunner import NODE_LABEL, NODE_TAINT_KEY, timefmt
from podrunner.holder import HOLDER_ANNOTATION, Holder, NodeHeld, judge, local_identity, refusal
from podrunner.kube import JSON, MERGE_PATCH, Kube, is_status
from podrunner.settings import Settings

log = logging.getLogger("podrunner.node")

LEASE_NS = "kube-node-lease"
NODE_IP = "127.0.0.1"
# Kept on exit in "notready" mode so kwok does not take the node over once it stops renewing.
PARKED_LEASE_SECONDS = 86400


def node_manifest(name: str) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "pod-runner",
                NODE_LABEL: "true",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"taints": [{"key": NODE_TAINT_KEY, "value": "true", "effect": "NoSchedule"}]},
    }


def node_status(ready: bool, reason: str, message: str) -> JSON:
    stamp = timefmt.rfc3339()

    def cond(kind: str, status: str, why: str, msg: str) -> JSON:
        return {
            "type": kind,
            "status": status,
            "reason": why,
            "message": msg,
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }

    resources = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "ok"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "ok"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "ok"),
            cond("Ready", "True" if ready else "False", reason, message),
        ],
        "addresses": [
            {"type": "InternalIP", "address": NODE_IP},
            {"type": "Hostname", "address": platform.node() or "localhost"},
        ],
        "nodeInfo": {
            "architecture": "amd64",
            "operatingSystem": "linux",
            "kubeletVersion": "podrunner",
            "kubeProxyVersion": "",
            "containerRuntimeVersion": "podrunner://local-process",
            "osImage": platform.platform(),
            "kernelVersion": platform.release(),
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
    }


class NodeAgent:
    def __init__(self, kube: Kube, settings: Settings) -> None:
        self.kube = kube
        self.settings = settings
        self.name = settings.node
        self._transition: dict[str, str] = {}
        self.me = local_identity(settings.workdir)
        self.lost = asyncio.Event()
        """Set when another runner took the node Lease over: stop without touching the node."""

    @property
    def _lease_path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases/{self.name}"

    @property
    def _node_path(self) -> str:
        return f"/api/v1/nodes/{self.name}"

    async def _read_lease(self) -> JSON | None:
        try:
            return await self.kube.get(self._lease_path)
        except Exception as exc:
            if not is_status(exc, 404):
                raise
            return None

    async def acquire(self) -> None:
        """Take the node Lease unless another live runner holds it (NodeHeld). A Lease
        that changes between our read and our write (409) is judged again."""
        for _ in range(5):
            lease = await self._read_lease()
            verdict, why = judge(lease, self.me, self.name, timefmt.now())
            if verdict == "held":
                annotations = ((lease or {}).get("metadata") or {}).get("annotations") or {}
                other = Holder.from_annotation(str(annotations.get(HOLDER_ANNOTATION, "")))
                same_host = other is not None and other.host == self.me.host
                raise NodeHeld(refusal(self.name, LEASE_NS, why, other if same_host else None))
            if verdict == "stale":
                log.warning("taking node %s over: %s", self.name, why)
            version = (lease or {}).get("metadata", {}).get("resourceVersion")
            try:
                await self._hold_lease(resource_version=version, create=lease is None)
                log.info("holding node Lease %s/%s as %s", LEASE_NS, self.name, self.me.identity)
                return
            except Exception as exc:
                if not is_status(exc, 409):
                    raise
        raise NodeHeld(f"refusing to start: node Lease {LEASE_NS}/{self.name} keeps changing")

    async def _renew(self, owner_uid: str | None = None, **hold: Any) -> bool:
        """Renew the Lease only while it is ours (compare-and-swap on its resourceVersion);
        False, with ``lost`` set, when another pod runner holds it now. A holder that is
        not a pod runner (kwok, after we missed renewals) is displaced."""
        lease = await self._read_lease()
        verdict, why = judge(lease, self.me, self.name, timefmt.now())
        if verdict in ("held", "stale"):
            holder = ((lease or {}).get("spec") or {}).get("holderIdentity")
            log.error(
                "node Lease %s/%s is now held by %r (%s): another pod runner took the node "
                "over; stopping our pods and leaving the node to it",
                LEASE_NS, self.name, holder, why,
            )  # fmt: skip
            self.lost.set()
            return False
        if verdict == "free" and lease is not None:
            log.warning("node Lease %s/%s: %s; taking it back", LEASE_NS, self.name, why)
        version = (lease or {}).get("metadata", {}).get("resourceVersion")
        await self._hold_lease(owner_uid, resource_version=version, create=lease is None, **hold)
        return True

    async def register(self) -> None:
        await self.acquire()  # first: kwok must see an unexpired holder other than itself
        try:
            node = await self.kube.get(self._node_path)
            manifest = node_manifest(self.name)
            await self.kube.request(
                "PATCH",
                self._node_path,
                body={"metadata": manifest["metadata"], "spec": manifest["spec"]},
                content_type=MERGE_PATCH,
            )
            log.info("adopted existing node %s", self.name)
        except Exception as exc:
            if not is_status(exc, 404):
                raise
            node = await self.kube.request("POST", "/api/v1/nodes", body=node_manifest(self.name))
            log.info("registered node %s", self.name)
        await self._patch_status(ready=True, reason="KubeletReady", message="pod runner is up")
        if not await self._renew(owner_uid=str(node["metadata"]["uid"])):
            raise NodeHeld(f"lost node Lease {LEASE_NS}/{self.name} while registering")

    async def _hold_lease(
        self,
        owner_uid: str | None = None,
        duration: int | None = None,
        *,
        resource_version: str | None = None,
        create: bool = False,
        parked: bool = False,
    ) -> None:
        """Write the Lease as ours; ``resource_version``: only if unchanged since read (409
        otherwise); ``create``: POST only (409 when another runner was first)."""
        spec = {
            "holderIdentity": self.me.identity,
            "leaseDurationSeconds": duration or self.settings.lease_duration,
            "renewTime": timefmt.micro(),
        }
        meta: dict[str, Any] = {
            "name": self.name,
            "namespace": LEASE_NS,
            "annotations": {HOLDER_ANNOTATION: self.me.annotation(parked=parked)},
        }
        if resource_version:
            meta["resourceVersion"] = resource_version
        if create:
            await self.kube.request(
                "POST",
                f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases",
                body={"metadata": meta, "spec": spec},
            )
            return
        if owner_uid:
            # Like kubelet: the Lease goes away with the Node.
            meta["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": owner_uid}
            ]
        try:
            await self.kube.request(
                "PATCH", self._lease_path, body={"metadata": meta, "spec": spec},
                content_type=MERGE_PATCH,
            )  # fmt: skip
        except Exception as exc:
            if not is_status(exc, 404):
                raise
            await self.kube.request(
                "POST",
                f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases",
                body={"metadata": meta, "spec": spec},
            )

    async def _patch_status(self, *, ready: bool, reason: str, message: str) -> None:
        status = node_status(ready, reason, message)
        for condition in status["conditions"]:
            # lastTransitionTime only moves when the status flips.
            key = f"{condition['type']}={condition['status']}"
            previous = self._transition.get(condition["type"])
            if previous and previous.startswith(key + "@"):
                condition["lastTransitionTime"] = previous.split("@", 1)[1]
            else:
                self._transition[condition["type"]] = f"{key}@{condition['lastTransitionTime']}"
        await self.kube.request(
            "PATCH", f"{self._node_path}/status", body={"status": status}, content_type=MERGE_PATCH
        )

    async def heartbeat(self) -> None:
        """Renew the Lease and refresh the Ready condition until cancelled."""
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.settings.heartbeat_period)
            try:
                if not await self._renew():
                    return
                late, renewed = time.monotonic() - renewed, time.monotonic()
                if late > self.settings.lease_duration / 2:
                    log.warning("node Lease renewed %.0fs after the previous renewal (duration "
                                "%ds): this host is overloaded", late,
                                self.settings.lease_duration)  # fmt: skip
                await self._patch_status(
                    ready=True, reason="KubeletReady", message="pod runner is up"
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("node heartbeat failed (will retry): %s", exc)

    async def shutdown(self) -> None:
        if self.lost.is_set():
            return  # the node is another runner's now
        try:
            if not await self._renew():
                return  # taken over since our last heartbeat: not ours to delete or park
            if self.settings.on_exit == "delete":
                await self.kube.request("DELETE", self._node_path)
                log.info("deleted node %s (its pods will be garbage-collected)", self.name)
                await self.kube.request("DELETE", self._lease_path)
            else:
                await self._patch_status(
                    ready=False, reason="PodRunnerStopped", message="pod runner stopped"
                )
                await self._hold_lease(duration=PARKED_LEASE_SECONDS, parked=True)
                log.info("marked node %s NotReady", self.name)
        except Exception as exc:
            if not is_status(exc, 404):
                log.warning("could not clean up node %s: %s", self.name, exc)
