"""The bot's own journal (PostgreSQL) and Redis logins, issued by Vault's database secrets
engine (``<mount>/creds/<role>``; the operator writes the roles, builders/data_access.py).

The runtime config then holds only host, port and database; this module logs in to Vault
with the pod's projected token (the same Kubernetes-auth role as the exchange keys), takes
one login per role, renews each lease when two thirds of it have passed and takes a new
login when a renewal is refused or capped by the role's max TTL. A new login reaches its
users through ``on_change`` (the journal's pool then opens new connections with it; the
Redis client asks ``redis_credentials`` on every connect).

While Vault is unreachable the current logins stay in use until their lease ends; then
PostgreSQL refuses them (``VALID UNTIL``) and Vault revokes them, the journal becomes
unreachable and no order is placed (fail closed), until Vault is back. Passwords are never
logged, and ``Login`` leaves them out of its repr.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from redis.credentials import CredentialProvider

from tradebot_contracts.runtime_config import DataCredentialsConfig
from tradebot_runtime.credentials import VAULT_CALL_TIMEOUT, VAULT_ERRORS, VaultSession

log = logging.getLogger("tradebot.data_logins")

Kind = Literal["journal", "redis"]
MAX_TICK_SECONDS: Final = 30.0


@dataclass
class Login:
    """One issued login and its lease."""

    username: str
    password: str = field(repr=False)
    lease_id: str = field(repr=False)
    lease_s: float
    renewable: bool
    renewed_at: float

    def renew_due(self, now: float) -> bool:
        return now >= self.renewed_at + self.lease_s * 2 / 3


Listener = Callable[[Login], Awaitable[None]]


class DataLogins:
    """Current journal and Redis logins of this pod; see the module docstring."""

    def __init__(
        self,
        config: DataCredentialsConfig,
        *,
        environ: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.clock = clock
        self.session = VaultSession(config, environ, clock)
        self.logins: dict[Kind, Login] = {}
        self._listeners: dict[Kind, list[Listener]] = {"journal": [], "redis": []}
        self.error: str | None = None

    def roles(self) -> dict[Kind, str]:
        roles: dict[Kind, str] = {"journal": self.config.journal_role}
        if self.config.redis_role is not None:
            roles["redis"] = self.config.redis_role
        return roles

    @property
    def journal(self) -> Login:
        return self.logins["journal"]

    def on_change(self, kind: Kind, listener: Listener) -> None:
        self._listeners[kind].append(listener)

    def redis_credentials(self) -> CredentialProvider | None:
        """What the Redis client authenticates with (the current login at every connect);
        None when the installation gives no Redis users."""
        return _CurrentRedisLogin(self) if "redis" in self.roles() else None

    # -- Vault calls (worker threads) -----------------------------------------------------

    async def _thread(self, func: Callable[[], Any]) -> Any:
        return await asyncio.wait_for(asyncio.to_thread(func), VAULT_CALL_TIMEOUT)

    def _issue(self, role: str) -> Login:
        path = f"{self.config.database_mount}/creds/{role}"
        response: dict[str, Any] = self.session.client.read(path) or {}
        data = response.get("data") or {}
        if not data.get("username") or not data.get("password"):
            raise RuntimeError(f"vault returned no login for {path}")
        return Login(
            username=str(data["username"]),
            password=str(data["password"]),
            lease_id=str(response.get("lease_id") or ""),
            lease_s=float(response.get("lease_duration") or 0) or 3600.0,
            renewable=bool(response.get("renewable")),
            renewed_at=self.clock(),
        )

    def _renewed(self, login: Login) -> bool:
        """Renew the lease in place; False when Vault refused or capped it (take a new one)."""
        if not login.renewable or not login.lease_id:
            return False
        from hvac.exceptions import VaultError

        try:
            response = self.session.client.sys.renew_lease(lease_id=login.lease_id)
        except VaultError:
            return False
        granted = float((response or {}).get("lease_duration") or 0)
        if granted < login.lease_s / 3:  # capped by max_ttl: replace before it ends
            return False
        login.lease_s, login.renewed_at = granted, self.clock()
        return True

    # -- start and loop -----------------------------------------------------------------

    async def start(self) -> None:
        """Log in to Vault and take the first logins (raises when Vault refuses)."""
        await self._thread(self.session.login)
        for kind, role in self.roles().items():
            self.logins[kind] = await self._thread(functools.partial(self._issue, role))
            log.info("%s login issued by vault", kind, extra={"role": role})

    async def run(self) -> None:
        """Renew and replace until cancelled; never raises."""
        while True:
            leases = [login.lease_s for login in self.logins.values()] or [MAX_TICK_SECONDS]
            await asyncio.sleep(min(MAX_TICK_SECONDS, min(leases) / 6))
            await self.tick()

    async def tick(self) -> None:
        """One renewal step (the loop body; tests call it directly)."""
        try:
            if self.session.renew_due():
                await self._thread(self.session.renew)
            for kind, role in self.roles().items():
                login = self.logins[kind]
                if not login.renew_due(self.clock()):
                    continue
                if await self._thread(functools.partial(self._renewed, login)):
                    continue
                fresh = await self._thread(functools.partial(self._issue, role))
                self.logins[kind] = fresh
                log.info("%s login replaced (lease at its max TTL)", kind, extra={"role": role})
                for listener in self._listeners[kind]:
                    await listener(fresh)
            if self.error is not None:
                log.info("vault reachable again, journal and redis logins current")
            self.error = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            VAULT_ERRORS.labels("data_logins").inc()
            if self.error is None:
                log.warning(
                    "vault unreachable, keeping the journal and redis logins until their "
                    "lease ends: %s", type(exc).__name__,
                )  # fmt: skip
            self.error = f"vault: {type(exc).__name__}"


class _CurrentRedisLogin(CredentialProvider):
    def __init__(self, logins: DataLogins) -> None:
        self.logins = logins

    def get_credentials(self) -> tuple[str, str]:
        login = self.logins.logins["redis"]
        return login.username, login.password

    async def get_credentials_async(self) -> tuple[str, str]:
        return self.get_credentials()
