"""A namespace is a tenant: what a TradingBot, Strategy or ExchangeAccount may ask for is
bounded by the installation's policy (chart values ``tenancy.*``), so that nobody with rights
in one namespace reaches another's keys, orders or money, or the cluster around them.

Each check is pure (the object, its namespace and the policy in, Problems out) and runs
before anything is written to Vault or the API server. The CRDs' CEL rules refuse the same
shapes (``..`` in a Vault path, user info in an endpoint) at the API; these checks are the
second line for objects created before a CRD upgrade, and the only line for what depends on
the installation (prefixes, allowed hosts, registries).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.api.strategy import Strategy
from tradebot_operator.api.trading_bot import RuntimeSpec, TradingBot
from tradebot_operator.checks.chain import Problem, check, run_checks
from tradebot_operator.installation import ALWAYS_REFUSED_NETWORKS, TenancyPolicy, ip_address


@dataclass(frozen=True)
class Tenant:
    """An object together with the namespace it lives in and the installation's policy."""

    namespace: str
    policy: TenancyPolicy
    runtime_image: str


def tenant_of(namespace: str | None, policy: TenancyPolicy, runtime_image: str) -> Tenant:
    return Tenant(namespace or "", policy, runtime_image)


@dataclass(frozen=True)
class AccountSubject:
    account: ExchangeAccount
    tenant: Tenant


# ExchangeAccount --------------------------------------------------------------------------


@check
def vault_path_in_namespace(subject: AccountSubject) -> Iterator[Problem]:
    credentials = subject.account.spec.credentials
    if credentials is None or credentials.vault is None:
        return
    policy, vault = subject.tenant.policy, credentials.vault
    prefix = policy.vault_prefix(subject.tenant.namespace)
    if vault.mount != policy.vault_kv_mount:
        yield Problem(
            "VaultMountNotAllowed",
            "spec.credentials.vault.mount",
            f"mount {vault.mount!r} is not allowed; this installation's accounts use "
            f"{policy.vault_kv_mount!r}",
        )
    segments = vault.path.split("/")
    if any(s in ("", ".", "..") for s in segments) or not vault.path.startswith(prefix):
        yield Problem(
            "VaultPathOutsideNamespace",
            "spec.credentials.vault.path",
            f"path {vault.path!r} is outside this namespace's Vault prefix {prefix!r}",
        )


@check
def secret_ref_allowed(subject: AccountSubject) -> Iterator[Problem]:
    spec = subject.account.spec
    if spec.credentials is None or spec.credentials.secret_ref is None:
        return
    if spec.mode == "live":
        yield Problem(
            "SecretRefNotAllowed",
            "spec.credentials.secretRef",
            "a live account's keys come from vault; secretRef is for paper and sandbox",
        )
    elif not subject.tenant.policy.allow_secret_ref:
        yield Problem(
            "SecretRefNotAllowed",
            "spec.credentials.secretRef",
            "this installation does not allow credentials from Kubernetes Secrets "
            "(tenancy.allowSecretRef); use vault",
        )


@check
def endpoint_allowed(subject: AccountSubject) -> Iterator[Problem]:
    endpoint = subject.account.spec.endpoint
    if endpoint is None:
        return
    policy = subject.tenant.policy
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        yield Problem("EndpointNotAllowed", "spec.endpoint", "endpoint must not hold user info")
        return
    address = ip_address(host)
    refused = list(ALWAYS_REFUSED_NETWORKS) + [
        ipaddress.ip_network(n, strict=False) for n in policy.cluster_networks
    ]
    if address is not None and any(address in network for network in refused):
        yield Problem(
            "EndpointNotAllowed",
            "spec.endpoint",
            f"{host} is a link-local or cluster address; an exchange endpoint can never be",
        )
    elif not policy.endpoint_allowed(host):
        allowed = ", ".join(policy.allowed_endpoints) or "none"
        internal = host.endswith((".svc", ".cluster.local")) or "." not in host
        what = "a cluster-internal name" if internal else "not an allowed endpoint"
        yield Problem(
            "EndpointNotAllowed",
            "spec.endpoint",
            f"host {host!r} is {what}: this installation allows endpoint overrides only "
            f"for {allowed} (tenancy.allowedEndpoints)",
        )


ACCOUNT_TENANCY_CHECKS = (vault_path_in_namespace, secret_ref_allowed, endpoint_allowed)


def validate_account_tenancy(account: ExchangeAccount, tenant: Tenant) -> list[Problem]:
    return run_checks(ACCOUNT_TENANCY_CHECKS, AccountSubject(account, tenant))


# TradingBot and Strategy: the pod surface -----------------------------------------------


def image_problem(image: str, tenant: Tenant, field: str) -> Problem | None:
    if image == tenant.runtime_image or any(
        fnmatchcase(image, pattern) for pattern in tenant.policy.allowed_images
    ):
        return None
    return Problem(
        "ImageNotAllowed",
        field,
        f"image {image!r} is not allowed by this installation (tenancy.allowedImages)",
    )


def runtime_problems(runtime: RuntimeSpec | None, tenant: Tenant) -> list[Problem]:
    """What a bot's ``spec.runtime`` asks for beyond the installation's policy."""
    if runtime is None:
        return []
    policy, problems = tenant.policy, []
    if runtime.image is not None:
        found = image_problem(runtime.image, tenant, "spec.runtime.image")
        problems.extend([found] if found else [])
    for index, var in enumerate(runtime.env):
        if not any(fnmatchcase(var.name, pattern) for pattern in policy.allowed_env):
            problems.append(
                Problem(
                    "EnvNotAllowed",
                    f"spec.runtime.env[{index}].name",
                    f"{var.name} is not an environment variable this installation lets a "
                    "bot set (tenancy.allowedEnv)",
                )
            )
    if runtime.tolerations and not policy.allow_tolerations:
        problems.append(
            Problem(
                "PlacementNotAllowed",
                "spec.runtime.tolerations",
                "tolerations are not allowed by this installation (tenancy.allowTolerations)",
            )
        )
    if (runtime.node_selector or runtime.affinity) and not policy.allow_node_placement:
        field = "spec.runtime.nodeSelector" if runtime.node_selector else "spec.runtime.affinity"
        problems.append(
            Problem(
                "PlacementNotAllowed",
                field,
                "node placement is not allowed by this installation (tenancy.allowNodePlacement)",
            )
        )
    priority = runtime.priority_class_name
    if priority is not None and not any(
        fnmatchcase(priority, pattern) for pattern in policy.allowed_priority_classes
    ):
        problems.append(
            Problem(
                "PriorityClassNotAllowed",
                "spec.runtime.priorityClassName",
                f"priority class {priority!r} is not allowed by this installation "
                "(tenancy.allowedPriorityClasses)",
            )
        )
    return problems


def bot_tenancy_problems(bot: TradingBot, tenant: Tenant) -> list[Problem]:
    return runtime_problems(bot.spec.runtime, tenant)


def strategy_tenancy_problems(strategy: Strategy, tenant: Tenant) -> list[Problem]:
    python = strategy.spec.python
    if python is None:
        return []
    found = image_problem(python.image, tenant, "spec.python.image")
    return [found] if found else []
