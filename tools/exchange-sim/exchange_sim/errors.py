"""Binance error codes, messages and HTTP statuses (the ones ccxt maps to exception classes).

A handler raises ``BinanceError``; the HTTP layer turns it into ``{"code": .., "msg": ..}``
with the status Binance uses for that code, so clients see exactly what production sends.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    code: int
    msg: str
    status: int


# Default message and HTTP status per code, as documented in Binance's errors.md.
CATALOG: dict[int, ErrorSpec] = {
    spec.code: spec
    for spec in (
        ErrorSpec(-1000, "An unknown error occurred while processing the request.", 500),
        ErrorSpec(-1001, "Internal error; unable to process your request. Please try again.", 500),
        ErrorSpec(
            -1003,
            "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
            "Please use WebSocket Streams for live updates to avoid polling the API.",
            429,
        ),
        ErrorSpec(
            -1007,
            "Timeout waiting for response from backend server. "
            "Send status unknown; execution status unknown.",
            408,
        ),
        ErrorSpec(-1013, "Invalid quantity.", 400),
        ErrorSpec(-1014, "Unsupported order combination.", 400),
        ErrorSpec(-1015, "Too many new orders; current limit is 100 orders per 10 SECOND.", 429),
        ErrorSpec(-1016, "This service is no longer available.", 400),
        ErrorSpec(-1020, "This operation is not supported.", 400),
        ErrorSpec(-1021, "Timestamp for this request is outside of the recvWindow.", 400),
        ErrorSpec(-1022, "Signature for this request is not valid.", 400),
        ErrorSpec(-1100, "Illegal characters found in a parameter.", 400),
        ErrorSpec(-1101, "Too many parameters sent for this endpoint.", 400),
        ErrorSpec(-1102, "A mandatory parameter was not sent, was empty/null, or malformed.", 400),
        ErrorSpec(-1104, "Not all sent parameters were read.", 400),
        ErrorSpec(-1106, "A parameter was sent when not required.", 400),
        ErrorSpec(-1111, "Precision is over the maximum defined for this asset.", 400),
        ErrorSpec(-1115, "Invalid timeInForce.", 400),
        ErrorSpec(-1116, "Invalid orderType.", 400),
        ErrorSpec(-1117, "Invalid side.", 400),
        ErrorSpec(-1120, "Invalid interval.", 400),
        ErrorSpec(-1121, "Invalid symbol.", 400),
        ErrorSpec(-1125, "This listenKey does not exist.", 400),
        ErrorSpec(-1131, "recvWindow must be less than 60000", 400),
        ErrorSpec(-2010, "Account has insufficient balance for requested action.", 400),
        ErrorSpec(-2011, "Unknown order sent.", 400),
        ErrorSpec(-2013, "Order does not exist.", 400),
        ErrorSpec(-2014, "API-key format invalid.", 401),
        ErrorSpec(-2015, "Invalid API-key, IP, or permissions for action.", 401),
    )
}

# Messages Binance sends with -2010 (NEW_ORDER_REJECTED); ccxt maps some by text.
INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
DUPLICATE_ORDER = "Duplicate order sent."
WOULD_TAKE = "Order would immediately match and take."
MAINTENANCE = "System is under maintenance."


class BinanceError(Exception):
    """A request failure rendered as Binance's JSON error body."""

    def __init__(self, code: int, msg: str | None = None, status: int | None = None) -> None:
        spec = CATALOG.get(code)
        self.code = code
        self.msg = msg if msg is not None else (spec.msg if spec else "Unknown error.")
        self.status = status if status is not None else (spec.status if spec else 400)
        self.retry_after: int | None = None
        super().__init__(f"{code}: {self.msg}")

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def missing(param: str) -> BinanceError:
    return BinanceError(
        -1102, f"Mandatory parameter '{param}' was not sent, was empty/null, or malformed."
    )


def illegal_chars(param: str, legal: str) -> BinanceError:
    return BinanceError(
        -1100, f"Illegal characters found in parameter '{param}'; legal range is '{legal}'."
    )


def not_required(param: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{param}' sent when not required.")


def filter_failure(name: str) -> BinanceError:
    return BinanceError(-1013, f"Filter failure: {name}")
