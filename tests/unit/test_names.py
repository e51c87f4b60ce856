"""Generated names are valid Kubernetes names for any input, deterministic and distinct."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from tradebot_contracts import names

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

# Kubernetes object names: DNS-1123 subdomains up to 253 characters.
subdomain = st.from_regex(r"\A[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z", fullmatch=True)


def valid_label(name: str) -> bool:
    return len(name) <= 63 and bool(DNS_LABEL.match(name))


@settings(deadline=None)  # shared CI cores: no per-example time limit
@given(subdomain, subdomain, st.integers(min_value=0, max_value=63))
def test_every_generated_name_is_a_dns_label(bot: str, account: str, shard: int) -> None:
    for name in (
        names.exchange_object_name(bot, account),
        names.lease_name(bot, account, shard),
        names.runtime_service_account_name(bot),
        names.vault_role_name("ns", bot),
    ):
        assert valid_label(name), name
    service = names.metrics_service_name(bot, account)
    assert len(service) <= 63 and DNS1035.match(service), service


@settings(deadline=None)  # shared CI cores: no per-example time limit
@given(subdomain, subdomain)
def test_labels_are_valid_label_values(bot: str, account: str) -> None:
    for value in names.runtime_labels(bot, account).values():
        assert len(value) <= 63 and LABEL_VALUE.match(value), value


@settings(deadline=None)  # shared CI cores: no per-example time limit
@given(subdomain, st.integers(min_value=0, max_value=63))
def test_lease_name_keeps_the_shard_number(bot: str, shard: int) -> None:
    assert names.lease_name(bot, "acct", shard).endswith(f"-{shard}")


def test_short_names_are_readable_with_a_hash_of_their_parts() -> None:
    cm = names.exchange_object_name("btc-eth", "binance-paper")
    assert cm.startswith("btc-eth-binance-paper-") and len(cm) == len("btc-eth-binance-paper") + 9
    lease = names.lease_name("btc-eth", "binance-paper", 2)
    assert lease == f"{cm}-2"
    assert (
        names.metrics_service_name("bot", "acct")
        == f"{names.exchange_object_name('bot', 'acct')}-metrics"
    )
    assert names.label_value("btc-eth") == "btc-eth"


# Tenancy findings 2 and 8: names joined from two free-form parts must not collide however
# "-" falls inside them (one bot would take over another's ConfigMap, Lease or Vault role).


def test_child_names_of_different_bot_account_pairs_never_collide() -> None:
    pairs = [("a", "b-c"), ("a-b", "c")]
    for build in (
        names.exchange_object_name,
        names.metrics_service_name,
        lambda bot, account: names.lease_name(bot, account, 0),
    ):
        first, second = (build(*pair) for pair in pairs)
        assert first != second, build


def test_vault_roles_of_different_namespace_bot_pairs_never_collide() -> None:
    assert names.vault_role_name("a-b", "c") != names.vault_role_name("a", "b-c")


@settings(deadline=None)  # shared CI cores: no per-example time limit
@given(subdomain, subdomain, subdomain, subdomain)
def test_joined_names_are_distinct_for_distinct_pairs(a: str, b: str, c: str, d: str) -> None:
    if (a, b) != (c, d):
        assert names.exchange_object_name(a, b) != names.exchange_object_name(c, d)
        assert names.vault_role_name(a, b) != names.vault_role_name(c, d)


def test_per_bot_vault_names_can_never_be_the_operators_own_policy() -> None:
    # finding 3: the operator's policy grants sys/policy/<prefix>*; its own name must not match
    assert names.vault_role_name("ns", "bot").startswith(names.VAULT_BOT_PREFIX)
    assert not names.OPERATOR_POLICY_NAME.startswith(names.VAULT_BOT_PREFIX)


def test_truncation_is_deterministic_and_distinct() -> None:
    a = "x" * 100 + "a"
    b = "x" * 100 + "b"
    assert names.exchange_object_name(a, "acct") == names.exchange_object_name(a, "acct")
    assert names.exchange_object_name(a, "acct") != names.exchange_object_name(b, "acct")
    assert len(names.exchange_object_name(a, "acct")) == 63
    assert names.label_value(a) != names.label_value(b)


def test_dots_are_replaced_without_collisions() -> None:
    dotted = names.exchange_object_name("bot", "binance.main")
    dashed = names.exchange_object_name("bot", "binance-main")
    assert valid_label(dotted)
    assert dotted != dashed


def test_service_name_starts_with_a_letter() -> None:
    assert names.metrics_service_name("1bot", "acct").startswith("tb-")


def test_selector_is_a_subset_of_the_labels() -> None:
    labels = names.runtime_labels("bot", "acct")
    selector = names.runtime_selector("bot", "acct")
    assert selector.items() <= labels.items()
    assert labels[names.LABEL_MANAGED_BY] == "tradebot-operator"
    assert labels[names.LABEL_COMPONENT] == "runtime"
    assert labels[names.LABEL_NAME] == "tradebot"
