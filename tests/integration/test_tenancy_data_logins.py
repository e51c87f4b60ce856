"""Tenancy finding 7: the journal and Redis are no longer shared by every tenant with one
login. Each bot takes its own short-lived PostgreSQL login and Redis ACL user from Vault's
database secrets engine (roles written by the operator's own code, VaultAdmin + bot_grant);
its runtime config holds only host, port and database.

Against real servers: a PostgreSQL and a Redis that require passwords (as an installation's
do), OpenBao with the kubernetes auth method checking tokens by TokenReview against the test
cluster, and two bots in two namespaces. Bot A's login cannot read or write bot B's journal
rows, nor B's rate budget keys, nor even ask Vault for B's logins; the logins are renewed
and replaced before their max TTL while the journal stays usable; removing a bot's grant
removes its login roles."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from hvac.exceptions import Forbidden

from devenv import openbao as devenv_openbao
from devenv import postgres as devenv_postgres
from devenv import redis as devenv_redis
from devenv import vault_database
from support.cluster import Cluster
from support.models import paper_models
from tradebot_contracts.names import (
    presence_key,
    rate_limit_budget_key,
    runtime_service_account_name,
)
from tradebot_contracts.runtime_config import RuntimeConfig
from tradebot_operator.builders.runtime_config import build_runtime_config
from tradebot_operator.builders.vault_policy import bot_grant
from tradebot_operator.services.vault import VaultAdmin
from tradebot_operator.settings import OperatorSettings
from tradebot_runtime.data_logins import DataLogins
from tradebot_runtime.journal import Fence, Journal
from tradebot_runtime.presence import RedisPresence
from tradebot_runtime.ratelimit import SharedRateLimiter, order_count_params

pytestmark = pytest.mark.integration

PG_ADMIN_PASSWORD = "pg-owner-test-password"
REDIS_ADMIN_PASSWORD = "redis-admin-test-password"
TTL_S = 4


@pytest.fixture
def servers(cluster: Cluster) -> Iterator[dict[str, Any]]:
    """Password-protected PostgreSQL and Redis, and OpenBao with the database engine."""
    with contextlib.ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="tradebot-datalogins-"))
        tmp.chmod(0o755)  # PostgreSQL runs as its own user and must reach tmp/pg
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        pg = stack.enter_context(devenv_postgres.running(tmp / "pg", password=PG_ADMIN_PASSWORD))
        rd = stack.enter_context(devenv_redis.running(tmp / "redis", password=REDIS_ADMIN_PASSWORD))
        vault = stack.enter_context(devenv_openbao.running(tmp / "bao", root_token="dl-root"))
        reviewer_ns = cluster.namespace("dlrev")
        devenv_openbao.configure_kubernetes_auth(vault, cluster, reviewer_ns)
        engine = vault_database.configure(vault, pg.dsn, rd.url)
        token_file = tmp / "operator-token"
        token_file.write_text(vault.root_token)
        settings = OperatorSettings.from_env({
            "TRADEBOT_VAULT_ADDRESS": vault.addr,
            "TRADEBOT_VAULT_TOKEN_FILE": str(token_file),
            # what the operator is given: host, port and database, no login
            "TRADEBOT_JOURNAL_DSN": f"postgresql://127.0.0.1:{pg.port}/tradebot",
            "TRADEBOT_REDIS_URL": f"redis://127.0.0.1:{rd.port}/0",
            "TRADEBOT_VAULT_DATA_TTL": f"{TTL_S}s",
            "TRADEBOT_VAULT_DATA_MAX_TTL": f"{2 * TTL_S}s",
            **engine.operator_env(),
        })  # fmt: skip
        yield {"pg": pg, "redis": rd, "vault": vault, "settings": settings, "tmp": tmp}


def _runtime_config(
    cluster: Cluster, settings: OperatorSettings, ns: str, bot: str, tmp: Path
) -> RuntimeConfig:
    """The bot's runtime config as its pod reads it from the ConfigMap, with the pod's
    projected token (a real one for the bot's ServiceAccount)."""
    trading_bot, strategy, account = paper_models(ns, bot, "acct")
    config = build_runtime_config(
        trading_bot, strategy, account, trading_bot.spec.exchanges[0], settings
    )
    config = RuntimeConfig.loads(config.dumps())
    jwt = tmp / f"{ns}-{bot}.jwt"
    jwt.write_text(cluster.token(ns, runtime_service_account_name(bot), "vault", "10m"))
    assert config.data_credentials is not None
    logins = config.data_credentials.model_copy(update={"token_path": str(jwt)})
    return config.model_copy(update={"data_credentials": logins})


def test_each_bot_reaches_only_its_own_journal_rows_and_budget_keys(
    cluster: Cluster, servers: dict[str, Any]
) -> None:
    settings: OperatorSettings = servers["settings"]
    tmp: Path = servers["tmp"]
    bots = {}
    for prefix, name in (("dla", "alpha"), ("dlb", "beta")):
        ns = cluster.namespace(prefix)
        cluster.kubectl("create", "serviceaccount", runtime_service_account_name(name), "-n", ns)
        trading_bot, _, account = paper_models(ns, name, "acct")
        asyncio.run(
            VaultAdmin(settings).sync_bot(bot_grant(trading_bot, {"acct": account}, settings))
        )
        bots[name] = (ns, _runtime_config(cluster, settings, ns, name, tmp))
    (ns_a, config_a), (ns_b, config_b) = bots["alpha"], bots["beta"]

    # The ConfigMap holds host, port and database only: no user name, no password.
    text = config_a.dumps()
    for secret in (PG_ADMIN_PASSWORD, REDIS_ADMIN_PASSWORD, "tradebot@", "default:"):
        assert secret not in text
    assert config_a.journal_dsn == f"postgresql://127.0.0.1:{servers['pg'].port}/tradebot"

    async def scenario() -> None:
        logins_a, logins_b = (
            DataLogins(config_a.data_credentials),
            DataLogins(config_b.data_credentials),
        )  # type: ignore[arg-type]
        await logins_a.start()
        await logins_b.start()
        assert logins_a.journal.username != logins_b.journal.username
        dsn = config_a.journal_dsn or ""
        journal_a = await Journal.connect(
            dsn, user=logins_a.journal.username, password=logins_a.journal.password
        )
        journal_b = await Journal.connect(
            dsn, user=logins_b.journal.username, password=logins_b.journal.password
        )
        fence_a = Fence(f"{ns_a}/alpha", "acct", 0, 1)
        fence_b = Fence(f"{ns_b}/beta", "acct", 0, 1)
        await journal_a.take_shard(fence_a, "pod-a")
        await journal_b.take_shard(fence_b, "pod-b")
        await journal_b.audit(fence_b.bot, "acct", "test.beta", shard=0, epoch=1, data={})

        # A sees only its own rows, and cannot write as B (row-level security).
        async with journal_a.pool.acquire() as conn:
            assert {r["bot"] for r in await conn.fetch("SELECT bot FROM shard_epochs")} == {
                fence_a.bot
            }
            assert await conn.fetch("SELECT * FROM audit_events WHERE bot = $1", fence_b.bot) == []
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("SELECT * FROM journal_logins")
            update = "UPDATE shard_epochs SET epoch = 99 WHERE bot = $1"
            assert await conn.execute(update, fence_b.bot) == "UPDATE 0"  # B's rows unseen
        assert await journal_a.current_epoch(fence_b) is None
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await journal_a.take_shard(fence_b, "pod-a")
        assert await journal_b.current_epoch(fence_b) == 1

        # Redis: A's user may use its account's budget keys only.
        client_a = aioredis.Redis(
            host="127.0.0.1", port=servers["redis"].port,
            credential_provider=logins_a.redis_credentials(),
        )  # fmt: skip
        key_a, key_b = rate_limit_budget_key(ns_a, "acct"), rate_limit_budget_key(ns_b, "acct")
        await client_a.set(key_a, "1")
        await client_a.zadd(f"{key_a}:pods", {"pod-a": 1})
        for attempt in (client_a.get(key_b), client_a.set(f"{key_b}:orders", "1")):
            with pytest.raises(aioredis.ResponseError, match="no permissions"):
                await attempt
        with pytest.raises(aioredis.ResponseError, match="no permissions"):
            await client_a.flushall()
        # what the runtime does with it: the shared budget (Lua) and the presence set
        orders_key = f"{key_a}:orders"  # as the runtime names the order-count bucket
        limiter = SharedRateLimiter(client_a, orders_key, order_count_params(10), retry_s=60)
        await limiter.acquire(1)
        assert not limiter.using_local_share and await client_a.exists(orders_key)
        presence = RedisPresence(client_a, presence_key(ns_a, "alpha", "acct"), "pod-a", 30)
        await presence.beat()
        assert await presence.live_pods() == 1
        foreign = RedisPresence(client_a, presence_key(ns_b, "beta", "acct"), "pod-a", 30)
        with pytest.raises(aioredis.ResponseError, match="no permissions"):
            await foreign.beat()
        # and A's Vault token may not even ask for B's logins
        with pytest.raises(Forbidden):
            logins_a.session.client.read(f"database/creds/{config_b.data_credentials.journal_role}")

        # Renewal, then a new login before the max TTL; the journal follows it.
        replaced: list[str] = []

        async def follow(login: Any) -> None:
            replaced.append(login.username)
            await journal_a.use_login(login.username, login.password)

        logins_a.on_change("journal", follow)
        first = logins_a.journal.username
        end = time.monotonic() + 3 * TTL_S
        while time.monotonic() < end:
            await logins_a.tick()
            assert await journal_a.current_epoch(fence_a) == 1
            await asyncio.sleep(0.5)
        assert replaced and logins_a.journal.username != first and logins_a.error is None
        async with journal_a.pool.acquire() as conn:
            assert await conn.fetchval("SELECT session_user") == logins_a.journal.username
        await client_a.aclose()
        for journal in (journal_a, journal_b):
            await journal.close()

    asyncio.run(scenario())

    # Removing the grant removes the login roles: no new login for a deleted bot.
    admin = servers["vault"].admin()
    name = config_a.data_credentials.journal_role  # type: ignore[union-attr]
    asyncio.run(VaultAdmin(settings).remove_bot(name))
    listed = admin.adapter.list("/v1/database/roles")["data"]["keys"]
    assert name not in listed and f"{name}-redis" not in listed
    assert config_b.data_credentials.journal_role in listed  # type: ignore[union-attr]
