"""The installer's side of per-bot journal and Redis logins: Vault's database secrets
engine with one PostgreSQL and one Redis connection whose admin logins only OpenBao holds.
The operator then writes one role per bot there (it never sees these admin logins), and
each runtime pod takes its own short-lived login from it.

The journal's migrations are applied first with the tables' owner: per-bot logins may not
create tables, and the roles' creation statements write into ``journal_logins``."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit

from devenv.openbao import VaultServer

MOUNT = "database"
JOURNAL_CONNECTION = "tradebot-journal"
REDIS_CONNECTION = "tradebot-redis"
ALLOWED_ROLES = "tradebot-bot-*"


@dataclass(frozen=True)
class DataEngine:
    """What the operator is told (TRADEBOT_VAULT_DATABASE_MOUNT and friends)."""

    mount: str
    journal_connection: str
    redis_connection: str | None

    def operator_env(self) -> dict[str, str]:
        env = {
            "TRADEBOT_VAULT_DATABASE_MOUNT": self.mount,
            "TRADEBOT_VAULT_JOURNAL_CONNECTION": self.journal_connection,
        }
        if self.redis_connection is not None:
            env["TRADEBOT_VAULT_REDIS_CONNECTION"] = self.redis_connection
        return env


def migrate_journal(owner_dsn: str) -> None:
    """``python -m tradebot_runtime.journal.migrations`` as an installer runs it (the
    password through PGPASSWORD, never on the command line)."""
    parts = urlsplit(owner_dsn)
    host = parts.hostname or "127.0.0.1"
    dsn = f"postgresql://{parts.username}@{host}:{parts.port}{parts.path}"
    env = {"PGPASSWORD": parts.password} if parts.password else {}
    subprocess.run(
        [sys.executable, "-m", "tradebot_runtime.journal.migrations", dsn],
        check=True, capture_output=True, env={**os.environ, **env},
    )  # fmt: skip


def configure(
    vault: VaultServer, owner_dsn: str, redis_url: str | None = None, mount: str = MOUNT
) -> DataEngine:
    """Enable the engine at ``mount`` with a connection to the journal (as its owner) and,
    with ``redis_url``, one to Redis (as its default user)."""
    migrate_journal(owner_dsn)
    admin = vault.admin()
    if f"{mount}/" not in admin.sys.list_mounted_secrets_engines():
        admin.sys.enable_secrets_engine("database", path=mount)
    pg = urlsplit(owner_dsn)
    admin.write_data(
        f"{mount}/config/{JOURNAL_CONNECTION}",
        data={
            "plugin_name": "postgresql-database-plugin",
            "connection_url": (
                f"postgresql://{{{{username}}}}:{{{{password}}}}@{pg.hostname}:{pg.port}"
                f"{pg.path}?sslmode=disable"
            ),
            "username": pg.username,
            "password": pg.password or "trust",
            "allowed_roles": ALLOWED_ROLES,
        },
    )
    redis_connection = None
    if redis_url is not None:
        rd = urlsplit(redis_url)
        admin.write_data(
            f"{mount}/config/{REDIS_CONNECTION}",
            data={
                "plugin_name": "redis-database-plugin",
                "host": rd.hostname,
                "port": rd.port,
                "username": rd.username or "default",
                "password": rd.password or "nopass",
                "allowed_roles": ALLOWED_ROLES,
            },
        )
        redis_connection = REDIS_CONNECTION
    return DataEngine(mount, JOURNAL_CONNECTION, redis_connection)
