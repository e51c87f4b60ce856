"""The operator's thin Vault/OpenBao service (hvac): everything the operator does with
Vault. Writes and removes the per-bot policy and Kubernetes-auth role that the pure
tradebot_operator.builders.vault_policy builds, and checks that an ExchangeAccount's KV v2
secret holds the mapped keys.

hvac is synchronous: every call runs in a worker thread (asyncio.to_thread), at most
``settings.vault_concurrency`` at once and each bounded by a timeout.

Grants outlive their bot when its finalizer was removed by hand or Vault was down for
longer than the finalizer waits; then a new ServiceAccount of the same name could log in
with the old role. ``sweep`` removes every ``tradebot-bot-*`` policy and role that no
TradingBot accounts for (``orphaned_grants`` is the pure decision): the expected names come
from the bots the operator knows, and a grant whose policy names its bot (the owner
comment, builders/vault_policy.py) goes only once the API server says that bot does not
exist. controllers/grants.py runs it at start-up and every
``settings.vault_sweep_interval_seconds``.

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import hvac
import requests
from hvac.exceptions import Forbidden, InvalidPath, Unauthorized, VaultError

from tradebot_contracts.names import VAULT_BOT_PREFIX, VAULT_REDIS_SUFFIX, vault_role_name
from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.builders.vault_policy import BotGrant, grant_owner, mapped_keys
from tradebot_operator.kube.conditions import ConditionStatus, ConditionUpdate
from tradebot_operator.settings import OperatorSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
BotKey = tuple[str, str]
"""(namespace, TradingBot name)."""

CALL_TIMEOUT_SECONDS = 15.0
HTTP_TIMEOUT_SECONDS = 10
CHECK_CACHE_SECONDS = 10.0
CREDENTIALS_READY = "CredentialsReady"


class VaultUnavailable(RuntimeError):
    """Vault could not be reached or refused the operator (message holds no secret)."""


def CredentialsCheck(status: ConditionStatus, reason: str, message: str) -> ConditionUpdate:
    """The CredentialsReady condition of a checked account."""
    return ConditionUpdate(CREDENTIALS_READY, status, reason, message)


class BotDirectory(Protocol):
    """What the sweep asks about TradingBots (controllers/grants.py answers from the
    indexes and the API server)."""

    def known(self) -> set[BotKey]:
        """The bots in the operator's index (no API read; empty before it is filled)."""
        ...

    async def listed(self) -> set[BotKey]:
        """Every bot the API server holds in the watched namespaces, those being deleted
        included (their finalizer still needs the grant's name)."""
        ...

    async def exists(self, namespace: str, name: str) -> bool:
        """One GET: False only on 404."""
        ...


@dataclass(frozen=True)
class GrantSweep:
    """What one sweep does with the per-bot grants that no live bot accounts for."""

    remove: tuple[str, ...] = ()
    """Removed at once: no owner comment, and the operator watches every namespace."""
    confirm: dict[str, BotKey] = field(default_factory=dict)
    """Name -> the bot its owner comment names: removed once that bot is confirmed gone."""
    kept: tuple[str, ...] = ()
    """Not the operator's to judge: another namespace than the watched ones, or no owner
    comment while only some namespaces are watched."""


def orphaned_grants(
    policies: Iterable[str],
    roles: Iterable[str],
    policy_texts: Mapping[str, str | None],
    live_bots: Iterable[BotKey],
    namespaces: Iterable[str] = (),
) -> GrantSweep:
    """The pure decision of the sweep.

    ``policies``, ``roles``: names Vault listed (any name; only ``tradebot-bot-*`` count);
    ``policy_texts``: HCL of the listed policies (missing: unread or absent);
    ``live_bots``: every bot known to exist, those being deleted included;
    ``namespaces``: the watched namespaces (empty: all).

    Names are hashed, so they are never inverted: a grant is kept when its name is one a
    live bot would get. Otherwise its policy's owner comment names the bot; a comment that
    does not give back the grant's own name is not trusted."""
    watched = set(namespaces)
    live = set(live_bots)
    expected = {vault_role_name(ns, bot) for ns, bot in live}
    names = {n for n in (*policies, *roles) if n.startswith(VAULT_BOT_PREFIX)}
    remove: list[str] = []
    confirm: dict[str, BotKey] = {}
    kept: list[str] = []
    for name in sorted(names - expected):
        owner = grant_owner(policy_texts.get(name))
        if owner is not None and vault_role_name(*owner) != name:
            owner = None
        if owner is not None:
            if watched and owner[0] not in watched:
                kept.append(name)
            else:
                confirm[name] = owner
        elif watched:
            kept.append(name)
        else:
            remove.append(name)
    return GrantSweep(tuple(remove), confirm, tuple(kept))


