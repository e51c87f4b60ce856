"""Deployment of the runtime pods of one bot x account.

Pods carry identity only (env from the downward API, names, paths); configuration comes
from the mounted ConfigMap and credentials from Vault or mounted files, never from env.
The pod template holds the RuntimeConfig's config_version, so roll-relevant changes
(strategy, symbols, shards, endpoint) roll the pods and live ones (risk, tradingState)
do not.
"""

from __future__ import annotations

from typing import Any

from tradebot_contracts import env
from tradebot_contracts import runtime_config as rc
from tradebot_contracts.names import (
    ANNOTATION_CONFIG_HASH,
    runtime_service_account_name,
    vault_role_name,
)
from tradebot_operator.api.trading_bot import RuntimeSpec
from tradebot_operator.builders.context import ExchangeContext
from tradebot_operator.builders.meta import Manifest, object_meta
from tradebot_operator.builders.runtime_config import credential_files
from tradebot_operator.builders.service import METRICS_PORT_NAME

CONTAINER_NAME = "runtime"
COMMAND = ["python", "-m", "tradebot_runtime"]
HOSTNAME_TOPOLOGY = "kubernetes.io/hostname"
VAULT_INJECTOR = "vault.hashicorp.com"

CONFIG_VOLUME = "config"
TMP_VOLUME = "tmp"
VAULT_TOKEN_VOLUME = "vault-token"
CREDENTIALS_VOLUME = "credentials"


def image(ctx: ExchangeContext) -> str:
    """The bot's explicit image, else the python strategy's image, else the default."""
    runtime = ctx.bot.spec.runtime
    if runtime is not None and runtime.image:
        return runtime.image
    python = ctx.strategy.spec.python
    if ctx.strategy.spec.type == "python" and python is not None:
        return python.image
    return ctx.settings.runtime_image


def _field_env(name: str, field_path: str) -> Manifest:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": field_path}}}


def container_env(ctx: ExchangeContext) -> list[Manifest]:
    identity: list[Manifest] = [
        _field_env(env.NAMESPACE, "metadata.namespace"),
        _field_env(env.POD_NAME, "metadata.name"),
        _field_env(env.POD_UID, "metadata.uid"),
        _field_env(env.NODE_NAME, "spec.nodeName"),
        {"name": env.BOT, "value": ctx.bot.metadata.name},
        {"name": env.ACCOUNT, "value": ctx.account.metadata.name},
        {"name": env.CONFIGMAP, "value": ctx.name},
        {"name": env.CONFIG_PATH, "value": rc.CONFIG_PATH},
        {"name": env.LEASES, "value": ",".join(s.lease_name for s in ctx.config.shards)},
        {"name": env.METRICS_PORT, "value": str(ctx.settings.metrics_port)},
    ]
    runtime = ctx.bot.spec.runtime
    extra = runtime.env if runtime is not None else []
    reserved = {item["name"] for item in identity}
    return identity + [
        {"name": var.name, "value": var.value} for var in extra if var.name not in reserved
    ]


def _resources(ctx: ExchangeContext) -> Manifest:
    runtime = ctx.bot.spec.runtime
    bot_resources = runtime.resources if runtime is not None else None
    requests: dict[str, Any] = dict(ctx.settings.default_requests)
    limits: dict[str, Any] = dict(ctx.settings.default_limits)
    if bot_resources is not None:
        requests = dict(bot_resources.requests) or requests
        limits = dict(bot_resources.limits) or limits
    out: Manifest = {}
    if limits:
        out["limits"] = dict(sorted(limits.items()))
    if requests:
        out["requests"] = dict(sorted(requests.items()))
    return out


def _probe(path: str, *, period: int, failures: int, initial_delay: int = 0) -> Manifest:
    probe: Manifest = {
        "httpGet": {"path": path, "port": METRICS_PORT_NAME, "scheme": "HTTP"},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 1,
    }
    if initial_delay:
        probe["initialDelaySeconds"] = initial_delay
    return probe


