"""Decimal helpers: every price, quantity and balance in the simulator is a Decimal."""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from .errors import BinanceError, illegal_chars

ZERO = Decimal(0)
ONE = Decimal(1)
EIGHT_PLACES = Decimal("0.00000001")

# Binance's own pattern for numeric parameters (quantity, price, quoteOrderQty).
_NUMBER = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
NUMBER_PATTERN = _NUMBER.pattern


def fmt8(value: Decimal) -> str:
    """Binance renders amounts with exactly eight decimals: ``"0.05000000"``."""
    return f"{value.quantize(EIGHT_PLACES, rounding=ROUND_HALF_EVEN):f}"


def plain(value: Decimal) -> str:
    """Shortest exact string for a Decimal, never in exponent form."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def parse_number(name: str, raw: str) -> Decimal:
    """Parse a request parameter exactly as Binance validates it."""
    if not _NUMBER.match(raw):
        raise illegal_chars(name, NUMBER_PATTERN)
    value = Decimal(raw)
    if value != value.quantize(EIGHT_PLACES):
        raise BinanceError(-1111, f"Parameter '{name}' has too much precision.")
    return value


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` not above ``value`` (steps are powers of ten here)."""
    if step <= ZERO:
        return value
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def is_multiple(value: Decimal, base: Decimal, step: Decimal) -> bool:
    if step <= ZERO:
        return True
    return (value - base) % step == ZERO


def quantize_to(value: Decimal, step: Decimal) -> Decimal:
    """Round to the nearest multiple of ``step`` (half-even), keeping step's exponent."""
    return (value / step).to_integral_value(rounding=ROUND_HALF_EVEN) * step
