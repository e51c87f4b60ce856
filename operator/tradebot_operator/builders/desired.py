"""desired(): every child object of a TradingBot, as plain manifests, deterministic."""

from __future__ import annotations

from collections.abc import Mapping

from tradebot_contracts.runtime_config import DeleteRequest
from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.api.strategy import Strategy
from tradebot_operator.api.trading_bot import TradingBot
from tradebot_operator.builders.configmap import config_map
from tradebot_operator.builders.context import ExchangeContext
from tradebot_operator.builders.deployment import deployment
from tradebot_operator.builders.hpa import horizontal_pod_autoscaler
from tradebot_operator.builders.lease import leases
from tradebot_operator.builders.meta import BuildError, Manifest
from tradebot_operator.builders.network_policy import network_policy
from tradebot_operator.builders.pdb import pod_disruption_budget
from tradebot_operator.builders.rbac import role, role_binding
from tradebot_operator.builders.runtime_config import build_runtime_config
from tradebot_operator.builders.service import metrics_service
from tradebot_operator.builders.service_account import service_account
from tradebot_operator.settings import OperatorSettings

# Apply order: identities and permissions before the pods that use them.
KIND_ORDER: tuple[str, ...] = (
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Lease",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
)


def exchange_contexts(
    bot: TradingBot,
    strategy: Strategy,
    accounts: Mapping[str, ExchangeAccount],
    settings: OperatorSettings,
    delete_request: DeleteRequest | None = None,
) -> list[ExchangeContext]:
    contexts = []
    for exchange in bot.spec.exchanges:
        account = accounts.get(exchange.account)
        if account is None:
            raise BuildError(f"ExchangeAccount {exchange.account} not found")
        config = build_runtime_config(bot, strategy, account, exchange, settings, delete_request)
        contexts.append(ExchangeContext(bot, strategy, account, exchange, settings, config))
    return contexts


def _sort_key(manifest: Manifest) -> tuple[int, str]:
    return KIND_ORDER.index(manifest["kind"]), manifest["metadata"]["name"]


def desired(
    bot: TradingBot,
    strategy: Strategy,
    accounts: Mapping[str, ExchangeAccount],
    settings: OperatorSettings,
    *,
    delete_request: DeleteRequest | None = None,
) -> list[Manifest]:
    """All children of ``bot``: ServiceAccount, Role, RoleBinding, NetworkPolicy (unless the
    installation turns it off) and, per exchange, ConfigMap, Leases, metrics Service,
    Deployment, PDB (more than one pod) and HPA (autoscaling). ``accounts`` maps account
    name to ExchangeAccount; a missing one raises BuildError. ``delete_request`` is set by
    the finalizer to make the pods apply onDelete.
    """
    contexts = exchange_contexts(bot, strategy, accounts, settings, delete_request)
    lease_names = [shard.lease_name for ctx in contexts for shard in ctx.config.shards]
    configmap_names = [ctx.name for ctx in contexts]
    children: list[Manifest] = [
        service_account(bot),
        role(bot, lease_names, configmap_names),
        role_binding(bot),
    ]
    policy = network_policy(bot, settings.network_policy)
    if policy is not None:
        children.append(policy)
    for ctx in contexts:
        children.append(config_map(ctx))
        children.extend(leases(ctx))
        children.append(metrics_service(ctx))
        children.append(deployment(ctx))
        optional = (pod_disruption_budget(ctx), horizontal_pod_autoscaler(ctx))
        children.extend(child for child in optional if child is not None)
    return sorted(children, key=_sort_key)
