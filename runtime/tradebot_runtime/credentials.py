"""Exchange credentials for ccxt, from where the RuntimeConfig says (never from env).

* ``none``: no keys (paper bots on accounts without credentials).
* ``file``: one file per ccxt credential (apiKey, secret, password, uid) in a directory:
  the Secret volume the operator mounts, or the Vault agent injector's output.
* ``vault``: Kubernetes auth with the projected service-account token, then a KV v2 read.
  The token path is ``$TRADEBOT_VAULT_TOKEN_PATH`` when set, else the config's.

Paths are container paths; under the pod runner (``$PODRUNNER_ROOT`` set) an absolute path
that does not exist is looked up below the container's root there.

The values are returned to the caller (who hands them to ccxt) and are never logged.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Final

from tradebot_operator.api.runtime_config import CredentialsConfig, VaultCredentials

ENV_VAULT_TOKEN_PATH: Final = "TRADEBOT_VAULT_TOKEN_PATH"
ENV_PODRUNNER_ROOT: Final = "PODRUNNER_ROOT"
CCXT_CREDENTIALS: Final = ("apiKey", "secret", "password", "uid")


class CredentialsError(RuntimeError):
    """Credentials are configured but cannot be read (the message never holds a value)."""


def container_path(path: str, environ: dict[str, str] | None = None) -> Path:
    """``path`` as seen by this process (PODRUNNER_ROOT prefixing for the pod runner)."""
    env = os.environ if environ is None else environ
    candidate = Path(path)
    root = env.get(ENV_PODRUNNER_ROOT)
    if root and candidate.is_absolute() and not candidate.exists():
        return Path(root) / candidate.relative_to("/")
    return candidate


def read_directory(directory: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    base = container_path(directory, environ)
    found: dict[str, str] = {}
    for name in CCXT_CREDENTIALS:
        file = base / name
        if file.is_file():
            found[name] = file.read_text().strip()
    if "apiKey" not in found or "secret" not in found:
        raise CredentialsError(f"credential files apiKey and secret expected in {base}")
    return found


def vault_token_path(vault: VaultCredentials, environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return container_path(env.get(ENV_VAULT_TOKEN_PATH) or vault.token_path, environ)


def read_vault(vault: VaultCredentials, environ: dict[str, str] | None = None) -> dict[str, str]:
    import hvac

    jwt = vault_token_path(vault, environ).read_text().strip()
    client = hvac.Client(url=vault.address)
    client.auth.kubernetes.login(vault.role, jwt, mount_point=vault.auth_mount)
    secret: dict[str, Any] = client.secrets.kv.v2.read_secret_version(
        path=vault.path, mount_point=vault.kv_mount, raise_on_deleted_version=True
    )
    data = secret["data"]["data"]
    missing = [k for k in vault.keys.values() if k not in data]
    if missing:
        raise CredentialsError(f"vault secret {vault.kv_mount}/{vault.path} lacks {missing}")
    return {credential: str(data[key]) for credential, key in vault.keys.items()}


async def load_credentials(config: CredentialsConfig) -> dict[str, str]:
    """ccxt constructor fields (apiKey, secret, ...) or {} for ``none``."""
    if config.source == "none":
        return {}
    if config.source == "file":
        if config.file is None:
            raise CredentialsError("credentials source file without a directory")
        return read_directory(config.file.directory)
    if config.vault is None:
        raise CredentialsError("credentials source vault without vault settings")
    return await asyncio.to_thread(read_vault, config.vault)
