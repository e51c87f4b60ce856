"""Pure builders of per-bot journal and Redis logins (tenancy finding 7): the database
engine roles, the bot's policy lines, the operator's own policy, the runtime config (host,
port and database only) and the settings that refuse a password in a DSN."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from support.models import paper_models
from tradebot_contracts import names
from tradebot_operator.builders.context import ExchangeContext
from tradebot_operator.builders.data_access import (
    RUNTIME_GROUP,
    database_roles,
    journal_role,
    redis_key_patterns,
    without_login,
)
from tradebot_operator.builders.deployment import VAULT_TOKEN_VOLUME, volumes
from tradebot_operator.builders.runtime_config import build_runtime_config
from tradebot_operator.builders.vault_policy import bot_grant, operator_policy_hcl
from tradebot_operator.settings import OperatorSettings

VAULT = {"vault_address": "https://vault:8200", "vault_token_file": "/t"}
LOGINS = OperatorSettings(
    **VAULT,
    vault_database_mount="database",
    vault_redis_connection="tradebot-redis",
    journal_dsn="postgresql://journal.db:5432/tradebot",
    redis_url="redis://redis.db:6379/0",
)


def test_journal_role_creates_a_member_of_the_runtime_group_recorded_with_its_bot() -> None:
    role = journal_role("prod", "alpha", LOGINS)
    assert role.name == names.vault_role_name("prod", "alpha")
    assert role.db_name == "tradebot-journal"
    create = " ".join(role.creation_statements)
    assert f"IN ROLE {RUNTIME_GROUP}" in create and "VALID UNTIL '{{expiration}}'" in create
    assert "INSERT INTO journal_logins (login, bot) VALUES ('{{name}}', 'prod/alpha')" in create
    revoke = " ".join(role.revocation_statements)
    assert "DELETE FROM journal_logins WHERE login = '{{name}}'" in revoke
    assert 'DROP ROLE IF EXISTS "{{name}}"' in revoke
    body = role.request()
    assert (body["default_ttl"], body["max_ttl"]) == ("1h", "24h")


def test_redis_user_reaches_only_its_accounts_budget_keys() -> None:
    patterns = redis_key_patterns("prod", "alpha", ["b", "a", "a"])
    key_a, key_b = (names.rate_limit_budget_key("prod", a) for a in ("a", "b"))
    seen_a, seen_b = (names.presence_key("prod", "alpha", a) for a in ("a", "b"))
    assert patterns == [
        f"~{key_a}", f"~{key_a}:*", f"~{seen_a}", f"~{key_b}", f"~{key_b}:*", f"~{seen_b}"
    ]  # fmt: skip
    roles = database_roles("prod", "alpha", ["a"], LOGINS)
    redis = next(r for r in roles if r.db_name == "tradebot-redis")
    assert redis.name == names.vault_redis_role_name("prod", "alpha")
    rules = json.loads(redis.creation_statements[0])
    assert rules == [*redis_key_patterns("prod", "alpha", ["a"]), "resetchannels", "+@all",
                     "-@dangerous"]  # fmt: skip
    assert not any(rule in ("~*", "allkeys") for rule in rules)


def test_no_login_roles_unless_the_installation_enables_them() -> None:
    assert database_roles("prod", "alpha", ["a"], OperatorSettings(**VAULT)) == ()
    no_redis = OperatorSettings(**VAULT, vault_database_mount="database")
    assert [r.db_name for r in database_roles("prod", "alpha", ["a"], no_redis)] == [
        "tradebot-journal"
    ]
    # the database mount without the operator's own Vault login: nothing to write with
    assert not OperatorSettings(vault_database_mount="database").data_credentials


def test_a_paper_bot_without_keys_still_gets_a_grant_for_its_logins() -> None:
    trading_bot, _, account = paper_models()
    grant = bot_grant(trading_bot, {"paper": account}, LOGINS)
    assert grant.secrets == () and not grant.needs_nothing
    role = names.vault_role_name("prod", "alpha")
    assert f'path "database/creds/{role}"' in grant.policy
    assert f'path "database/creds/{role}-redis"' in grant.policy
    assert bot_grant(trading_bot, {"paper": account}, OperatorSettings(**VAULT)).needs_nothing


def test_the_operator_may_write_login_roles_but_never_read_logins() -> None:
    hcl = operator_policy_hcl(database_mount="database")
    assert f'path "database/roles/{names.VAULT_BOT_PREFIX}*"' in hcl
    assert "database/creds" not in hcl and "database/config" not in hcl
    assert "database/" not in operator_policy_hcl()


def test_the_configmap_holds_host_port_and_database_only() -> None:
    trading_bot, strategy, account = paper_models()
    config = build_runtime_config(
        trading_bot, strategy, account, trading_bot.spec.exchanges[0], LOGINS
    )
    assert config.journal_dsn == "postgresql://journal.db:5432/tradebot"
    assert config.redis_url == "redis://redis.db:6379/0"
    logins = config.data_credentials
    assert logins is not None and logins.journal_role == names.vault_role_name("prod", "alpha")
    assert logins.redis_role == names.vault_redis_role_name("prod", "alpha")
    # a DSN given with a user keeps it without data logins, loses it with them
    with_user = LOGINS.model_copy(update={"journal_dsn": "postgresql://shared@db:5432/tb"})
    stripped = build_runtime_config(
        trading_bot, strategy, account, trading_bot.spec.exchanges[0], with_user
    )
    assert stripped.journal_dsn == "postgresql://db:5432/tb"


def test_the_runtime_gets_a_vault_token_for_its_logins_without_exchange_keys() -> None:
    trading_bot, strategy, account = paper_models()
    exchange = trading_bot.spec.exchanges[0]
    for settings, mounted in ((LOGINS, True), (OperatorSettings(**VAULT), False)):
        config = build_runtime_config(trading_bot, strategy, account, exchange, settings)
        ctx = ExchangeContext(trading_bot, strategy, account, exchange, settings, config)
        assert (VAULT_TOKEN_VOLUME in {v["name"] for v in volumes(ctx)}) is mounted


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@db:5432/tb?sslmode=require", "postgresql://db:5432/tb?sslmode=require"),
        ("redis://default@[::1]:6379/0", "redis://[::1]:6379/0"),
        ("redis://r:6379/0", "redis://r:6379/0"),
    ],
)
def test_without_login(url: str, expected: str) -> None:
    assert without_login(url) == expected


@pytest.mark.parametrize("field", ["JOURNAL_DSN", "REDIS_URL"])
def test_a_password_in_the_dsn_is_refused_naming_the_setting(field: str) -> None:
    url = "postgresql://u:secret@db/tb" if field == "JOURNAL_DSN" else "redis://:secret@r:6379/0"
    with pytest.raises(ValidationError, match=f"TRADEBOT_{field} carries a password") as info:
        OperatorSettings.from_env({f"TRADEBOT_{field}": url})
    assert "secret@" not in str(info.value).split("input_value")[0]
