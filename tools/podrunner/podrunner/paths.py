"""Where a pod lives on disk, and how absolute paths in its spec map into that place.

    <workdir>/pods/<uid>/volumes/<volume>/...       materialised volumes
    <workdir>/pods/<uid>/rootfs/<container>/<mountPath>  -> symlink to the volume (or subPath)
    <workdir>/pods/<uid>/kubeconfig, ca.crt         the pod's own API access
    <workdir>/logs/<namespace>_<pod>_<uid>/<container>/<restartCount>.log

A container's rootfs only holds its mounts. The program sees the remapped paths through env
(env values and args that start with a mountPath are rewritten, see remap) and can remap
anything else itself with $PODRUNNER_ROOT.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PodPaths:
    root: Path
    logs: Path

    @classmethod
    def for_pod(cls, pods_dir: Path, logs_dir: Path, pod: dict[str, Any]) -> PodPaths:
        meta = pod["metadata"]
        return cls(
            root=pods_dir / meta["uid"],
            logs=logs_dir / f"{meta['namespace']}_{meta['name']}_{meta['uid']}",
        )

    def volume(self, name: str) -> Path:
        return self.root / "volumes" / name

    def rootfs(self, container: str) -> Path:
        return self.root / "rootfs" / container

    def log(self, container: str, restart: int) -> Path:
        return self.logs / container / f"{restart}.log"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def ca(self) -> Path:
        return self.root / "ca.crt"

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class Remapper:
    """Rewrites absolute paths under a container's mountPaths into its rootfs."""

    def __init__(self, rootfs: Path, mount_paths: list[str]) -> None:
        self.rootfs = rootfs
        # Longest first: a mount at /a/b wins over one at /a.
        self.mounts = sorted((m.rstrip("/") or "/" for m in mount_paths), key=len, reverse=True)

    def path(self, mount_path: str) -> Path:
        return self.rootfs / mount_path.lstrip("/")

    def remap(self, value: str) -> str:
        for mount in self.mounts:
            if value == mount:
                return str(self.rootfs) + value
            if value.startswith(mount + "/"):
                # A file that exists on the host but not in the pod (the runner's own venv
                # or checkout living under /tmp, say) is the host's: leave it alone.
                if os.path.exists(value) and not os.path.exists(str(self.rootfs) + value):
                    return value
                return str(self.rootfs) + value
        return value

    def remap_arg(self, arg: str) -> str:
        """Also handles --flag=/mount/path."""
        if "=" in arg and not arg.startswith("/"):
            key, _, value = arg.partition("=")
            return f"{key}={self.remap(value)}"
        return self.remap(arg)


def link_mounts(paths: PodPaths, container: dict[str, Any]) -> Remapper:
    """Create the container's rootfs: one symlink per volumeMount into the pod's volumes."""
    rootfs = paths.rootfs(container["name"])
    mounts = container.get("volumeMounts") or []
    remapper = Remapper(rootfs, [m["mountPath"] for m in mounts])
    rootfs.mkdir(parents=True, exist_ok=True)
    for mount in mounts:
        target = paths.volume(mount["name"])
        if mount.get("subPath"):
            target = target / mount["subPath"]
        link = remapper.path(mount["mountPath"])
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            continue
        os.symlink(target, link)
    return remapper
