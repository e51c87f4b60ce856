"""The Vault grant sweep's pure decision (services/vault.py ``orphaned_grants``): which
per-bot policies and roles go, given what Vault listed, the policies' owner comments and
the live bots; and the owner comment itself (builders/vault_policy.py)."""

from __future__ import annotations

from tradebot_contracts.names import vault_role_name
from tradebot_operator.builders.vault_policy import SecretPath, grant_owner, policy_hcl
from tradebot_operator.services.vault import GrantSweep, orphaned_grants

SECRETS = (SecretPath("secret", "tradebot/prod/a"),)


def _policy(ns: str, bot: str) -> str:
    return policy_hcl(SECRETS, owner=(ns, bot))


def test_owner_comment_round_trips_and_is_absent_without_owner() -> None:
    assert grant_owner(_policy("prod", "alpha.v2")) == ("prod", "alpha.v2")
    assert grant_owner(policy_hcl(SECRETS)) is None
    assert grant_owner(None) is None
    assert grant_owner('path "x" { capabilities = ["read"] }  # tradebot: namespace=a') is None


def test_live_bots_keep_their_grants_and_other_names_are_never_touched() -> None:
    live = {("prod", "alpha"), ("prod", "beta")}
    names = [vault_role_name(*key) for key in sorted(live)]
    plan = orphaned_grants(
        policies=[*names, "default", "root", "tradebot-operator", "chaos-prod"],
        roles=[*names, "chaos-prod"],
        policy_texts={n: _policy("prod", n) for n in names},
        live_bots=live,
    )
    assert plan == GrantSweep()


def test_orphan_with_owner_comment_is_confirmed_with_the_api_server_first() -> None:
    gone = vault_role_name("prod", "gone")
    # A bot created a moment ago that the index has not seen yet looks exactly the same:
    # the sweep asks the API server about the named bot before removing anything.
    fresh = vault_role_name("prod", "fresh")
    plan = orphaned_grants(
        policies=[gone, fresh],
        roles=[gone, fresh],
        policy_texts={gone: _policy("prod", "gone"), fresh: _policy("prod", "fresh")},
        live_bots={("prod", "alpha")},
    )
    assert plan.remove == ()
    assert plan.confirm == {gone: ("prod", "gone"), fresh: ("prod", "fresh")}


def test_grant_without_owner_comment_goes_only_when_every_namespace_is_watched() -> None:
    legacy = vault_role_name("prod", "legacy")  # policy written before owner comments
    role_only = vault_role_name("prod", "role-only")  # its policy was deleted by hand
    policies, roles = [legacy], [legacy, role_only]
    texts = {legacy: policy_hcl(SECRETS)}
    everywhere = orphaned_grants(policies, roles, texts, live_bots=set())
    assert everywhere.remove == tuple(sorted([legacy, role_only]))
    assert everywhere.confirm == {}
    scoped = orphaned_grants(policies, roles, texts, live_bots=set(), namespaces=["prod"])
    assert scoped.remove == () and scoped.confirm == {}
    assert set(scoped.kept) == {legacy, role_only}


def test_watched_namespaces_limit_the_sweep_to_their_own_bots() -> None:
    mine, theirs = vault_role_name("team-a", "gone"), vault_role_name("team-b", "gone")
    plan = orphaned_grants(
        policies=[mine, theirs],
        roles=[mine, theirs],
        policy_texts={mine: _policy("team-a", "gone"), theirs: _policy("team-b", "gone")},
        live_bots=set(),
        namespaces=["team-a"],
    )
    assert plan.confirm == {mine: ("team-a", "gone")}
    assert plan.kept == (theirs,)


def test_an_owner_comment_that_does_not_give_back_the_name_is_not_trusted() -> None:
    name = vault_role_name("prod", "gone")
    forged = _policy("prod", "alpha")  # names a live bot, but that bot's grant is another name
    plan = orphaned_grants([name], [name], {name: forged}, live_bots={("prod", "alpha")})
    assert plan.confirm == {} and plan.remove == (name,)  # judged as a grant with no owner
    scoped = orphaned_grants(
        [name], [name], {name: forged}, live_bots={("prod", "alpha")}, namespaces=["prod"]
    )
    assert scoped.kept == (name,)


def test_a_bot_being_deleted_still_counts_as_live() -> None:
    # The LIST includes bots with a deletionTimestamp: their finalizer removes the grant.
    name = vault_role_name("prod", "leaving")
    plan = orphaned_grants([name], [name], {name: _policy("prod", "leaving")},
                           live_bots={("prod", "leaving")})  # fmt: skip
    assert plan == GrantSweep()
