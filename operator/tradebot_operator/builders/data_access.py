"""Pure builders of each bot's own journal (PostgreSQL) and Redis logins: the database
secrets engine roles the operator writes in Vault, and what the runtime config says about
them. No I/O here (services/vault.py writes the roles).

Journal: the role's creation statements make a short-lived PostgreSQL user, member of
``tradebot_runtime`` (insert/select/update on the journal tables, nothing else), and
record which bot it belongs to in ``journal_logins``. Row-level security (journal
migration 3) lets a session see and write only the rows of ``journal_logins``' bot for its
``session_user``, so one bot's login can neither read nor forge another's orders, fills,
epochs or audit events, in this namespace or any other.

Redis: an ACL user whose key patterns are the bot's accounts' budget keys
(``tradebot_contracts.names.rate_limit_budget_key`` and the keys the limiter derives from
it with ``:``) and its presence sets (``presence_key``), with every command except the
``@dangerous`` ones.

The installer configures the engine's connections (their admin logins never pass through
the operator); the operator only writes roles named after the bot's Vault policy
(``tradebot-bot-*``), which the sweep removes with the policy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tradebot_contracts.names import (
    presence_key,
    rate_limit_budget_key,
    vault_redis_role_name,
    vault_role_name,
)
from tradebot_contracts.runtime_config import DataCredentialsConfig
from tradebot_operator.settings import OperatorSettings

RUNTIME_GROUP = "tradebot_runtime"
"""The PostgreSQL group role journal migration 3 creates; every bot login is a member."""


@dataclass(frozen=True)
class DatabaseRole:
    """One role of Vault's database secrets engine (``<mount>/roles/<name>``)."""

    name: str
    db_name: str
    """The engine connection the role's users are created on."""
    creation_statements: tuple[str, ...]
    revocation_statements: tuple[str, ...]
    default_ttl: str
    max_ttl: str

    def request(self) -> dict[str, Any]:
        """The body of ``POST <mount>/roles/<name>``."""
        body: dict[str, Any] = {
            "db_name": self.db_name,
            "creation_statements": list(self.creation_statements),
            "default_ttl": self.default_ttl,
            "max_ttl": self.max_ttl,
        }
        if self.revocation_statements:
            body["revocation_statements"] = list(self.revocation_statements)
        return body


def _sql_literal(text: str) -> str:
    # Namespace and bot are DNS names (no quote can occur); doubled anyway.
    return "'" + text.replace("'", "''") + "'"


def journal_role(namespace: str, bot: str, settings: OperatorSettings) -> DatabaseRole:
    """The role issuing ``namespace/bot``'s journal logins (``{{name}}`` and friends are
    filled in by Vault)."""
    bot_id = f"{namespace}/{bot}"
    return DatabaseRole(
        name=vault_role_name(namespace, bot),
        db_name=settings.vault_journal_connection,
        creation_statements=(
            "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
            f"VALID UNTIL '{{{{expiration}}}}' IN ROLE {RUNTIME_GROUP};",
            "INSERT INTO journal_logins (login, bot) "
            f"VALUES ('{{{{name}}}}', {_sql_literal(bot_id)});",
        ),
        revocation_statements=(
            "DELETE FROM journal_logins WHERE login = '{{name}}';",
            'DROP ROLE IF EXISTS "{{name}}";',
        ),
        default_ttl=settings.vault_data_ttl,
        max_ttl=settings.vault_data_max_ttl,
    )


def redis_key_patterns(namespace: str, bot: str, accounts: Iterable[str]) -> list[str]:
    """ACL key patterns of the accounts' budget keys (the key itself and ``<key>:*``) and of
    the bot's presence sets (names hold no ``:``, ``*``, ``?`` or ``[``: no pattern reaches
    another account or bot)."""
    patterns: list[str] = []
    for account in sorted(set(accounts)):
        key = rate_limit_budget_key(namespace, account)
        patterns += [f"~{key}", f"~{key}:*", f"~{presence_key(namespace, bot, account)}"]
    return patterns


def redis_role(
    namespace: str, bot: str, accounts: Iterable[str], settings: OperatorSettings
) -> DatabaseRole | None:
    """The role issuing the bot's Redis users; None without a Redis connection."""
    if settings.vault_redis_connection is None:
        return None
    rules = [*redis_key_patterns(namespace, bot, accounts), "resetchannels", "+@all", "-@dangerous"]
    return DatabaseRole(
        name=vault_redis_role_name(namespace, bot),
        db_name=settings.vault_redis_connection,
        creation_statements=(json.dumps(rules),),
        revocation_statements=(),
        default_ttl=settings.vault_data_ttl,
        max_ttl=settings.vault_data_max_ttl,
    )


def database_roles(
    namespace: str, bot: str, accounts: Iterable[str], settings: OperatorSettings
) -> tuple[DatabaseRole, ...]:
    """Every engine role of the bot (none unless the installation enables them)."""
    if not settings.data_credentials:
        return ()
    roles = [journal_role(namespace, bot, settings)]
    redis = redis_role(namespace, bot, accounts, settings)
    if redis is not None:
        roles.append(redis)
    return tuple(roles)


def without_login(url: str | None) -> str | None:
    """``url`` with its user name and password removed (host, port, database remain)."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def data_credentials_config(
    namespace: str, bot: str, settings: OperatorSettings
) -> DataCredentialsConfig | None:
    """What the runtime config says about the bot's logins; None when not enabled."""
    if not settings.data_credentials:
        return None
    assert settings.vault_address is not None and settings.vault_database_mount is not None
    return DataCredentialsConfig(
        address=settings.vault_address,
        auth_mount=settings.vault_auth_mount,
        role=vault_role_name(namespace, bot),
        ca_cert=settings.vault_ca_pem,
        database_mount=settings.vault_database_mount,
        journal_role=vault_role_name(namespace, bot),
        redis_role=(
            vault_redis_role_name(namespace, bot)
            if settings.vault_redis_connection is not None
            else None
        ),
    )