def volumes(ctx: ExchangeContext) -> list[Manifest]:
    out: list[Manifest] = [
        {
            "name": CONFIG_VOLUME,
            "configMap": {
                "name": ctx.name,
                "items": [{"key": rc.CONFIG_KEY, "path": rc.CONFIG_KEY}],
            },
        },
        {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": ctx.settings.tmp_size_limit}},
    ]
    credentials = ctx.config.credentials
    # The runtime logs in to Vault for its exchange keys or its own journal/Redis logins.
    if credentials.source == "vault" or ctx.config.data_credentials is not None:
        out.append(
            {
                "name": VAULT_TOKEN_VOLUME,
                "projected": {
                    "sources": [
                        {
                            "serviceAccountToken": {
                                "audience": ctx.settings.vault_audience,
                                "expirationSeconds": ctx.settings.vault_token_expiration_seconds,
                                "path": rc.VAULT_TOKEN_FILE,
                            }
                        }
                    ]
                },
            }
        )
    secret_ref = ctx.account.spec.credentials.secret_ref if ctx.account.spec.credentials else None
    if credentials.source == "file" and secret_ref is not None:
        out.append(
            {
                "name": CREDENTIALS_VOLUME,
                "secret": {
                    "secretName": secret_ref.name,
                    "defaultMode": 0o400,
                    "items": [
                        {"key": key, "path": credential}
                        for credential, key in sorted(credential_files(secret_ref.keys).items())
                    ],
                },
            }
        )
    return out


def volume_mounts(ctx: ExchangeContext) -> list[Manifest]:
    mounts: list[Manifest] = [
        {"name": CONFIG_VOLUME, "mountPath": rc.CONFIG_DIR, "readOnly": True},
        {"name": TMP_VOLUME, "mountPath": "/tmp"},
    ]
    names = {volume["name"] for volume in volumes(ctx)}
    if VAULT_TOKEN_VOLUME in names:
        mounts.append(
            {"name": VAULT_TOKEN_VOLUME, "mountPath": rc.VAULT_TOKEN_DIR, "readOnly": True}
        )
    if CREDENTIALS_VOLUME in names:
        mounts.append(
            {"name": CREDENTIALS_VOLUME, "mountPath": rc.CREDENTIALS_DIR, "readOnly": True}
        )
    return mounts


def injector_annotations(ctx: ExchangeContext) -> dict[str, str]:
    """Vault agent injector: one file per ccxt credential in INJECTOR_SECRETS_DIR."""
    credentials = ctx.account.spec.credentials
    if (
        ctx.settings.credentials_delivery != "injector"
        or ctx.config.credentials.source != "file"
        or credentials is None
        or credentials.vault is None
    ):
        return {}
    vault = credentials.vault
    secret = f"{vault.mount}/data/{vault.path}"
    annotations = {
        f"{VAULT_INJECTOR}/agent-inject": "true",
        f"{VAULT_INJECTOR}/role": vault_role_name(ctx.config.namespace, ctx.bot.metadata.name),
    }
    # The runtime reads INJECTOR_SECRETS_DIR/<credential>, where the injector writes.
    for credential, key in credential_files(vault.keys).items():
        annotations[f"{VAULT_INJECTOR}/agent-inject-secret-{credential}"] = secret
        annotations[f"{VAULT_INJECTOR}/agent-inject-template-{credential}"] = (
            # `index` because secret keys may contain "-", which breaks `.Data.data.key`
            f'{{{{- with secret "{secret}" -}}}}{{{{ index .Data.data "{key}" }}}}{{{{- end -}}}}'
        )
    return annotations


def _affinity(ctx: ExchangeContext, runtime: RuntimeSpec | None) -> Manifest:
    if runtime is not None and runtime.affinity:
        return dict(runtime.affinity)
    # Active and standby on different nodes: losing one node must not lose both.
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": HOSTNAME_TOPOLOGY,
                        "labelSelector": {"matchLabels": ctx.selector},
                    },
                }
            ]
        }
    }


def _container(ctx: ExchangeContext, runtime: RuntimeSpec | None) -> Manifest:
    pull_policy = (
        runtime.image_pull_policy
        if runtime is not None and runtime.image_pull_policy
        else ctx.settings.image_pull_policy
    )
    return {
        "name": CONTAINER_NAME,
        "image": image(ctx),
        "imagePullPolicy": pull_policy,
        "command": list(COMMAND),
        "env": container_env(ctx),
        "ports": [
            {
                "name": METRICS_PORT_NAME,
                "containerPort": ctx.settings.metrics_port,
                "protocol": "TCP",
            }
        ],
        # Readiness means "healthy and able to take over a shard", standbys included:
        # otherwise a rolling update (maxUnavailable 0) would wait forever on a standby.
        "readinessProbe": _probe("/readyz", period=2, failures=2),
        "livenessProbe": _probe("/healthz", period=10, failures=3, initial_delay=10),
        "resources": _resources(ctx),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": volume_mounts(ctx),
    }


def _pod_spec(ctx: ExchangeContext) -> Manifest:
    runtime = ctx.bot.spec.runtime
    grace = (
        runtime.termination_grace_period_seconds
        if runtime is not None and runtime.termination_grace_period_seconds
        else ctx.settings.termination_grace_period_seconds
    )
    spec: Manifest = {
        "serviceAccountName": runtime_service_account_name(ctx.bot.metadata.name),
        "automountServiceAccountToken": True,  # the runtime renews Leases via the API
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": grace,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": ctx.settings.run_as_user,
            "runAsGroup": ctx.settings.run_as_user,
            "fsGroup": ctx.settings.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "affinity": _affinity(ctx, runtime),
        "containers": [_container(ctx, runtime)],
        "volumes": volumes(ctx),
    }
    if runtime is not None:
        if runtime.node_selector:
            spec["nodeSelector"] = dict(sorted(runtime.node_selector.items()))
        if runtime.tolerations:
            spec["tolerations"] = [
                t.model_dump(mode="json", by_alias=True, exclude_none=True)
                for t in runtime.tolerations
            ]
        if runtime.priority_class_name:
            spec["priorityClassName"] = runtime.priority_class_name
    return spec


def deployment(ctx: ExchangeContext) -> Manifest:
    spec: Manifest = {
        "selector": {"matchLabels": ctx.selector},
        "revisionHistoryLimit": 3,
        # Surge first: the new pod becomes a standby before an old one releases its Lease.
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        },
        "template": {
            "metadata": {
                "labels": dict(sorted(ctx.labels.items())),
                "annotations": dict(
                    sorted(
                        {
                            ANNOTATION_CONFIG_HASH: ctx.config.config_version,
                            **injector_annotations(ctx),
                        }.items()
                    )
                ),
            },
            "spec": _pod_spec(ctx),
        },
    }
    if ctx.suspended:
        spec["replicas"] = 0
    elif not ctx.autoscaled:
        # Under an HPA the replica count is the HPA's field; applying it would fight it.
        spec["replicas"] = ctx.bot.spec.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(ctx.bot, ctx.name, ctx.labels),
        "spec": spec,
    }
