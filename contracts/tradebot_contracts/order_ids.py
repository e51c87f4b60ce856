"""Deterministic client order ids: the key of exactly-once order placement.

An id is derived from (bot, account, shard, epoch, sequence), so after a timeout, crash
or failover the runtime can look an order up by the id it journaled instead of guessing.

Layout (lowercase base36, no separators, so it fits every supported exchange's charset)::

    t <owner:6> <len><shard> <len><epoch> <len><seq>

``owner`` is a 6-character hash of (bot, account): bots sharing one exchange account never
produce the same id, and reconciliation can tell our orders from anyone else's. Each
number is written in canonical base36 (no leading zeros) preceded by its length as one
base36 digit, which makes the encoding injective and parseable without delimiters.
Example: bot ``ns/b1`` on ``acct`` (owner ``0jsm61``), shard 0, epoch 3, seq 1000 ->
``t0jsm61`` ``10`` ``13`` ``2rs`` = ``t0jsm6110132rs``. The longest possible id (shard
1224, epoch 2**31, seq 2**63) is 31 characters.

Some exchanges require a fixed prefix (gate.io: ``t-``); ``ClientIdRule.prefix`` adds it.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from typing import Final

FORMAT_MARKER: Final = "t"
OWNER_LENGTH: Final = 6
_ALPHABET: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
_DIGIT_VALUE: Final = {c: i for i, c in enumerate(_ALPHABET)}
_MAX_FIELD_LENGTH: Final = len(_ALPHABET) - 1


class ClientOrderIdError(ValueError):
    """An id cannot be built for the exchange, or a string is not one of our ids."""


@dataclass(frozen=True, slots=True)
class ClientIdRule:
    """What one exchange accepts as a client order id, and the ccxt param that carries it."""

    param: str
    max_length: int
    pattern: re.Pattern[str]
    prefix: str = ""
    lookup_param: str | None = None
    """The ccxt ``params`` key that names the id in fetch_order / cancel_order, when it is
    not ``param`` (Binance: ``origClientOrderId``)."""

    def is_valid(self, client_order_id: str) -> bool:
        return (
            len(client_order_id) <= self.max_length
            and self.pattern.fullmatch(client_order_id) is not None
        )


def _rule(
    param: str, max_length: int, charset: str, prefix: str = "", lookup: str | None = None
) -> ClientIdRule:
    body_max = max_length - len(prefix)
    pattern = re.compile(re.escape(prefix) + f"[{charset}]{{1,{body_max}}}")
    return ClientIdRule(param, max_length, pattern, prefix, lookup)


_ALNUM: Final = "a-zA-Z0-9"
_ALNUM_DASH_UNDERSCORE: Final = r"a-zA-Z0-9_\-"

# Limits from each exchange's API docs (and ccxt's own checks).
EXCHANGE_RULES: Final[dict[str, ClientIdRule]] = {
    # newClientOrderId: ^[a-zA-Z0-9-_]{1,36}$
    "binance": _rule("newClientOrderId", 36, _ALNUM_DASH_UNDERSCORE, lookup="origClientOrderId"),
    "binanceusdm": _rule(
        "newClientOrderId", 36, _ALNUM_DASH_UNDERSCORE, lookup="origClientOrderId"
    ),
    "binancecoinm": _rule(
        "newClientOrderId", 36, _ALNUM_DASH_UNDERSCORE, lookup="origClientOrderId"
    ),
    # clOrdId: case-sensitive alphanumerics, up to 32
    "okx": _rule("clOrdId", 32, _ALNUM),
    # orderLinkId: letters, digits, dash, underscore, up to 36
    "bybit": _rule("orderLinkId", 36, _ALNUM_DASH_UNDERSCORE),
    # clientOid: up to 40
    "kucoin": _rule("clientOid", 40, _ALNUM_DASH_UNDERSCORE),
    "kucoinfutures": _rule("clientOid", 40, _ALNUM_DASH_UNDERSCORE),
    # Advanced Trade client_order_id (UUIDs are customary; any short token works)
    "coinbase": _rule("client_order_id", 36, _ALNUM_DASH_UNDERSCORE),
    # cl_ord_id: free text up to 18 characters (or a UUID)
    "kraken": _rule("cl_ord_id", 18, _ALNUM),
    # text: "t-" + up to 28 of [0-9A-Za-z_-.]
    "gate": _rule("text", 30, _ALNUM_DASH_UNDERSCORE + ".", prefix="t-"),
}

# Unknown exchanges: ccxt's unified param and the most restrictive common format.
DEFAULT_RULE: Final = _rule("clientOrderId", 32, _ALNUM)


def rule_for(exchange: str) -> ClientIdRule:
    """The id rule of a ccxt exchange id (DEFAULT_RULE when not listed)."""
    return EXCHANGE_RULES.get(exchange, DEFAULT_RULE)


def client_id_param(exchange: str) -> str:
    """Name of the ccxt ``params`` key that carries the client order id on ``exchange``."""
    return rule_for(exchange).param


def _base36(value: int) -> str:
    if value < 0:
        raise ClientOrderIdError(f"negative value {value} cannot be encoded")
    if value == 0:
        return "0"
    digits: list[str] = []
    while value:
        value, remainder = divmod(value, 36)
        digits.append(_ALPHABET[remainder])
    return "".join(reversed(digits))


def _parse_base36(text: str) -> int:
    value = 0
    for char in text:
        digit = _DIGIT_VALUE.get(char)
        if digit is None:
            raise ClientOrderIdError(f"{char!r} is not a base36 digit")
        value = value * 36 + digit
    return value


@functools.lru_cache(maxsize=256)  # built for every order: hash once per (bot, account)
def owner_hash(bot: str, account: str) -> str:
    """6 base36 characters identifying (bot, account); pass ``bot`` as ``namespace/name``
    so that equally named bots in two namespaces differ."""
    digest = hashlib.sha256(f"{bot}\n{account}".encode()).digest()
    value = int.from_bytes(digest[:8], "big") % (36**OWNER_LENGTH)
    return _base36(value).rjust(OWNER_LENGTH, "0")


def _field(value: int) -> str:
    digits = _base36(value)
    if len(digits) > _MAX_FIELD_LENGTH:
        raise ClientOrderIdError(f"value {value} is too large for a client order id")
    return _ALPHABET[len(digits)] + digits


@dataclass(frozen=True, slots=True)
class ClientOrderIdParts:
    """What a tradebot client order id encodes."""

    owner: str
    shard: int
    epoch: int
    seq: int


def encode_client_order_id(owner: str, shard: int, epoch: int, seq: int) -> str:
    """The exchange-independent body of an id (no exchange prefix, no length check)."""
    if len(owner) != OWNER_LENGTH or any(c not in _DIGIT_VALUE for c in owner):
        raise ClientOrderIdError(f"owner must be {OWNER_LENGTH} base36 characters: {owner!r}")
    return FORMAT_MARKER + owner + _field(shard) + _field(epoch) + _field(seq)


def decode_client_order_id(body: str) -> ClientOrderIdParts:
    """Inverse of encode_client_order_id; raises ClientOrderIdError for anything else."""
    if not body.startswith(FORMAT_MARKER) or len(body) < 1 + OWNER_LENGTH:
        raise ClientOrderIdError(f"not a tradebot client order id: {body!r}")
    owner = body[1 : 1 + OWNER_LENGTH]
    if any(c not in _DIGIT_VALUE for c in owner):
        raise ClientOrderIdError(f"not a tradebot client order id: {body!r}")
    position = 1 + OWNER_LENGTH
    values: list[int] = []
    for _ in range(3):
        if position >= len(body):
            raise ClientOrderIdError(f"truncated client order id: {body!r}")
        length = _DIGIT_VALUE.get(body[position], 0)
        digits = body[position + 1 : position + 1 + length]
        # canonical form only ("0" or no leading zero), so every id has one meaning
        if length == 0 or len(digits) != length or (length > 1 and digits[0] == "0"):
            raise ClientOrderIdError(f"malformed client order id: {body!r}")
        values.append(_parse_base36(digits))
        position += 1 + length
    if position != len(body):
        raise ClientOrderIdError(f"trailing characters in client order id: {body!r}")
    shard, epoch, seq = values
    return ClientOrderIdParts(owner=owner, shard=shard, epoch=epoch, seq=seq)


def build_client_order_id(
    exchange: str, bot: str, account: str, shard: int, epoch: int, seq: int
) -> str:
    """The client order id for one order, valid for ``exchange`` or ClientOrderIdError."""
    rule = rule_for(exchange)
    client_order_id = rule.prefix + encode_client_order_id(
        owner_hash(bot, account), shard, epoch, seq
    )
    if not rule.is_valid(client_order_id):
        raise ClientOrderIdError(
            f"client order id {client_order_id!r} ({len(client_order_id)} chars) does not fit "
            f"{exchange}'s limit of {rule.max_length} characters"
        )
    return client_order_id


def parse_client_order_id(exchange: str, client_order_id: str) -> ClientOrderIdParts:
    """(owner, shard, epoch, seq) of one of our ids as it appears on ``exchange``."""
    prefix = rule_for(exchange).prefix
    if not client_order_id.startswith(prefix):
        raise ClientOrderIdError(f"not a tradebot client order id: {client_order_id!r}")
    return decode_client_order_id(client_order_id[len(prefix) :])


@dataclass(frozen=True, slots=True)
class ClientOrderIds:
    """Client order ids of one bot on one account: build, parse, recognise, send.

    The I/O layer holds one per pod; ``bot`` should be ``namespace/name``.
    """

    exchange: str
    bot: str
    account: str

    @property
    def owner(self) -> str:
        return owner_hash(self.bot, self.account)

    @property
    def param(self) -> str:
        """ccxt ``params`` key for the id on this exchange."""
        return client_id_param(self.exchange)

    def build(self, shard: int, epoch: int, seq: int) -> str:
        return build_client_order_id(self.exchange, self.bot, self.account, shard, epoch, seq)

    def parse(self, client_order_id: str) -> ClientOrderIdParts:
        return parse_client_order_id(self.exchange, client_order_id)

    def owns(self, client_order_id: str | None) -> bool:
        """True when ``client_order_id`` is one of this bot's ids on this account (used by
        reconciliation to pick our orders out of the account's open orders)."""
        if not client_order_id:
            return False
        try:
            return self.parse(client_order_id).owner == self.owner
        except ClientOrderIdError:
            return False

    def order_params(self, client_order_id: str) -> dict[str, str]:
        """``params`` for ccxt ``create_order`` that carry the id."""
        return {self.param: client_order_id}

    def lookup_params(self, client_order_id: str) -> dict[str, str]:
        """``params`` for ccxt ``fetch_order`` / ``cancel_order`` by the id."""
        rule = rule_for(self.exchange)
        return {rule.lookup_param or rule.param: client_order_id}
