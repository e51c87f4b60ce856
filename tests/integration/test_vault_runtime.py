"""The runtime's CredentialsProvider against real OpenBao and real TokenReview: token
renewal and re-login past the max TTL, key rotation without restart (the ccxt instance's
keys are swapped), and an OpenBao outage: cached keys until the token expires, then fail
closed (keys removed, usable False, heartbeat message, metric 0).

The policy and role come from the operator's own code (VaultAdmin + bot_grant) with a
short TTL; OpenBao is function-scoped because the test kills it."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from pathlib import Path

import ccxt
import pytest
import requests
from prometheus_client import REGISTRY

from devenv import openbao as devenv_openbao
from support.cluster import Cluster
from tradebot_contracts.names import runtime_service_account_name, vault_role_name
from tradebot_contracts.runtime_config import CredentialsConfig, VaultCredentials
from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.api.trading_bot import TradingBot
from tradebot_operator.builders.runtime_config import credentials_config
from tradebot_operator.builders.vault_policy import BotGrant, SecretPath, bot_grant
from tradebot_operator.services.vault import VaultAdmin
from tradebot_operator.settings import OperatorSettings
from tradebot_runtime.credentials import CredentialsProvider, apply_to_exchange

pytestmark = pytest.mark.integration

TTL_S = 6


def _metric(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    return float(value if value is not None else -1)


def test_rotation_renewal_and_outage_fail_closed(cluster: Cluster, tmp_path: Path) -> None:
    ns = cluster.namespace("vrt")
    sa = runtime_service_account_name("bot")
    cluster.kubectl("create", "serviceaccount", sa, "-n", ns)
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="tradebot-openbao-fn-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)  # after OpenBao stops
        vault = stack.enter_context(devenv_openbao.running(workdir, root_token="fn-root"))
        devenv_openbao.configure_kubernetes_auth(vault, cluster, ns)
        path = f"tradebot/{ns}/bot"
        devenv_openbao.put_secret(vault, path, {"apiKey": "key-1", "secret": "sec-1"})
        token_file = tmp_path / "operator-token"
        token_file.write_text(vault.root_token)
        settings = OperatorSettings(
            vault_address=vault.addr, vault_token_file=str(token_file),
            vault_role_token_ttl=f"{TTL_S}s", vault_role_token_max_ttl=f"{2 * TTL_S}s",
        )  # fmt: skip
        role = vault_role_name(ns, "bot")
        ttls = (settings.vault_role_token_ttl, settings.vault_role_token_max_ttl)
        grant = BotGrant(ns, "bot", role, sa, (SecretPath("secret", path),), "vault", *ttls)
        asyncio.run(VaultAdmin(settings).sync_bot(grant))

        jwt = tmp_path / "token"
        jwt.write_text(cluster.token(ns, sa, "vault", "10m"))
        config = CredentialsConfig(source="vault", vault=VaultCredentials(
            address=vault.addr, auth_mount="kubernetes", role=role, kv_mount="secret",
            path=path, keys={"apiKey": "apiKey", "secret": "secret"}, token_path=str(jwt),
        ))  # fmt: skip
        provider = CredentialsProvider(config, poll_interval_s=0.3)
        exchange = ccxt.binance({})
        rotations = _metric("tradebot_credentials_rotations_total")

        async def ticks(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                await provider.tick()
                await asyncio.sleep(0.3)

        async def scenario() -> None:
            values = await provider.start()
            apply_to_exchange(exchange, values)
            provider.on_change(lambda v: apply_to_exchange(exchange, v))
            assert exchange.apiKey == "key-1"
            session = provider.session
            assert session is not None and 0 < session.ttl <= TTL_S
            first_token = session.client.token

            # Rotation: a new KV version reaches the ccxt instance without a restart.
            devenv_openbao.put_secret(vault, path, {"apiKey": "key-2", "secret": "sec-2"})
            await ticks(1.5)
            assert (exchange.apiKey, exchange.secret) == ("key-2", "sec-2")
            assert _metric("tradebot_credentials_rotations_total") == rotations + 1

            # Past TTL and max TTL: renewed, then a fresh login; still reading.
            await ticks(2 * TTL_S + 2)
            assert provider.usable and provider.problem() is None
            assert session.client.token != first_token  # re-login after the max TTL
            devenv_openbao.put_secret(vault, path, {"apiKey": "key-3", "secret": "sec-3"})
            await ticks(1.5)
            assert exchange.apiKey == "key-3"

            # Outage: cached keys until the token expires, then fail closed.
            stack.close()  # stops OpenBao
            await provider.tick()
            assert provider.usable and exchange.apiKey == "key-3"
            assert "vault unreachable, using cached credentials" in (provider.problem() or "")
            assert _metric("tradebot_credentials_usable") == 1
            deadline = session.expires_at
            await ticks(max(0.0, deadline - time.monotonic()) + 1.0)
            assert not provider.usable
            assert exchange.apiKey == "" and exchange.secret == ""
            with pytest.raises(ccxt.AuthenticationError):
                exchange.check_required_credentials()  # no private call leaves the pod
            assert "credentials unusable, private calls stopped" in (provider.problem() or "")
            assert _metric("tradebot_credentials_usable") == 0
            assert provider.current() == {}

        asyncio.run(scenario())


def test_https_vault_is_verified_with_the_rendered_ca_bundle(
    cluster: Cluster, tmp_path: Path
) -> None:
    """OpenBao on https with its own CA: the operator verifies it with TRADEBOT_VAULT_CA_CERT,
    renders the bundle into the runtime config, and the runtime's login and read verify
    with it; without the bundle the same login fails certificate verification."""
    ns = cluster.namespace("vtls")
    sa = runtime_service_account_name("bot")
    cluster.kubectl("create", "serviceaccount", sa, "-n", ns)
    workdir = Path(tempfile.mkdtemp(prefix="tradebot-openbao-tls-"))
    try:
        with devenv_openbao.running(workdir, root_token="tls-root", tls=True) as vault:
            assert vault.addr.startswith("https://") and vault.ca_cert is not None
            devenv_openbao.configure_kubernetes_auth(vault, cluster, ns)
            path = f"tradebot/{ns}/bot"
            devenv_openbao.put_secret(vault, path, {"apiKey": "tls-key", "secret": "tls-sec"})
            token_file = tmp_path / "operator-token"
            token_file.write_text(vault.root_token)
            settings = OperatorSettings.from_env({
                "TRADEBOT_VAULT_ADDRESS": vault.addr,
                "TRADEBOT_VAULT_TOKEN_FILE": str(token_file),
                "TRADEBOT_VAULT_CA_CERT": vault.ca_cert,
            })  # fmt: skip
            account = ExchangeAccount.model_validate({
                "metadata": {"name": "xa", "namespace": ns, "generation": 1},
                "spec": {"exchange": "binance", "mode": "sandbox",
                         "credentials": {"vault": {"path": path}}},
            })  # fmt: skip
            bot = TradingBot.model_validate({
                "metadata": {"name": "bot", "namespace": ns},
                "spec": {
                    "strategyRef": {"name": "sma"}, "mode": "live",
                    "exchanges": [{"account": "xa", "symbols": ["BTC/USDT"],
                                   "allocation": {"quote": "USDT", "amount": "100"}}],
                    "risk": {"maxPositionNotional": "500", "maxOrderNotional": "50",
                             "maxDailyLoss": "20", "maxOrdersPerMinute": 10,
                             "priceBandPercent": "5"},
                },
            })  # fmt: skip

            async def operator_side() -> str | None:
                admin = VaultAdmin(settings)
                await admin.sync_bot(bot_grant(bot, {"xa": account}, settings))
                check = await admin.check_account(account)
                return check.status if check is not None else None

            assert asyncio.run(operator_side()) == "True"  # over https, verified

            # The runtime config as the pod reads it from its ConfigMap.
            rendered = credentials_config(bot, account, settings)
            assert rendered.vault is not None and rendered.vault.ca_cert == settings.vault_ca_pem
            config = CredentialsConfig.model_validate_json(
                rendered.model_dump_json(by_alias=True, exclude_none=True)
            )
            jwt = tmp_path / "token"
            jwt.write_text(cluster.token(ns, sa, "vault", "10m"))
            assert config.vault is not None
            vault_config = config.vault.model_copy(update={"token_path": str(jwt)})
            config = config.model_copy(update={"vault": vault_config})
            values = asyncio.run(CredentialsProvider(config).start())
            assert values == {"apiKey": "tls-key", "secret": "tls-sec"}

            bare = config.model_copy(
                update={"vault": vault_config.model_copy(update={"ca_cert": None})}
            )
            with pytest.raises(requests.exceptions.SSLError):
                asyncio.run(CredentialsProvider(bare).start())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
