"""Scalar types shared by the API models and the runtime contracts.

Money, prices and percentages travel as decimal strings (``"1000.50"``) and are
``Decimal`` in code: a float would silently round an amount.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
"""A non-negative decimal without exponent or sign, as the CRDs accept it."""

DECIMAL_MAX_LENGTH = 32
_DECIMAL_RE = re.compile(DECIMAL_PATTERN)

TradingState = Literal["Active", "ReduceOnly", "Halted"]
"""Kill switch: trade normally, only reduce positions, or place no orders at all."""

_STRICTNESS: dict[str, int] = {"Active": 0, "ReduceOnly": 1, "Halted": 2}


def stricter_trading_state(*states: TradingState) -> TradingState:
    """The most restrictive of the given states (Halted > ReduceOnly > Active)."""
    result: TradingState = "Active"
    for state in states:
        if _STRICTNESS[state] > _STRICTNESS[result]:
            result = state
    return result


def parse_decimal(value: Any) -> Decimal:
    """Accept a decimal string, an int or a Decimal; refuse floats (they already lost precision)."""
    if isinstance(value, Decimal):
        if not value.is_finite() or value < 0:
            raise ValueError("must be a finite non-negative decimal")
        return value
    if isinstance(value, bool):
        raise ValueError('must be a decimal string such as "0.01"')
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return Decimal(value)
    if isinstance(value, float):
        raise ValueError('must be a decimal string such as "0.01", not a floating-point number')
    if isinstance(value, str):
        if len(value) > DECIMAL_MAX_LENGTH or not _DECIMAL_RE.match(value):
            raise ValueError(
                f'must be a decimal string such as "0.01" (pattern {DECIMAL_PATTERN}, '
                f"at most {DECIMAL_MAX_LENGTH} characters)"
            )
        try:
            return Decimal(value)
        except InvalidOperation as exc:  # pragma: no cover - the pattern already guarantees this
            raise ValueError("not a decimal number") from exc
    raise ValueError('must be a decimal string such as "0.01"')


SIGNED_DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
"""A decimal that may be negative (PnL)."""


def parse_signed_decimal(value: Any) -> Decimal:
    """Like parse_decimal, but a leading minus sign is allowed."""
    if isinstance(value, Decimal) and value.is_finite():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str) and value.startswith("-"):
        return -parse_decimal(value[1:])
    return parse_decimal(value)


def format_decimal(value: Decimal) -> str:
    """Plain notation (never ``1E+3``) so the output matches DECIMAL_PATTERN again."""
    return format(value, "f")


_WIDE = Context(prec=1000)
"""Enough digits that quantizing a value to DECIMAL_MAX_LENGTH characters never traps."""


def fit_decimal(value: Decimal, max_chars: int = DECIMAL_MAX_LENGTH) -> Decimal:
    """``value`` written in at most ``max_chars`` characters of plain notation (sign
    included): rounded half-even to as many decimal places as fit, never dropped. A value
    whose integer part alone does not fit is clamped to the largest one that does (e.g.
    32 nines); callers that can should log that, it means a figure is wrong upstream."""
    if not value.is_finite():
        raise ValueError("must be a finite decimal")
    if len(format_decimal(value)) <= max_chars:
        return value
    sign = 1 if value.is_signed() else 0
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    for places in range(min(max(0, -exponent), max_chars), -1, -1):
        fitted = value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN, _WIDE)
        if fitted == 0:
            fitted = fitted.copy_abs()
        if len(format_decimal(fitted)) <= max_chars:
            return fitted
    largest = Decimal("9" * (max_chars - sign))
    return largest.copy_negate() if sign else largest


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _percent(value: Decimal) -> Decimal:
    if value > 100:
        raise ValueError("must be at most 100")
    return value


POSITIVE_DECIMAL_PATTERN = r"^([0-9]*[1-9][0-9]*(\.[0-9]+)?|[0-9]+\.[0-9]*[1-9][0-9]*)$"
"""A decimal with at least one non-zero digit, i.e. greater than zero."""

PERCENT_PATTERN = r"^(100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?)$"
"""A decimal between 0 and 100 inclusive."""


def _string_schema(pattern: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern, "maxLength": DECIMAL_MAX_LENGTH})


_AS_STRING = PlainSerializer(format_decimal, return_type=str, when_used="json")

DecimalString = Annotated[
    Decimal, BeforeValidator(parse_decimal), _AS_STRING, _string_schema(DECIMAL_PATTERN)
]
"""A non-negative decimal, written as a string in YAML/JSON."""

SignedDecimalString = Annotated[
    Decimal,
    BeforeValidator(parse_signed_decimal),
    _AS_STRING,
    _string_schema(SIGNED_DECIMAL_PATTERN),
]
"""A decimal string that may be negative (profit and loss)."""

PositiveDecimalString = Annotated[
    Decimal,
    BeforeValidator(parse_decimal),
    AfterValidator(_positive),
    _AS_STRING,
    _string_schema(POSITIVE_DECIMAL_PATTERN),
]
"""A decimal string greater than zero."""

PercentString = Annotated[
    Decimal,
    BeforeValidator(parse_decimal),
    AfterValidator(_percent),
    _AS_STRING,
    _string_schema(PERCENT_PATTERN),
]
"""A decimal string between 0 and 100."""
