"""Exchange credentials for ccxt, from where the RuntimeConfig says (never from env).

* ``none``: no keys (paper bots on accounts without credentials).
* ``file``: one file per ccxt credential (apiKey, secret, password, uid) in a directory:
  the Secret volume the operator mounts, or the Vault agent injector's output.
* ``vault``: Kubernetes auth with the projected service-account token, then a KV v2 read.
  The token path is ``$TRADEBOT_VAULT_TOKEN_PATH`` when set, else the config's.

A paper bot on a sandbox or live account never gets that account's keys
(``credentials_refusal``): the operator refuses the pairing, and the runtime does not
load them either (bootstrap.open_exchange), so no key can reach ccxt and no shard trades.

Paths are container paths; under the pod runner (``$PODRUNNER_ROOT`` set) an absolute path
that does not exist is looked up below the container's root there.

The values are returned to the caller (who hands them to ccxt) and are never logged.

``CredentialsProvider`` keeps them current while the runtime runs:

* the Vault token is renewed when two thirds of its TTL have passed; a failed renewal
  (max TTL reached, token revoked) logs in again with the projected token;
* the KV v2 metadata (versions only, never values) is polled every ``poll_interval_s``;
  a new version is read and handed to the ``on_change`` callbacks, which swap the ccxt
  instance's apiKey/secret without a restart (key rotation);
* while Vault is unreachable the cached keys stay in use until the Vault token expires;
  then the callbacks receive ``{}`` (the ccxt instance loses its keys, so a private call
  fails locally with AuthenticationError) and ``usable`` turns False (the app sends no
  orders): fail closed. ``problem()`` is the heartbeat message, and the gauge
  ``tradebot_credentials_usable`` says the same to Prometheus;
* with the file source (agent injector) a changed file is re-read the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from prometheus_client import Counter, Gauge

from tradebot_contracts import env
from tradebot_contracts.runtime_config import (
    CredentialsConfig,
    RuntimeConfig,
    VaultCredentials,
    VaultLogin,
)

DEFAULT_POLL_SECONDS: Final = 30.0
VAULT_HTTP_TIMEOUT: Final = 5
VAULT_CALL_TIMEOUT: Final = 10.0

log = logging.getLogger("tradebot.credentials")

CREDENTIALS_USABLE = Gauge(
    "tradebot_credentials_usable",
    "1 while exchange credentials are usable (0: Vault token expired, private calls stop).",
)
CREDENTIALS_ROTATIONS = Counter(
    "tradebot_credentials_rotations_total", "New credential versions picked up without restart."
)
VAULT_ERRORS = Counter(
    "tradebot_vault_errors_total", "Failed Vault calls of the runtime, by operation.", ["op"]
)
CCXT_CREDENTIALS: Final = ("apiKey", "secret", "password", "uid")


class CredentialsError(RuntimeError):
    """Credentials are configured but cannot be read (the message never holds a value)."""


def credentials_refusal(config: RuntimeConfig) -> str | None:
    """Why this pod must not load its account's credentials, or None. A paper bot on a
    sandbox or live account would otherwise place that account's orders with them (real
    money on a live one), whatever its mode says."""
    if config.mode == "paper" and config.account_mode != "paper":
        return (
            f"refused: paper bot on {config.account_mode} account {config.account}; its "
            "credentials are not loaded and nothing is traded (a paper bot needs a paper account)"
        )
    return None


def container_path(path: str, environ: dict[str, str] | None = None) -> Path:
    """``path`` as seen by this process (PODRUNNER_ROOT prefixing for the pod runner)."""
    e = os.environ if environ is None else environ
    candidate = Path(path)
    root = e.get(env.PODRUNNER_ROOT)
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


def vault_token_path(vault: VaultLogin, environ: dict[str, str] | None = None) -> Path:
    e = os.environ if environ is None else environ
    return container_path(e.get(env.VAULT_TOKEN_PATH) or vault.token_path, environ)


def vault_verify(vault: VaultLogin) -> bool | str:
    """``verify`` for hvac/requests: the config's CA bundle (``caCert``, rendered by the
    operator from its Vault CA setting) written once to a file in the temp dir (the pod's
    writable /tmp), or True (the system trust store) when there is none."""
    if not vault.ca_cert:
        return True
    digest = hashlib.sha256(vault.ca_cert.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"tradebot-vault-ca-{digest}.pem"
    if not path.is_file() or path.read_text() != vault.ca_cert:
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(vault.ca_cert)
        partial.replace(path)
    return str(path)


def read_vault(vault: VaultCredentials, environ: dict[str, str] | None = None) -> dict[str, str]:
    import hvac

    jwt = vault_token_path(vault, environ).read_text().strip()
    client = hvac.Client(url=vault.address, verify=vault_verify(vault))
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


# -- live provider ------------------------------------------------------------------------

Listener = Callable[[Mapping[str, str]], None]


class VaultSession:
    """Synchronous hvac session of one pod (called from worker threads only): the
    Kubernetes-auth login and its renewal; ``version``/``read`` need a KV v2 secret."""

    def __init__(
        self,
        vault: VaultLogin,
        environ: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import hvac

        self.vault = vault
        self.environ = environ
        self.clock = clock
        self.client = hvac.Client(
            url=vault.address, timeout=VAULT_HTTP_TIMEOUT, verify=vault_verify(vault)
        )
        self.ttl = 0.0
        self.renewed_at = 0.0
        self.expires_at = 0.0
        self.renewable = False

    def _lease(self, auth: Mapping[str, Any]) -> None:
        now = self.clock()
        self.ttl = float(auth.get("lease_duration") or 0)
        self.renewable = bool(auth.get("renewable"))
        self.renewed_at = now
        # lease_duration 0: a token without expiry (root); treat as valid for a day.
        self.expires_at = now + (self.ttl if self.ttl > 0 else 86400.0)

    def login(self) -> None:
        jwt = vault_token_path(self.vault, self.environ).read_text().strip()
        response = self.client.auth.kubernetes.login(
            self.vault.role, jwt, mount_point=self.vault.auth_mount
        )
        self._lease(response["auth"])

    def renew_due(self) -> bool:
        return self.ttl > 0 and self.clock() >= self.renewed_at + self.ttl * 2 / 3

    def renew(self) -> None:
        """Renew the token; log in again when renewal is refused (max TTL, revoked)."""
        from hvac.exceptions import VaultError

        try:
            if not self.renewable:
                raise VaultError("token not renewable")
            response = self.client.auth.token.renew_self()
            auth = response["auth"]
            # At max_ttl Vault caps the lease; log in again before it ends instead.
            if float(auth.get("lease_duration") or 0) < self.ttl / 3:
                raise VaultError("renewal capped by max TTL")
            self._lease(auth)
        except VaultError:
            self.login()

    def _kv(self) -> VaultCredentials:
        if not isinstance(self.vault, VaultCredentials):
            raise CredentialsError("this Vault session has no KV secret to read")
        return self.vault

    def version(self) -> int:
        """Current version of the secret, from the metadata endpoint (no values)."""
        kv = self._kv()
        response = self.client.secrets.kv.v2.read_secret_metadata(
            path=kv.path, mount_point=kv.kv_mount
        )
        return int(response["data"]["current_version"])

    def read(self) -> tuple[int, dict[str, str]]:
        kv = self._kv()
        response: dict[str, Any] = self.client.secrets.kv.v2.read_secret_version(
            path=kv.path, mount_point=kv.kv_mount, raise_on_deleted_version=True
        )
        data = response["data"]["data"]
        version = int(response["data"]["metadata"]["version"])
        missing = [k for k in kv.keys.values() if k not in data]
        if missing:
            raise CredentialsError(f"vault secret {kv.kv_mount}/{kv.path} lacks {missing}")
        values = {credential: str(data[key]) for credential, key in kv.keys.items()}
        data.clear()
        return version, values


class CredentialsProvider:
    """Current exchange credentials of this pod; see the module docstring."""

    def __init__(
        self,
        config: CredentialsConfig,
        *,
        poll_interval_s: float | None = None,
        environ: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        e = os.environ if environ is None else environ
        self.config = config
        self.environ = environ
        self.clock = clock
        self.poll_interval_s = poll_interval_s or float(
            e.get(env.CREDENTIALS_POLL_SECONDS) or DEFAULT_POLL_SECONDS
        )
        self.session: VaultSession | None = None
        self.version: int | None = None
        self._values: dict[str, str] = {}
        self._file_stamp: tuple[tuple[str, float, int], ...] = ()
        self._listeners: list[Listener] = []
        self.usable = True
        self.outage_since: float | None = None
        self.error: str | None = None

    # -- accessors ---------------------------------------------------------------------

    def current(self) -> dict[str, str]:
        """ccxt fields to use now ({} when fail-closed)."""
        return dict(self._values) if self.usable else {}

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def problem(self) -> str | None:
        """Heartbeat message when credentials are degraded (never a value)."""
        if not self.usable:
            return f"credentials unusable, private calls stopped: {self.error or 'unknown'}"
        if self.outage_since is not None:
            left = ""
            if self.session is not None:
                left = f"; token expires in {max(0.0, self.session.expires_at - self.clock()):.0f}s"
            return f"vault unreachable, using cached credentials{left}"
        return None

    def _emit(self) -> None:
        values = self.current()
        for listener in self._listeners:
            try:
                listener(values)
            except Exception:
                log.exception("credentials listener failed")

    # -- start and loop -----------------------------------------------------------------

    async def _thread(self, func: Callable[[], Any]) -> Any:
        return await asyncio.wait_for(asyncio.to_thread(func), VAULT_CALL_TIMEOUT)

    async def start(self) -> dict[str, str]:
        """First load (raises CredentialsError/hvac errors like load_credentials)."""
        source = self.config.source
        if source == "vault":
            if self.config.vault is None:
                raise CredentialsError("credentials source vault without vault settings")
            session = VaultSession(self.config.vault, self.environ, self.clock)
            await self._thread(session.login)
            self.version, self._values = await self._thread(session.read)
            self.session = session
        elif source == "file":
            if self.config.file is None:
                raise CredentialsError("credentials source file without a directory")
            self._file_stamp = self._stamp()
            self._values = read_directory(self.config.file.directory, self.environ)
        CREDENTIALS_USABLE.set(1)
        return dict(self._values)

    async def run(self) -> None:
        """Renew, poll and rotate until cancelled; never raises."""
        if self.config.source == "none":
            return
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # pragma: no cover - tick handles its own errors
                log.exception("credentials refresh failed")

    async def tick(self) -> None:
        """One refresh step (the loop body; tests call it directly)."""
        if self.config.source == "file":
            self._tick_file()
            return
        session = self.session
        if session is None:
            return
        try:
            if not self.usable or self.outage_since is not None:
                await self._thread(session.login)  # after an outage: fresh identity
            elif session.renew_due():
                await self._thread(session.renew)
            version = await self._thread(session.version)
            if version != self.version or not self.usable:
                self.version, self._values = await self._thread(session.read)
                if self.outage_since is None and self.usable:
                    CREDENTIALS_ROTATIONS.inc()
                    log.info("credentials rotated", extra={"version": self.version})
                self._recovered()
                self._emit()
            elif self.outage_since is not None:
                self._recovered()
        except Exception as exc:
            self._failed(exc)

    def _recovered(self) -> None:
        if self.outage_since is not None or not self.usable:
            log.info("vault reachable again, credentials usable")
        self.outage_since = None
        self.error = None
        self.usable = True
        CREDENTIALS_USABLE.set(1)

    def _failed(self, exc: BaseException) -> None:
        """Vault failed: keep cached keys until the token expires, then fail closed."""
        VAULT_ERRORS.labels("refresh").inc()
        now = self.clock()
        self.error = f"vault: {type(exc).__name__}"
        if self.outage_since is None:
            self.outage_since = now
            log.warning("vault unreachable, using cached credentials", extra={"error": self.error})
        session = self.session
        if self.usable and session is not None and now >= session.expires_at:
            self.usable = False
            CREDENTIALS_USABLE.set(0)
            log.error("vault token expired: private exchange calls stopped (fail closed)")
            self._emit()

    # -- file source (agent injector) ---------------------------------------------------

    def _stamp(self) -> tuple[tuple[str, float, int], ...]:
        assert self.config.file is not None
        base = container_path(self.config.file.directory, self.environ)
        stamps = []
        for name in CCXT_CREDENTIALS:
            file = base / name
            if file.is_file():
                st = file.stat()
                stamps.append((name, st.st_mtime, st.st_size))
        return tuple(stamps)

    def _tick_file(self) -> None:
        assert self.config.file is not None
        stamp = self._stamp()
        if stamp == self._file_stamp:
            return
        try:
            values = read_directory(self.config.file.directory, self.environ)
        except (CredentialsError, OSError) as exc:
            log.warning("credential files unreadable, keeping the previous keys: %s", exc)
            return
        self._file_stamp = stamp
        if values != self._values:
            self._values = values
            CREDENTIALS_ROTATIONS.inc()
            log.info("credentials rotated (files changed)")
            self._emit()


def apply_to_exchange(exchange: Any, values: Mapping[str, str]) -> None:
    """Swap the ccxt instance's keys in place ({}: remove them, private calls then fail
    locally with AuthenticationError before anything is sent)."""
    for name in CCXT_CREDENTIALS:
        setattr(exchange, name, values.get(name, ""))
