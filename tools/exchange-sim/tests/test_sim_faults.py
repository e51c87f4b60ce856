"""Fault rule matching of the simulator (what fires where, how often, for how long)."""

from __future__ import annotations

import pytest

from exchange_sim.faults import FaultError, FaultStore

T0 = 1_700_000_000_000


def test_endpoint_patterns() -> None:
    store = FaultStore(1)
    store.add({"kind": "latency", "endpoint": "POST /api/v3/order", "delay_ms": 5}, T0)
    store.add({"kind": "latency", "id": "any", "endpoint": "/api/v3/order", "delay_ms": 5}, T0)
    store.add({"kind": "latency", "id": "prefix", "endpoint": "/api/v3/ticker/*"}, T0)
    store.add({"kind": "latency", "id": "all"}, T0)

    def fired(method: str, path: str) -> list[str]:
        return sorted(f.id for f in store.for_request(method, path, None, "before", T0))

    assert fired("POST", "/api/v3/order") == ["all", "any", "f1"]
    assert fired("GET", "/api/v3/order") == ["all", "any"]
    assert fired("GET", "/api/v3/ticker/price") == ["all", "prefix"]
    assert fired("GET", "/api/v3/time") == ["all"]


def test_account_scope_phase_and_count() -> None:
    store = FaultStore(1)
    store.add({"kind": "timeout", "account": "alice", "count": 2}, T0)
    assert store.for_request("POST", "/api/v3/order", "bob", "after", T0) == []
    assert store.for_request("POST", "/api/v3/order", "alice", "before", T0) == []
    assert len(store.for_request("POST", "/api/v3/order", "alice", "after", T0)) == 1
    assert len(store.for_request("POST", "/api/v3/order", "alice", "after", T0)) == 1
    assert store.for_request("POST", "/api/v3/order", "alice", "after", T0) == []
    assert store.active(T0) == []  # used up


def test_rate_is_a_seeded_draw() -> None:
    def hits(seed: int) -> list[bool]:
        store = FaultStore(seed)
        store.add({"kind": "error", "code": -1001, "rate": 0.3}, T0)
        return [
            bool(store.for_request("GET", "/api/v3/time", None, "before", T0)) for _ in range(1000)
        ]

    first = hits(5)
    assert first == hits(5)
    assert 250 < sum(first) < 350


def test_duration_expires_and_ban_defaults_to_a_minute() -> None:
    store = FaultStore(1)
    store.add({"kind": "http_status", "status": 502, "duration_s": 2}, T0)
    ban = store.add({"kind": "ban", "when": "after"}, T0)
    assert ban.when == "before" and ban.expires_at == T0 + 60_000
    assert len(store.active(T0 + 1999)) == 2
    assert [f.kind for f in store.active(T0 + 2000)] == ["ban"]


def test_clock_skew_and_websocket_lookup() -> None:
    store = FaultStore(1)
    store.add({"kind": "clock_skew", "offset_ms": 3000}, T0)
    store.add({"kind": "clock_skew", "offset_ms": -500, "account": "alice"}, T0)
    assert store.clock_skew(None, T0) == 3000
    assert store.clock_skew("alice", T0) == 2500
    store.add({"kind": "ws_freeze", "endpoint": "ws:user", "account": "alice"}, T0)
    assert store.for_websocket("ws_freeze", "user", "alice", T0) is not None
    assert store.for_websocket("ws_freeze", "user", "bob", T0) is None
    assert store.for_websocket("ws_freeze", "market", None, T0) is None
    # REST rules never match websocket traffic and vice versa
    assert store.for_request("GET", "/api/v3/time", "alice", "before", T0) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "nap"}, "kind must be one of"),
        ({"kind": "error"}, "needs a Binance error code"),
        ({"kind": "error", "code": -9999}, "not in the catalog"),
        ({"kind": "latency", "delay": 5}, "unknown fields: delay"),
        ({"kind": "latency", "rate": 2}, "rate must be within"),
        ({"kind": "ws_drop", "endpoint": "/api/v3/order"}, "websocket faults take endpoint"),
        ({"kind": "latency", "when": "during"}, "when must be"),
    ],
)
def test_invalid_specs_are_refused(spec: dict[str, object], message: str) -> None:
    with pytest.raises(FaultError, match=message):
        FaultStore(1).add(spec, T0)
