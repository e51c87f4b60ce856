"""Names and labels of everything the operator creates, valid for any input and unique by
construction.

Kubernetes limits names to a DNS-1123 label (63 chars; Services, label values) or
subdomain (253 chars). A bot name alone may be 253 chars, so every generated name is cut
and given a hash suffix of the full untruncated name when too long: two different long
inputs never collapse into the same name, and the same input always gives the same name.

A name joined from two free-form parts (bot and account, namespace and bot) also carries a
hash of the parts themselves: ``-`` may occur inside either part, so ``(a, b-c)`` and
``(a-b, c)`` would otherwise both give ``a-b-c`` and one bot would take over the other's
ConfigMap, Lease or Vault role.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

GROUP: Final = "tradebot.io"
"""API group of every tradebot resource, label and annotation."""


DNS_LABEL_MAX: Final = 63
DNS_SUBDOMAIN_MAX: Final = 253
HASH_LENGTH: Final = 8

APP_NAME: Final = "tradebot"
MANAGED_BY: Final = "tradebot-operator"
RUNTIME_COMPONENT: Final = "runtime"

LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_BOT: Final = f"{GROUP}/bot"
LABEL_ACCOUNT: Final = f"{GROUP}/account"
LABEL_SHARD: Final = f"{GROUP}/shard"

ANNOTATION_CONFIG_HASH: Final = f"{GROUP}/config-hash"

_INVALID_LABEL_CHARS = re.compile(r"[^a-z0-9-]+")
_INVALID_VALUE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def short_hash(text: str, length: int = HASH_LENGTH) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def truncate(name: str, limit: int = DNS_LABEL_MAX) -> str:
    """``name`` if it fits, else a prefix plus ``-<hash of name>`` of exactly ``limit``
    chars at most. The prefix never ends in ``-`` or ``.``."""
    if len(name) <= limit:
        return name
    prefix = name[: limit - HASH_LENGTH - 1].rstrip("-.")
    return f"{prefix}-{short_hash(name)}"


def dns_label(*parts: str, limit: int = DNS_LABEL_MAX) -> str:
    """A DNS-1123 label (lowercase alphanumerics and ``-``, alphanumeric at both ends)
    built from ``parts`` joined with ``-``. Characters that are not allowed (``.`` in an
    object name) become ``-``; when that changes the text, a hash keeps it unique."""
    raw = "-".join(parts)
    cleaned = _INVALID_LABEL_CHARS.sub("-", raw.lower()).strip("-") or "x"
    if cleaned != raw:
        cleaned = f"{cleaned[: limit - HASH_LENGTH - 1].rstrip('-')}-{short_hash(raw)}"
    return truncate(cleaned, limit)


def joined_label(*parts: str, limit: int = DNS_LABEL_MAX) -> str:
    """``dns_label`` of ``parts`` plus a hash of the parts as a tuple, so that different
    tuples never give the same name however ``-`` falls inside them."""
    identity = short_hash("\x00".join(parts))
    return f"{dns_label(*parts, limit=limit - HASH_LENGTH - 1)}-{identity}"


def dns1035_label(*parts: str) -> str:
    """A DNS-1035 label (Service names): a DNS-1123 label that starts with a letter."""
    name = dns_label(*parts)
    if name[0].isalpha():
        return name
    return dns_label("tb", *parts)


def label_value(value: str) -> str:
    """A valid label value (63 chars, ``[A-Za-z0-9._-]``, alphanumeric at both ends)."""
    cleaned = _INVALID_VALUE_CHARS.sub("-", value).strip("-._")
    if cleaned != value:
        cleaned = f"{cleaned[: DNS_LABEL_MAX - HASH_LENGTH - 1]}-{short_hash(value)}".lstrip("-._")
    return truncate(cleaned, DNS_LABEL_MAX)


# Object names -------------------------------------------------------------------------


def runtime_service_account_name(bot: str) -> str:
    """ServiceAccount, Role and RoleBinding of a bot's runtime pods."""
    return dns_label(bot, "runtime")


