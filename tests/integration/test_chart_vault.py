"""The chart's Vault values reach the operator as the settings the README documents
(rendered by the real helm binary, no cluster): address, auth mount, audience, TTLs, its
own login (Secret-mounted token or Kubernetes-auth role) and the CA bundle, whose file the
operator reads at start and renders into the bots' runtime configs."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.procs import REPO_ROOT, hack_bin
from tradebot_operator.settings import OperatorSettings

pytestmark = pytest.mark.integration

CHART = REPO_ROOT / "charts" / "tradebot"
MOUNTS = "/var/run/secrets/tradebot"


def _operator(*args: str) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    out = subprocess.run(
        [str(hack_bin("helm")), "template", "tb", str(CHART), "-n", "tradebot-system", *args],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    (deployment,) = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod["volumes"]}
    return env, mounts, volumes


def test_token_secret_and_ca_bundle(tmp_path: Path) -> None:
    env, mounts, volumes = _operator(
        "--set", "vault.address=https://vault.example:8200",
        "--set", "networkPolicy.vault.cidrs={10.30.0.0/24}",
        "--set", "vault.authMount=k8s-prod",
        "--set", "vault.audience=vault-prod",
        "--set", "vault.roleTokenTtl=10m",
        "--set", "vault.operatorAuth.tokenSecret=tradebot-vault-token",
        "--set", "vault.caConfigMap=vault-ca",
    )  # fmt: skip
    assert volumes["vault-operator-token"]["secret"]["secretName"] == "tradebot-vault-token"
    assert volumes["vault-ca"]["configMap"] == {
        "name": "vault-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]
    }  # fmt: skip
    assert mounts["vault-ca"]["readOnly"] and mounts["vault-operator-token"]["readOnly"]
    # The mounted files, at the paths the env names (moved under tmp_path).
    ca_pem = "-----BEGIN CERTIFICATE-----\nMIIBchart\n-----END CERTIFICATE-----\n"
    for mount, name, text in (("vault-ca", "ca.crt", ca_pem),
                              ("vault-operator-token", "token", "s.token")):  # fmt: skip
        path = tmp_path / mounts[mount]["mountPath"].lstrip("/") / name
        path.parent.mkdir(parents=True)
        path.write_text(text)
    local = {k: v.replace(MOUNTS, f"{tmp_path}{MOUNTS}") for k, v in env.items()}
    settings = OperatorSettings.from_env(local)
    assert settings.vault_managed
    assert settings.vault_address == "https://vault.example:8200"
    assert (settings.vault_auth_mount, settings.vault_audience) == ("k8s-prod", "vault-prod")
    assert settings.vault_role_token_ttl == "10m"
    assert Path(settings.vault_token_file or "").read_text() == "s.token"
    assert settings.vault_ca_pem == ca_pem  # rendered into the bots' runtime configs


def test_kubernetes_auth_role_for_the_operator() -> None:
    env, _, volumes = _operator(
        "--set", "vault.address=https://vault.example:8200",
        "--set", "networkPolicy.vault.cidrs={10.30.0.0/24}",
        "--set", "vault.operatorAuth.role=tradebot-operator",
    )  # fmt: skip
    assert "vault-operator-token" not in volumes and "vault-ca" not in volumes
    settings = OperatorSettings.from_env(env)
    assert settings.vault_managed and settings.vault_operator_role == "tradebot-operator"
    assert settings.vault_token_file is None and settings.vault_ca_pem is None
