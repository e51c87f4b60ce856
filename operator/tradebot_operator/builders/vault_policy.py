"""Pure builders of what Vault/OpenBao must hold for one TradingBot: a policy that reads
exactly the KV v2 secrets of the bot's accounts and a Kubernetes-auth role bound to the
bot's runtime ServiceAccount. No I/O here (tradebot_operator.services.vault applies them).

The policy grants ``read`` on ``<mount>/data/<path>`` (the values) and on
``<mount>/metadata/<path>`` (versions only, no values: the runtime polls it to notice a
rotated key) of each account, and nothing else. Its first lines name the bot it belongs
to (``# tradebot: namespace=<ns> bot=<name>``, ``grant_owner`` reads it back): the grant
sweep (services/vault.py) asks the API server about exactly that bot before it removes a
grant the operator's indexes do not know, since the names are hashed and cannot be
inverted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tradebot_contracts.names import (
    VAULT_BOT_PREFIX,
    runtime_service_account_name,
    vault_role_name,
)
from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.api.trading_bot import TradingBot
from tradebot_operator.builders.data_access import DatabaseRole, database_roles
from tradebot_operator.builders.runtime_config import credential_files
from tradebot_operator.settings import OperatorSettings


@dataclass(frozen=True)
class SecretPath:
    mount: str
    path: str

    @property
    def data(self) -> str:
        return f"{self.mount}/data/{self.path}"

    @property
    def metadata(self) -> str:
        return f"{self.mount}/metadata/{self.path}"


@dataclass(frozen=True)
class BotGrant:
    """Policy and role of one bot; ``secrets`` empty means the bot needs none (remove)."""

    namespace: str
    bot: str
    name: str
    """Name of both the policy and the Kubernetes-auth role."""
    service_account: str
    secrets: tuple[SecretPath, ...]
    audience: str | None
    token_ttl: str
    token_max_ttl: str
    database_mount: str | None = None
    database_roles: tuple[DatabaseRole, ...] = ()
    """The bot's journal and Redis login roles (builders/data_access.py)."""

    @property
    def needs_nothing(self) -> bool:
        """No secret and no login: the grant is removed."""
        return not self.secrets and not self.database_roles

    @property
    def policy(self) -> str:
        creds = tuple(f"{self.database_mount}/creds/{role.name}" for role in self.database_roles)
        return policy_hcl(self.secrets, owner=(self.namespace, self.bot), creds=creds)

    def role(self) -> dict[str, Any]:
        """Keyword arguments of hvac's ``auth.kubernetes.create_role`` (without mount)."""
        role: dict[str, Any] = {
            "name": self.name,
            "bound_service_account_names": [self.service_account],
            "bound_service_account_namespaces": [self.namespace],
            "policies": [self.name],
            "ttl": self.token_ttl,
            "max_ttl": self.token_max_ttl,
        }
        if self.audience is not None:
            role["audience"] = self.audience
        return role


def _quoted(text: str) -> str:
    # json.dumps gives a double-quoted string with escapes HCL accepts; the API's path
    # pattern already forbids quotes and spaces.
    return json.dumps(text)


OWNER_COMMENT = re.compile(r"^# tradebot: namespace=(\S+) bot=(\S+)[ \t]*$", re.MULTILINE)


def owner_comment(namespace: str, bot: str) -> str:
    """The HCL comment naming the bot a per-bot policy belongs to (names hold no space:
    a namespace is a DNS label, a bot a DNS subdomain)."""
    return f"# tradebot: namespace={namespace} bot={bot}\n"


def grant_owner(policy: str | None) -> tuple[str, str] | None:
    """(namespace, bot) named by a policy's owner comment; None without one."""
    found = OWNER_COMMENT.search(policy or "")
    return (found.group(1), found.group(2)) if found else None


def policy_hcl(
    secrets: tuple[SecretPath, ...],
    owner: tuple[str, str] | None = None,
    creds: tuple[str, ...] = (),
) -> str:
    """``read`` on exactly the data and metadata paths of ``secrets`` and on the
    database-engine ``creds`` paths (the bot's own journal and Redis logins); sorted,
    stable. ``owner`` (namespace, bot): the bot the policy belongs to, as a comment."""
    stanzas = []
    paths = [p for s in sorted(set(secrets), key=lambda s: (s.mount, s.path))
             for p in (s.data, s.metadata)]  # fmt: skip
    for path in (*paths, *sorted(creds)):
        stanzas.append(f'path {_quoted(path)} {{\n  capabilities = ["read"]\n}}\n')
    header = "# managed by tradebot-operator; edits are overwritten\n"
    if owner is not None:
        header += owner_comment(*owner)
    return header + "\n".join(stanzas)


