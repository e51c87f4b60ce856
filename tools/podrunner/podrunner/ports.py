"""Per-pod local ports: every pod's containerPorts get free ports on 127.0.0.1.

All pods share one network namespace here (the machine's), so two pods declaring
containerPort 9090 would collide. The runner gives each declared port (and each numeric
probe port) a free local port; the program learns it from env (see envvars.port_env).
"""

from __future__ import annotations

import socket
from typing import Any

_taken: set[int] = set()


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _taken:  # not handed to another pod that has not bound it yet
            _taken.add(port)
            return port


def release(ports: dict[int, int]) -> None:
    _taken.difference_update(ports.values())


def _probe_ports(container: dict[str, Any]) -> list[int]:
    out = []
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = container.get(kind) or {}
        for handler in ("httpGet", "tcpSocket"):
            port = (probe.get(handler) or {}).get("port")
            if isinstance(port, int):
                out.append(port)
    return out


def allocate(pod: dict[str, Any]) -> dict[int, int]:
    """containerPort -> local port, for every port any container of the pod declares."""
    mapping: dict[int, int] = {}
    for container in pod["spec"].get("containers", []):
        declared = [int(p["containerPort"]) for p in container.get("ports") or []]
        for port in [*declared, *_probe_ports(container)]:
            if port not in mapping:
                mapping[port] = free_port()
    return mapping


def resolve(container: dict[str, Any], port: int | str, mapping: dict[int, int]) -> int | None:
    """A probe's port (number or name) as the local port the process listens on."""
    if isinstance(port, str) and not port.isdigit():
        for declared in container.get("ports") or []:
            if declared.get("name") == port:
                return mapping.get(int(declared["containerPort"]))
        return None
    return mapping.get(int(port))
