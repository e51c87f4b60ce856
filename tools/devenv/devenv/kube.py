"""kubectl bound to one kubeconfig, plus the few API helpers the demo needs."""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devenv.procs import DevenvError

FIELD_MANAGER = "tradebot-devenv"


@dataclass(frozen=True)
class Kube:
    kubeconfig: str
    kubectl_bin: str

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.kubectl_bin, "--kubeconfig", self.kubeconfig, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise DevenvError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def apply(self, objects: list[dict[str, Any]], namespace: str | None = None) -> None:
        """Server-side apply (one field manager, conflicts forced: the demo owns these)."""
        args = ["apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}"]
        if namespace:
            args += ["-n", namespace]
        self.kubectl(*args, "-f", "-", input=yaml.safe_dump_all(objects))

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def server_and_ca(self) -> tuple[str, bytes]:
        """API server URL and CA bundle (what Vault needs for TokenReview)."""
        cfg = yaml.safe_load(Path(self.kubeconfig).read_text())
        cl = cfg["clusters"][0]["cluster"]
        if "certificate-authority-data" in cl:
            ca = base64.b64decode(cl["certificate-authority-data"])
        else:
            ca = Path(cl["certificate-authority"]).read_bytes()
        return str(cl["server"]), ca

    def token(self, namespace: str, service_account: str, audience: str, duration: str) -> str:
        out = self.kubectl(
            "create", "token", service_account, "-n", namespace,
            f"--audience={audience}", f"--duration={duration}",
        )  # fmt: skip
        return out.stdout.strip()

    def ensure_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        self.apply(
            [{"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": name, "labels": labels or {}}}]
        )  # fmt: skip
