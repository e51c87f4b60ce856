"""Checks of one ExchangeAccount: facts ccxt knows (does the exchange exist, does it trade
this market type, has it a sandbox) and what the CRD's CEL rules also say (credentials,
TLS), as a second line of defence for objects created before a CRD upgrade."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from tradebot_operator.api.exchange_account import ExchangeAccount
from tradebot_operator.checks.chain import Problem, check, gate, run_checks
from tradebot_operator.checks.tenancy import Tenant, validate_account_tenancy

# ccxt facts ------------------------------------------------------------------------------


@cache
def _ccxt_exchange_ids() -> frozenset[str]:
    import ccxt  # heavy import: only when first needed

    return frozenset(ccxt.exchanges)


@cache
def _ccxt_capabilities(exchange_id: str) -> tuple[dict[str, Any], bool]:
    """(``has`` map, whether the exchange has a sandbox URL)."""
    import ccxt

    exchange = getattr(ccxt, exchange_id)()
    has: dict[str, Any] = dict(exchange.has)
    return has, bool(exchange.urls.get("test"))


def known_exchange(exchange_id: str) -> bool:
    return exchange_id in _ccxt_exchange_ids()


# checks, in order ------------------------------------------------------------------------


@gate  # the capability checks need a ccxt exchange
def exchange_known(account: ExchangeAccount) -> Iterator[Problem]:
    spec = account.spec
    if not known_exchange(spec.exchange):
        yield Problem(
            "UnknownExchange",
            "spec.exchange",
            f"{spec.exchange!r} is not a ccxt exchange id (e.g. binance, kraken, okx)",
        )


@check
def market_type_supported(account: ExchangeAccount) -> Iterator[Problem]:
    spec = account.spec
    has, _ = _ccxt_capabilities(spec.exchange)
    if has.get(spec.market_type) is False:
        yield Problem(
            "MarketTypeUnsupported",
            "spec.marketType",
            f"{spec.exchange} does not support {spec.market_type} markets in ccxt",
        )


@check
def sandbox_available(account: ExchangeAccount) -> Iterator[Problem]:
    spec = account.spec
    _, has_sandbox = _ccxt_capabilities(spec.exchange)
    if spec.mode == "sandbox" and not has_sandbox and spec.endpoint is None:
        yield Problem(
            "SandboxUnsupported",
            "spec.mode",
            f"{spec.exchange} has no sandbox in ccxt; set spec.endpoint or use paper",
        )


@check
def credentials_present(account: ExchangeAccount) -> Iterator[Problem]:
    spec = account.spec
    if spec.mode != "paper" and spec.credentials is None:
        yield Problem(
            "CredentialsMissing",
            "spec.credentials",
            f"a {spec.mode} account needs credentials (vault or secretRef)",
        )


@check
def credentials_source(account: ExchangeAccount) -> Iterator[Problem]:
    credentials = account.spec.credentials
    if credentials is None:
        return
    if (credentials.vault is None) == (credentials.secret_ref is None):
        yield Problem(
            "CredentialsAmbiguous",
            "spec.credentials",
            "exactly one of vault or secretRef must be set",
        )
    elif credentials.secret_ref is not None:
        yield Problem(
            "DevelopmentCredentials",
            "spec.credentials.secretRef",
            "credentials from a Kubernetes Secret are for development; use vault",
            severity="Warning",
        )


@check
def live_endpoint_uses_tls(account: ExchangeAccount) -> Iterator[Problem]:
    spec = account.spec
    if (
        spec.mode == "live"
        and spec.endpoint is not None
        and not spec.endpoint.startswith(("https://", "wss://"))
    ):
        yield Problem(
            "InsecureEndpoint",
            "spec.endpoint",
            "endpoint of a live account must use TLS (https:// or wss://)",
        )


ACCOUNT_CHECKS = (
    exchange_known,
    market_type_supported,
    sandbox_available,
    credentials_present,
    credentials_source,
    live_endpoint_uses_tls,
)


def validate_account(account: ExchangeAccount, tenant: Tenant | None = None) -> list[Problem]:
    """The account's own checks, then (given the tenant: its namespace and the
    installation's policy) what it may ask for as a tenant."""
    problems = run_checks(ACCOUNT_CHECKS, account)
    return problems + (validate_account_tenancy(account, tenant) if tenant else [])
