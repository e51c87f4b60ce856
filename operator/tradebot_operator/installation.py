"""What the installation allows and provides, as the chart's values give it (JSON,
camelCase): the tenancy policy every TradingBot, Strategy and ExchangeAccount is checked
against, and the NetworkPolicy every bot's pods get. OperatorSettings holds one of each."""

from __future__ import annotations

import ipaddress
from fnmatch import fnmatchcase
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from tradebot_contracts.base import camel
from tradebot_operator.api.exchange_account import VAULT_PATH_PATTERN

FROZEN_CAMEL: Final = ConfigDict(
    frozen=True,
    extra="forbid",
    alias_generator=camel,
    validate_by_name=True,
    validate_by_alias=True,
)

ALWAYS_REFUSED_NETWORKS: Final = (
    ipaddress.ip_network("169.254.0.0/16"),  # link-local: cloud metadata services
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("0.0.0.0/8"),
    ipaddress.ip_network("::/128"),
)
"""Endpoint addresses no installation can allow."""


class TenancyPolicy(BaseModel):
    """What the installation lets a namespace ask for (TRADEBOT_TENANCY: the chart's
    ``tenancy`` values as JSON, camelCase)."""

    model_config = FROZEN_CAMEL

    vault_kv_mount: str = Field(default="secret", pattern=VAULT_PATH_PATTERN)
    """The only KV v2 mount an ExchangeAccount may name."""
    vault_path_prefix: str = "tradebot/{namespace}/"
    """Every account's Vault path must start with this (``{namespace}`` = the account's)."""
    allowed_endpoints: tuple[str, ...] = ()
    """Hosts (``api.example.com``, ``*.example.com``) and networks (``127.0.0.0/8``) an
    ExchangeAccount's endpoint override may point at; empty: no overrides at all."""
    cluster_networks: tuple[str, ...] = ()
    """The cluster's pod and Service networks: never an exchange endpoint."""
    allowed_images: tuple[str, ...] = ()
    """Image references (fnmatch patterns, e.g. ``registry.example.com/tradebot*``) a bot or a
    python Strategy may run; the operator's runtime image is always allowed."""
    allowed_env: tuple[str, ...] = ()
    """Names (fnmatch patterns) of ``spec.runtime.env`` variables a bot may set."""
    allowed_priority_classes: tuple[str, ...] = ()
    """PriorityClass names (fnmatch patterns) a bot may use."""
    allow_tolerations: bool = False
    allow_node_placement: bool = False
    """``spec.runtime.nodeSelector`` and ``affinity``."""
    allow_secret_ref: bool = False
    """Development only: accounts may read keys from a Kubernetes Secret (paper/sandbox)."""

    def vault_prefix(self, namespace: str) -> str:
        return self.vault_path_prefix.format(namespace=namespace)

    def endpoint_allowed(self, host: str) -> bool:
        address = ip_address(host)
        for entry in self.allowed_endpoints:
            if "/" in entry and address is not None:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            elif fnmatchcase(host.lower(), entry.lower()):
                return True
        return False


def ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


CIDR_PATTERN: Final = r"^[0-9a-fA-F:.]+/[0-9]{1,3}$"


class IpBlock(BaseModel):
    model_config = FROZEN_CAMEL

    cidr: str = Field(pattern=CIDR_PATTERN)
    except_: tuple[str, ...] = Field(default=(), alias="except")


class EgressTarget(BaseModel):
    """Addresses and TCP ports of one thing the bot pods may reach."""

    model_config = FROZEN_CAMEL

    cidrs: tuple[IpBlock | str, ...] = ()
    ports: tuple[int, ...] = ()


class Dns(BaseModel):
    model_config = FROZEN_CAMEL

    enabled: bool = True
    ports: tuple[int, ...] = (53,)


class MetricsFrom(BaseModel):
    model_config = FROZEN_CAMEL

    namespace_selector: dict[str, object] = Field(default_factory=dict)


def _public_internet() -> EgressTarget:
    private = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16")
    everything = IpBlock.model_validate({"cidr": "0.0.0.0/0", "except": private})
    return EgressTarget(cidrs=(everything,), ports=(443,))


class NetworkPolicySettings(BaseModel):
    """The NetworkPolicy of every bot (TRADEBOT_NETWORK_POLICY: the chart's
    ``networkPolicy`` values as JSON). On by default."""

    model_config = FROZEN_CAMEL

    enabled: bool = True
    exchange: EgressTarget = Field(default_factory=_public_internet)
    postgres: EgressTarget = EgressTarget(ports=(5432,))
    redis: EgressTarget = EgressTarget(ports=(6379,))
    vault: EgressTarget = EgressTarget(ports=(8200,))
    api_server: EgressTarget = EgressTarget(ports=(443, 6443))
    dns: Dns = Dns()
    metrics_from: MetricsFrom = MetricsFrom()

    def egress_targets(self) -> tuple[tuple[str, EgressTarget], ...]:
        return (
            ("exchange", self.exchange),
            ("postgres", self.postgres),
            ("redis", self.redis),
            ("vault", self.vault),
            ("apiServer", self.api_server),
        )