def exchange_object_name(bot: str, account: str) -> str:
    """Deployment, ConfigMap, PodDisruptionBudget and HPA of one bot x account:
    ``<bot>-<account>-<hash of both>``."""
    return joined_label(bot, account)


def metrics_service_name(bot: str, account: str) -> str:
    """``<bot>-<account>-<hash>-metrics``, starting with a letter (DNS-1035)."""
    suffix = "-metrics"
    name = joined_label(bot, account, limit=DNS_LABEL_MAX - len(suffix)) + suffix
    return name if name[0].isalpha() else dns_label("tb", name)


def lease_name(bot: str, account: str, shard: int) -> str:
    """``<bot>-<account>-<hash>-<shard>``; the shard number always survives truncation."""
    suffix = f"-{shard}"
    return joined_label(bot, account, limit=DNS_LABEL_MAX - len(suffix)) + suffix


VAULT_BOT_PREFIX: Final = "tradebot-bot-"
"""Every per-bot Vault policy and role starts with this. The operator's own policy grants
``sys/policy/tradebot-bot-*`` and ``auth/<mount>/role/tradebot-bot-*``, which can never match
its own name (OPERATOR_POLICY_NAME) or anything else in Vault."""


def vault_role_name(namespace: str, bot: str) -> str:
    """Vault Kubernetes-auth role and policy of one bot:
    ``tradebot-bot-<namespace>-<bot>-<hash of both>``, unique across namespaces."""
    return VAULT_BOT_PREFIX + joined_label(
        namespace, bot, limit=DNS_LABEL_MAX - len(VAULT_BOT_PREFIX)
    )


def vault_redis_role_name(namespace: str, bot: str) -> str:
    """Database-engine role issuing the bot's Redis user (its journal role has the bot's
    policy name, ``vault_role_name``): ``<vault_role_name>-redis``."""
    return vault_role_name(namespace, bot) + VAULT_REDIS_SUFFIX


VAULT_REDIS_SUFFIX: Final = "-redis"

OPERATOR_POLICY_NAME: Final = "tradebot-operator"
"""Name the README and the demo give the operator's own Vault policy."""


def rate_limit_budget_key(namespace: str, account: str) -> str:
    """Key of the shared token bucket of an account (same for every bot using it)."""
    return f"tradebot:ratelimit:{namespace}:{account}"


def presence_key(namespace: str, bot: str, account: str) -> str:
    """Redis sorted set of the live pods of one bot x account (runtime presence.py)."""
    return f"tradebot:presence:{namespace}:{bot}:{account}"


CREDENTIALS_SECRET_LABEL: Final = "tradebot.io/credentials"
"""A Kubernetes Secret an ExchangeAccount's ``secretRef`` names must carry this label with
the value ``"true"``: only Secrets meant for tradebot can become an account's keys."""


# Labels ---------------------------------------------------------------------------------


def bot_labels(bot: str) -> dict[str, str]:
    """Labels on every object of a bot."""
    return {
        LABEL_NAME: APP_NAME,
        LABEL_INSTANCE: label_value(bot),
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_PART_OF: APP_NAME,
        LABEL_BOT: label_value(bot),
    }


def runtime_labels(bot: str, account: str | None = None) -> dict[str, str]:
    """Labels of runtime objects, optionally narrowed to one account."""
    labels = {**bot_labels(bot), LABEL_COMPONENT: RUNTIME_COMPONENT}
    if account is not None:
        labels[LABEL_ACCOUNT] = label_value(account)
    return labels


def runtime_selector(bot: str, account: str) -> dict[str, str]:
    """Pod selector of one bot x account Deployment (immutable once created, so it holds
    only labels that never change)."""
    return {
        LABEL_NAME: APP_NAME,
        LABEL_BOT: label_value(bot),
        LABEL_ACCOUNT: label_value(account),
        LABEL_COMPONENT: RUNTIME_COMPONENT,
    }