def _listed(client: hvac.Client, database_mount: str) -> set[str]:
    """Role names of a database secrets engine (empty when it has none)."""
    try:
        response = client.adapter.list(f"/v1/{database_mount}/roles") or {}
    except InvalidPath:
        return set()
    return set((response.get("data") or {}).get("keys") or [])


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
        self._kept_told: set[str] = set()
        """Grants the sweep leaves to others, already logged."""

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
        if grant.needs_nothing:
            await self.remove_bot(grant.name)
            return
        mount = self.settings.vault_auth_mount

        def write(client: hvac.Client) -> None:
            # Login roles first: the policy that lets the bot read them comes after.
            for role in grant.database_roles:
                client.adapter.post(
                    f"/v1/{grant.database_mount}/roles/{role.name}", json=role.request()
                )
            client.sys.create_or_update_policy(name=grant.name, policy=grant.policy)
            client.auth.kubernetes.create_role(mount_point=mount, **grant.role())

        await self.run(write)
        log.info(
            "vault policy and role %s written for %s/%s (%d secrets, %d login roles)",
            grant.name, grant.namespace, grant.bot, len(grant.secrets),
            len(grant.database_roles),
        )  # fmt: skip

    async def remove_bot(self, name: str) -> None:
        """Delete the role first (no new logins), then the policy; absent is fine."""
        mount = self.settings.vault_auth_mount

        database = self.settings.vault_database_mount

        def delete(client: hvac.Client) -> None:
            with contextlib.suppress(InvalidPath):
                client.auth.kubernetes.delete_role(name, mount_point=mount)
            if database is not None:  # the login roles: no new journal or Redis users
                for role in (name, name + VAULT_REDIS_SUFFIX):
                    with contextlib.suppress(InvalidPath):
                        client.adapter.delete(f"/v1/{database}/roles/{role}")
            with contextlib.suppress(InvalidPath):
                client.sys.delete_policy(name)

        await self.run(delete)
        log.info("vault policy and role %s removed", name)

    # -- sweep of grants whose bot is gone ----------------------------------------------

    async def list_bot_grants(self) -> tuple[set[str], set[str]]:
        """(policy names, role names) starting with VAULT_BOT_PREFIX; a database-engine
        login role counts under the grant name it belongs to."""
        mount = self.settings.vault_auth_mount
        database = self.settings.vault_database_mount

        def listing(client: hvac.Client) -> tuple[set[str], set[str]]:
            listed = client.sys.list_policies() or {}
            data = listed.get("data") or listed
            policies = set(data.get("policies") or data.get("keys") or [])
            try:
                roles = set((client.auth.kubernetes.list_roles(mount_point=mount) or {})
                            .get("keys") or [])  # fmt: skip
            except InvalidPath:  # no role at all
                roles = set()
            if database is not None:
                roles |= {n.removesuffix(VAULT_REDIS_SUFFIX) for n in _listed(client, database)}
            prefixed = {n for n in policies if n.startswith(VAULT_BOT_PREFIX)}
            return prefixed, {n for n in roles if n.startswith(VAULT_BOT_PREFIX)}

        return await self.run(listing)

    async def read_policy(self, name: str) -> str | None:
        """The policy's HCL; None if absent."""

        def read(client: hvac.Client) -> str | None:
            try:
                response = client.sys.read_policy(name=name) or {}
            except InvalidPath:
                return None
            data = response.get("data") or response
            rules = data.get("rules") or data.get("policy")
            return str(rules) if rules else None

        return await self.run(read)

    async def sweep(self, bots: BotDirectory, namespaces: Iterable[str] = ()) -> list[str]:
        """Remove the per-bot policies and roles that belong to no TradingBot; the names
        removed. Never raises: Vault or the API server unreachable is logged and the next
        sweep tries again (nothing is removed on a doubt)."""
        try:
            return await self._sweep(bots, tuple(namespaces))
        except Exception as exc:
            log.warning("vault grant sweep failed, retried next time: %s", str(exc)[:300])
            return []

    async def _sweep(self, bots: BotDirectory, namespaces: tuple[str, ...]) -> list[str]:
        # Vault first, the bots second: a grant is only written for a bot that exists, so
        # every listed grant whose bot is missing from the LIST that follows lost its bot.
        policies, roles = await self.list_bot_grants()
        names = policies | roles
        live = set(bots.known())
        if not names - {vault_role_name(*key) for key in live}:
            return []  # steady state: every grant is a known bot's, no API read
        live |= await bots.listed()
        unknown = names - {vault_role_name(*key) for key in live}
        if not unknown:
            return []
        to_read = sorted(unknown & policies)
        found = await asyncio.gather(*(self.read_policy(name) for name in to_read))
        texts = dict(zip(to_read, found, strict=True))
        plan = orphaned_grants(policies, roles, texts, live, namespaces)
        doomed = [(name, "no owner comment and no TradingBot of that name") for name in plan.remove]
        for name, (ns, bot) in plan.confirm.items():
            if not await bots.exists(ns, bot):
                doomed.append((name, f"TradingBot {ns}/{bot} does not exist"))
        for name in sorted(set(plan.kept) - self._kept_told):  # once per name and process
            log.info("vault grant %s names no bot of the watched namespaces; kept", name)
            self._kept_told.add(name)
        removed = []
        for name, why in doomed:
            log.warning("removing orphaned vault policy and role %s: %s", name, why)
            try:
                await self.remove_bot(name)
            except Exception as exc:
                log.warning("removing orphaned vault grant %s failed: %s", name, str(exc)[:300])
            else:
                removed.append(name)
        return removed

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
