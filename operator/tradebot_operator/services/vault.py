"""The operator's thin Vault/OpenBao service (hvac): everything the operator does with
Vault. Writes and removes the per-bot policy and Kubernetes-auth role that the pure
tradebot_operator.builders.vault_policy builds, and checks that an ExchangeAccount's KV v2
secret holds the mapped keys.

hvac is synchronous: every call runs in a worker thread (asyncio.to_thread), at most
``settings.vault_concurrency`` at once and each bounded by a timeout.

Secret VALUES never leave ``_key_presence``: the check reads the secret, keeps only which
mapped key names are present and drops the data at once; messages, conditions, events and
logs carry paths and key names only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import hvac
import requests
from hvac.exceptions import Forbidden, InvalidPath, Unauthorized, VaultError

from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.builders.vault_policy import BotGrant, mapped_keys
from tradebot_operator.kube.conditions import ConditionStatus, ConditionUpdate
from tradebot_operator.settings import OperatorSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

CALL_TIMEOUT_SECONDS = 15.0
HTTP_TIMEOUT_SECONDS = 10
CHECK_CACHE_SECONDS = 10.0
CREDENTIALS_READY = "CredentialsReady"


class VaultUnavailable(RuntimeError):
    """Vault could not be reached or refused the operator (message holds no secret)."""


def CredentialsCheck(status: ConditionStatus, reason: str, message: str) -> ConditionUpdate:
    """The CredentialsReady condition of a checked account."""
    return ConditionUpdate(CREDENTIALS_READY, status, reason, message)


class VaultAdmin:
    """The operator's own session with Vault (token file or Kubernetes auth)."""

    def __init__(self, settings: OperatorSettings) -> None:
        if settings.vault_address is None:
            raise ValueError("VaultAdmin needs settings.vault_address")
        self.settings = settings
        self._client: hvac.Client | None = None
        self._lock = threading.Lock()
        self._slots = asyncio.Semaphore(settings.vault_concurrency)
        self._checks: dict[tuple[str, str, int, str, str], tuple[float, ConditionUpdate]] = {}

    # -- session ----------------------------------------------------------------------

    def _new_client(self) -> hvac.Client:
        s = self.settings
        verify: bool | str = s.vault_ca_cert if s.vault_ca_cert else True
        client = hvac.Client(url=s.vault_address, verify=verify, timeout=HTTP_TIMEOUT_SECONDS)
        if s.vault_token_file is not None:
            client.token = Path(s.vault_token_file).read_text().strip()
        elif s.vault_operator_role is not None:
            jwt = Path(s.vault_operator_jwt_file).read_text().strip()
            client.auth.kubernetes.login(s.vault_operator_role, jwt, mount_point=s.vault_auth_mount)
        else:  # pragma: no cover - guarded by OperatorSettings.vault_managed
            raise VaultUnavailable("the operator has no Vault credentials configured")
        return client

    def _call(self, action: Callable[[hvac.Client], T]) -> T:
        """Run ``action`` with a logged-in client; log in again once if refused (expired
        token, rotated token file)."""
        for attempt in (0, 1):
            with self._lock:
                if self._client is None:
                    self._client = self._new_client()
                client = self._client
            try:
                return action(client)
            except (Forbidden, Unauthorized):
                if attempt:
                    raise
                with self._lock:
                    self._client = None
        raise AssertionError("unreachable")  # pragma: no cover

    async def run(self, action: Callable[[hvac.Client], T]) -> T:
        """``action`` in a worker thread, bounded in concurrency and time."""
        async with self._slots:
            try:
                return await asyncio.wait_for(
                    asyncio.to_thread(self._call, action), CALL_TIMEOUT_SECONDS
                )
            except (requests.RequestException, TimeoutError, OSError) as exc:
                raise VaultUnavailable(f"vault unreachable: {type(exc).__name__}") from None

    # -- per-bot policy and role --------------------------------------------------------

    async def sync_bot(self, grant: BotGrant) -> None:
        """Write (or, when the bot needs no secret, remove) the bot's policy and role."""
        if not grant.secrets:
            await self.remove_bot(grant.name)
            return
        mount = self.settings.vault_auth_mount

        def write(client: hvac.Client) -> None:
            client.sys.create_or_update_policy(name=grant.name, policy=grant.policy)
            client.auth.kubernetes.create_role(mount_point=mount, **grant.role())

        await self.run(write)
        log.info(
            "vault policy and role %s written for %s/%s (%d secrets)",
            grant.name, grant.namespace, grant.bot, len(grant.secrets),
        )  # fmt: skip

    async def remove_bot(self, name: str) -> None:
        """Delete the role first (no new logins), then the policy; absent is fine."""
        mount = self.settings.vault_auth_mount

        def delete(client: hvac.Client) -> None:
            with contextlib.suppress(InvalidPath):
                client.auth.kubernetes.delete_role(name, mount_point=mount)
            with contextlib.suppress(InvalidPath):
                client.sys.delete_policy(name)

        await self.run(delete)
        log.info("vault policy and role %s removed", name)

    # -- account credentials check ------------------------------------------------------

    async def check_account(self, account: ExchangeAccount) -> ConditionUpdate | None:
        """CredentialsReady of a vault account (None: the account does not use Vault).
        Cached for a few seconds per account generation and secret path."""
        credentials = account.spec.credentials
        if credentials is None or credentials.vault is None:
            return None
        vault = credentials.vault
        meta = account.metadata
        key = (meta.namespace or "", meta.name, int(meta.generation or 0), vault.mount, vault.path)
        cached = self._checks.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CHECK_CACHE_SECONDS:
            return cached[1]
        wanted = mapped_keys(account)
        where = f"{vault.mount}/{vault.path}"
        try:
            present = await self.run(lambda c: _key_presence(c, vault.mount, vault.path, wanted))
        except InvalidPath:
            result = CredentialsCheck("False", "VaultSecretNotFound", f"no secret at {where}")
        except Forbidden:
            result = CredentialsCheck(
                "Unknown", "VaultCheckForbidden",
                f"the operator's Vault policy may not read {where}",
            )  # fmt: skip
        except (VaultUnavailable, VaultError) as exc:
            result = CredentialsCheck("Unknown", "VaultUnavailable", str(exc)[:200])
        else:
            missing = [k for k in wanted if k not in present]
            if missing:
                result = CredentialsCheck(
                    "False", "VaultKeysMissing", f"secret {where} lacks keys {missing}"
                )
            else:
                result = CredentialsCheck(
                    "True", "VaultKeysPresent", f"secret {where} holds keys {wanted}"
                )
        if len(self._checks) > 4096:
            self._checks.clear()
        self._checks[key] = (now, result)
        return result


def _key_presence(client: hvac.Client, mount: str, path: str, wanted: list[str]) -> set[str]:
    """Which of ``wanted`` the latest version holds; the values are dropped here."""
    response: dict[str, Any] = client.secrets.kv.v2.read_secret_version(
        path=path, mount_point=mount, raise_on_deleted_version=True
    )
    data = response.get("data", {}).get("data") or {}
    present = {key for key in wanted if key in data and data[key] not in (None, "")}
    data.clear()
    response.clear()
    return present
