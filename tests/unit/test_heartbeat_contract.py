"""Lease heartbeat contract: encode/decode, size bound, tolerant reading."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tradebot_contracts.heartbeat import (
    HEARTBEAT_ANNOTATION,
    MAX_HEARTBEAT_BYTES,
    Heartbeat,
    HeartbeatDecodeError,
    decode_heartbeat,
    encode_heartbeat,
    heartbeat_from_annotations,
)

TS = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def beat(**overrides: object) -> Heartbeat:
    values: dict[str, object] = {
        "pod": "majors-binance-main-7d9f-abcde",
        "epoch": 4,
        "shard": 1,
        "ts": TS,
        "state": "Trading",
        "ready": True,
        "open_orders": 3,
        "position_notional": Decimal("1234.5"),
        "realized_pnl": Decimal("-12.75"),
        "unrealized_pnl": Decimal("3.10"),
        "mismatches": 0,
        "config_version": "478b0f9dcee93981",
        **overrides,
    }
    return Heartbeat.model_validate(values)


def test_round_trip() -> None:
    hb = beat(breaker="maxDailyLoss", ack_delete_request="del-1")
    assert decode_heartbeat(encode_heartbeat(hb)) == hb


def test_wire_format_is_camel_case_with_decimal_strings_and_utc_z() -> None:
    text = encode_heartbeat(beat())
    assert '"realizedPnl":"-12.75"' in text
    assert '"positionNotional":"1234.5"' in text
    assert '"openOrders":3' in text
    assert '"ts":"2025-01-02T03:04:05.678Z"' in text
    assert "null" not in text  # unset optionals are left out


def test_timestamps_are_normalised_to_utc() -> None:
    local = TS.astimezone(timezone(timedelta(hours=2)))
    assert beat(ts=local).ts == TS
    assert beat(ts=TS.replace(tzinfo=None)).ts == TS


def test_size_bound_on_encode() -> None:
    hb = beat(message="x" * 200, pod="p" * 253, breaker="b" * 64, ack_delete_request="a" * 64)
    assert len(encode_heartbeat(hb).encode()) <= MAX_HEARTBEAT_BYTES


def test_oversized_input_is_rejected() -> None:
    with pytest.raises(HeartbeatDecodeError):
        decode_heartbeat('{"pod":"' + "x" * MAX_HEARTBEAT_BYTES + '"}')


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "{}",
        '{"pod":"p","epoch":-1,"shard":0,"ts":"2025-01-01T00:00:00Z","state":"Trading","ready":true}',
        '{"pod":"p","epoch":1,"shard":0,"ts":"2025-01-01T00:00:00Z","state":"Dancing","ready":true}',
        '{"pod":"p","epoch":1,"shard":0,"ts":"2025-01-01T00:00:00Z","state":"Trading","ready":true,"realizedPnl":1.5}',
    ],
)
def test_malformed_heartbeats_raise_decode_error(text: str) -> None:
    with pytest.raises(HeartbeatDecodeError):
        decode_heartbeat(text)


def test_from_annotations_is_tolerant() -> None:
    assert heartbeat_from_annotations(None) is None
    assert heartbeat_from_annotations({}) is None
    assert heartbeat_from_annotations({HEARTBEAT_ANNOTATION: "garbage"}) is None
    hb = beat()
    assert heartbeat_from_annotations({HEARTBEAT_ANNOTATION: encode_heartbeat(hb)}) == hb


def test_age() -> None:
    assert beat().age_seconds(TS + timedelta(seconds=7)) == 7
