"""Everything the operator reads from its environment, in two parts.

- OperatorSettings: installation-wide settings of the operator (image, ports, Lease
  timing, Vault), read once at start from ``TRADEBOT_<FIELD>`` environment variables (the
  Helm chart sets them); the pure builders take them as an argument so tests can vary them
  freely.
- ProcessSettings: how this operator process runs (watched namespaces, liveness endpoint,
  log format, peering, concurrency, debug), read by ``python -m tradebot_operator`` and by
  the start-up handler.

No other module reads the environment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from tradebot_operator.installation import NetworkPolicySettings, TenancyPolicy

ENV_PREFIX: Final = "TRADEBOT_"

CredentialsDelivery = Literal["vault", "injector"]


class OperatorSettings(BaseModel):
    """Defaults and installation facts the builders need."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    runtime_image: str = "tradebot:0.1.0"
    """Runtime image when neither the bot nor a python strategy names one."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    metrics_port: int = Field(default=9090, ge=1024, le=65535)
    """Port of /metrics, /healthz and /readyz in the runtime pods."""
    lease_duration_seconds: int = Field(default=6, ge=2, le=60)
    termination_grace_period_seconds: int = Field(default=30, ge=1, le=3600)
    run_as_user: int = Field(default=10001, ge=1)
    """Non-root uid of the runtime container (the image need not declare one)."""
    tmp_size_limit: str = "64Mi"
    default_requests: dict[str, str] = Field(
        default_factory=lambda: {"cpu": "50m", "memory": "128Mi"}
    )
    """Requests when the bot sets none; a CPU request is what lets the HPA work."""
    default_limits: dict[str, str] = Field(default_factory=lambda: {"memory": "512Mi"})

    credentials_delivery: CredentialsDelivery = "vault"
    """vault: the runtime logs in to Vault itself (hvac, projected token);
    injector: the Vault agent injector writes the keys to files."""
    vault_address: str | None = None
    """Vault/OpenBao URL the runtime uses; required for vault credentials."""
    vault_auth_mount: str = "kubernetes"
    vault_audience: str = "vault"
    """Audience of the projected ServiceAccount token used to log in to Vault."""
    vault_token_expiration_seconds: int = Field(default=3600, ge=600)
    """Lifetime of the projected ServiceAccount token in the bot pods."""
    vault_token_file: str | None = None
    """The operator's OWN Vault auth, option 1: a file holding a Vault token (mounted from
    a Secret). Read at every login, so a rotated file is picked up."""
    vault_operator_role: str | None = None
    """The operator's OWN Vault auth, option 2: a Kubernetes-auth role bound to the
    operator's ServiceAccount; logs in with the token at vault_operator_jwt_file."""
    vault_operator_jwt_file: str = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    vault_ca_cert: str | None = None
    """File with the PEM CA bundle the operator verifies the Vault server with (https)."""
    vault_ca_pem: str | None = None
    """The same bundle as text (public, no secret): from_env reads ``vault_ca_cert`` into
    it at start, and the builders render it into every vault-credentialed runtime config
    so the bot pods verify Vault with it too (pods cannot mount the operator's ConfigMap
    from another namespace). A changed bundle reaches the pods at the operator's restart
    and rolls them (it is part of the config hash)."""
    vault_role_token_ttl: str = Field(default="15m", pattern=r"^[0-9]+[smh]$")
    """TTL of the Vault tokens the bots' Kubernetes-auth roles issue (renewable)."""
    vault_role_token_max_ttl: str = Field(default="24h", pattern=r"^[0-9]+[smh]$")
    """Maximum TTL after renewals; the runtime logs in again after it."""
    vault_concurrency: int = Field(default=4, ge=1, le=64)
    """At most this many Vault requests in flight from the operator."""
    vault_sweep_interval_seconds: float = Field(default=600.0, ge=1.0, le=86400.0)
    """How often the operator removes per-bot Vault policies and roles that belong to no
    TradingBot any more (orphans of a finalizer removed by hand or of a Vault outage
    during a deletion); also once at start-up."""

    journal_dsn: str | None = None
    """PostgreSQL DSN for the runtime journal, without a password (refused with one: it
    would be copied into every bot's ConfigMap)."""
    redis_url: str | None = None
    """Redis URL of the shared rate-limit buckets, without a password."""
    vault_database_mount: str | None = None
    """Mount of Vault's database secrets engine. Set: every bot gets its own short-lived
    journal login (and Redis user with ``vault_redis_connection``) from a role the operator
    writes there, and its ConfigMap holds only host, port and database. Unset: the DSN's
    own login, shared by every tenant (development only)."""
    vault_journal_connection: str = "tradebot-journal"
    """Name of the engine's PostgreSQL connection (``<mount>/config/<name>``), set up by
    the installer with a login that may create roles."""
    vault_redis_connection: str | None = None
    """Name of the engine's Redis connection; unset: no per-bot Redis users."""
    vault_data_ttl: str = Field(default="1h", pattern=r"^[0-9]+[smh]$")
    """Lease of an issued journal/Redis login; the runtime renews it."""
    vault_data_max_ttl: str = Field(default="24h", pattern=r"^[0-9]+[smh]$")
    """Longest life of one login; the runtime takes a new one before it ends."""

    tenancy: TenancyPolicy = TenancyPolicy()
    """What a namespace may ask for (Vault prefix, endpoints, images, pod placement)."""
    network_policy: NetworkPolicySettings = NetworkPolicySettings()
    """The NetworkPolicy every bot's pods get (on by default)."""

    @field_validator("journal_dsn", "redis_url")
    @classmethod
    def _no_password(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and urlsplit(value).password is not None:
            raise ValueError(
                f"{ENV_PREFIX}{str(info.field_name).upper()} carries a password: it would be "
                "written into every bot's ConfigMap; give per-bot logins with "
                f"{ENV_PREFIX}VAULT_DATABASE_MOUNT instead"
            )
        return value

    @property
    def data_credentials(self) -> bool:
        """Every bot gets its own journal (and Redis) login from Vault."""
        return self.vault_managed and self.vault_database_mount is not None

    @property
    def vault_managed(self) -> bool:
        """The operator writes per-bot policies and roles and checks the accounts' KV
        paths: it has an address and its own credentials."""
        return self.vault_address is not None and (
            self.vault_token_file is not None or self.vault_operator_role is not None
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        """Settings from ``TRADEBOT_<FIELD_NAME_UPPER>`` variables; dict and model fields
        (tenancy, network_policy) take JSON."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is None:
                continue
            annotation = field.annotation
            structured = str(annotation).startswith("dict") or (
                isinstance(annotation, type) and issubclass(annotation, BaseModel)
            )
            values[name] = json.loads(raw) if structured else raw
        if values.get("vault_ca_cert") and not values.get("vault_ca_pem"):
            try:
                values["vault_ca_pem"] = Path(values["vault_ca_cert"]).read_text()
            except OSError as exc:
                raise ValueError(
                    f"{ENV_PREFIX}VAULT_CA_CERT={values['vault_ca_cert']}: cannot read the "
                    f"Vault CA bundle ({exc.strerror or exc})"
                ) from None
        return cls.model_validate(values)


DEFAULT_LIVENESS_ENDPOINT: Final = "http://0.0.0.0:8080/healthz"


@dataclass(frozen=True)
class ProcessSettings:
    """How this operator process runs (``python -m tradebot_operator`` and kopf's start-up).

    Environment (not OperatorSettings fields: the builders never see them):

      TRADEBOT_WATCH_NAMESPACES   comma-separated namespaces (default: all namespaces)
      TRADEBOT_LIVENESS_ENDPOINT  default http://0.0.0.0:8080/healthz ("" disables it)
      TRADEBOT_LOG_FORMAT         json (default) | plain
      TRADEBOT_PEERING            kopf peering object name for active/standby operators
                                  (default: standalone, one active replica)
      TRADEBOT_API_CONCURRENCY    API requests in flight at most (default 16)
      TRADEBOT_RECONCILE_WORKERS  bots reconciled at once by the work queue (default 16)
      TRADEBOT_DEBUG              verbose logs, kopf's per-event lines included
    """

    watch_namespaces: tuple[str, ...] = ()
    liveness_endpoint: str | None = DEFAULT_LIVENESS_ENDPOINT
    json_logs: bool = True
    peering: str | None = None
    api_concurrency: int = 16
    """At most this many API requests in flight from the operator."""
    reconcile_workers: int = 16
    """Bots reconciled at once by the work queue."""
    debug: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProcessSettings:
        env = os.environ if environ is None else environ
        return cls(
            watch_namespaces=tuple(
                n for n in env.get(f"{ENV_PREFIX}WATCH_NAMESPACES", "").split(",") if n
            ),
            liveness_endpoint=(
                env.get(f"{ENV_PREFIX}LIVENESS_ENDPOINT", DEFAULT_LIVENESS_ENDPOINT) or None
            ),
            json_logs=env.get(f"{ENV_PREFIX}LOG_FORMAT", "json") == "json",
            peering=env.get(f"{ENV_PREFIX}PEERING") or None,
            api_concurrency=int(env.get(f"{ENV_PREFIX}API_CONCURRENCY", "16")),
            reconcile_workers=int(env.get(f"{ENV_PREFIX}RECONCILE_WORKERS", "16")),
            debug=bool(env.get(f"{ENV_PREFIX}DEBUG")),
        )
