"""HMAC-SHA256 request signing and the timestamp/recvWindow rule, as Binance applies them."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from .errors import BinanceError, missing


def sign(payload: str, secret: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _strip_signature(raw: str) -> tuple[str, str | None]:
    """Remove ``signature=..`` from an urlencoded string, keeping the rest byte-exact."""
    if "signature=" not in raw:
        return raw, None
    kept: list[str] = []
    signature: str | None = None
    for part in raw.split("&"):
        if part.startswith("signature="):
            signature = part[len("signature=") :]
        else:
            kept.append(part)
    return "&".join(kept), signature


def verify_rest(raw_query: str, raw_body: str, secret: str) -> None:
    """Binance signs ``totalParams``: the query string followed by the body, verbatim."""
    query, sig_q = _strip_signature(raw_query)
    body, sig_b = _strip_signature(raw_body)
    signature = sig_q or sig_b
    if not signature:
        raise missing("signature")
    expected = sign(query + body, secret)
    if not hmac.compare_digest(expected, signature.lower()):
        raise BinanceError(-1022)


def ws_payload(params: Mapping[str, object]) -> str:
    """WebSocket API signing payload: parameters sorted by name, not urlencoded."""
    return "&".join(f"{k}={_ws_value(params[k])}" for k in sorted(params) if k != "signature")


def _ws_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def verify_ws(params: Mapping[str, object], secret: str) -> None:
    signature = params.get("signature")
    if not isinstance(signature, str) or not signature:
        raise missing("signature")
    if not hmac.compare_digest(sign(ws_payload(params), secret), signature.lower()):
        raise BinanceError(-1022)


def check_timestamp(
    timestamp: str | None, recv_window: str | None, server_ms: int, max_recv_ms: int
) -> None:
    if timestamp is None or not timestamp.lstrip("-").isdigit():
        raise missing("timestamp")
    window = 5000
    if recv_window is not None:
        try:
            window = int(float(recv_window))
        except ValueError as exc:
            raise missing("recvWindow") from exc
        if window > max_recv_ms:
            raise BinanceError(-1131, f"recvWindow must be less than {max_recv_ms}")
    ts = int(timestamp)
    if ts >= server_ms + 1000:
        raise BinanceError(
            -1021, "Timestamp for this request was 1000ms ahead of the server's time."
        )
    if server_ms - ts > window:
        raise BinanceError(-1021)