def vault_secrets(accounts: Mapping[str, ExchangeAccount]) -> tuple[SecretPath, ...]:
    """KV v2 secrets of the accounts that take their credentials from Vault."""
    found: set[SecretPath] = set()
    for account in accounts.values():
        credentials = account.spec.credentials
        if credentials is not None and credentials.vault is not None:
            found.add(SecretPath(credentials.vault.mount, credentials.vault.path))
    return tuple(sorted(found, key=lambda s: (s.mount, s.path)))


def bot_grant(
    bot: TradingBot, accounts: Mapping[str, ExchangeAccount], settings: OperatorSettings
) -> BotGrant:
    """What Vault must hold for ``bot``: only its own accounts' secrets.

    With the agent injector the agent logs in with the pod's default ServiceAccount token
    (audience: the API server), so the role binds no audience; otherwise the runtime's
    projected token carries ``settings.vault_audience`` and the role requires it.
    """
    namespace = bot.metadata.namespace or ""
    name = bot.metadata.name
    audience = None if settings.credentials_delivery == "injector" else settings.vault_audience
    used = {n: a for n, a in accounts.items() if n in {e.account for e in bot.spec.exchanges}}
    account_names = [e.account for e in bot.spec.exchanges]
    return BotGrant(
        namespace=namespace,
        bot=name,
        name=vault_role_name(namespace, name),
        service_account=runtime_service_account_name(name),
        secrets=vault_secrets(used),
        audience=audience,
        token_ttl=settings.vault_role_token_ttl,
        token_max_ttl=settings.vault_role_token_max_ttl,
        database_mount=settings.vault_database_mount,
        database_roles=database_roles(namespace, name, account_names, settings),
    )


def mapped_keys(account: ExchangeAccount) -> list[str]:
    """Keys the account's Vault secret must hold (apiKey, secret, optional ones)."""
    credentials = account.spec.credentials
    if credentials is None or credentials.vault is None:
        return []
    return sorted(set(credential_files(credentials.vault.keys).values()))


def operator_policy_hcl(
    auth_mount: str = "kubernetes",
    secret_paths: tuple[str, ...] = ("secret/data/tradebot/*",),
    database_mount: str | None = None,
) -> str:
    """The policy the operator ITSELF needs (its token or its Kubernetes-auth role):
    write and delete the per-bot policies (hvac: ``sys/policy/<name>``) and roles, both
    named ``tradebot-bot-*`` (tradebot_contracts.names.vault_role_name) — a prefix that can
    never match this policy's own name —, list both (the sweep that removes grants of
    deleted bots), and read the KV v2 data of the accounts' secrets for the
    CredentialsReady check (key names only are kept).
    ``secret_paths``: the ``<mount>/data/<path>`` globs your ExchangeAccounts use.
    ``database_mount``: the database secrets engine whose per-bot roles (also
    ``tradebot-bot-*``) the operator writes; it never reads their credentials."""
    manage = '["create", "read", "update", "delete"]'
    prefix = VAULT_BOT_PREFIX
    lines = [
        f'path "sys/policy/{prefix}*" {{ capabilities = {manage} }}',
        'path "sys/policy" { capabilities = ["read"] }',
        f'path "auth/{auth_mount}/role/{prefix}*" {{ capabilities = {manage} }}',
        f'path "auth/{auth_mount}/role" {{ capabilities = ["list"] }}',
        *(f'path "{p}" {{ capabilities = ["read"] }}' for p in secret_paths),
    ]
    if database_mount is not None:
        lines += [
            f'path "{database_mount}/roles/{prefix}*" {{ capabilities = {manage} }}',
            f'path "{database_mount}/roles" {{ capabilities = ["list"] }}',
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """``python -m tradebot_operator.builders.vault_policy``: print the operator's own policy, so an
    installer (or the demo) writes exactly the HCL the README documents."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--auth-mount", default="kubernetes", help="Kubernetes auth mount")
    parser.add_argument(
        "--secret-path",
        action="append",
        help="<mount>/data/<path> glob of the accounts' secrets (repeatable)",
    )
    parser.add_argument(
        "--database-mount", help="database secrets engine of the per-bot journal/Redis logins"
    )
    args = parser.parse_args(argv)
    paths = tuple(args.secret_path) if args.secret_path else ("secret/data/tradebot/*",)
    print(operator_policy_hcl(args.auth_mount, paths, args.database_mount), end="")


if __name__ == "__main__":
    main()
