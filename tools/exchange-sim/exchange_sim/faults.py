"""Fault rules set through the admin API, matched per endpoint and per account.

A rule applies to a request when its endpoint pattern and account match, it has not
expired (``duration_s``) or run out (``count``), and a seeded draw falls under ``rate``.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .errors import CATALOG

Phase = Literal["before", "after"]
REST_KINDS = ("latency", "error", "http_status", "maintenance", "timeout", "drop", "ban")
WS_KINDS = ("ws_drop", "ws_freeze")
KINDS = (*REST_KINDS, *WS_KINDS, "clock_skew", "weight_limit")
_DEFAULT_WHEN: dict[str, Phase] = {"timeout": "after"}


class FaultError(ValueError):
    """Invalid fault specification (the admin API answers 400)."""


@dataclass
class Fault:
    id: str
    kind: str
    endpoint: str = "*"
    account: str | None = None
    rate: float = 1.0
    count: int | None = None  # applications left; None = unlimited
    expires_at: int | None = None  # epoch ms
    when: Phase = "before"  # before or after the request is executed
    delay_ms: int = 0
    jitter_ms: int = 0
    code: int | None = None
    msg: str | None = None
    status: int | None = None
    offset_ms: int = 0
    limit: int | None = None  # weight_limit: request weight per minute while active
    hits: int = 0
    created_at: int = field(default=0)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def matches_endpoint(self, method: str, path: str) -> bool:
        pattern = self.endpoint
        if pattern in ("*", ""):
            return not path.startswith("ws")
        want_method, _, want_path = pattern.rpartition(" ")
        if want_method and want_method.upper() != method:
            return False
        if want_path.endswith("*"):
            return path.startswith(want_path[:-1])
        return path == want_path


# What an admin client may set: the rule's fields minus bookkeeping, plus duration_s.
_SETTABLE = (set(Fault.__dataclass_fields__) - {"hits", "created_at", "expires_at"}) | {
    "duration_s"
}


def _int(raw: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise FaultError(f"{key} must be an integer")
    try:
        return int(value)
    except ValueError as exc:
        raise FaultError(f"{key} must be an integer") from exc


class FaultStore:
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"{seed}:faults")
        self._faults: dict[str, Fault] = {}
        self._next = 1

    def add(self, raw: dict[str, Any], now_ms: int) -> Fault:
        kind = raw.get("kind")
        if kind not in KINDS:
            raise FaultError(f"kind must be one of {', '.join(KINDS)}")
        unknown = set(raw) - _SETTABLE
        if unknown:
            raise FaultError(f"unknown fields: {', '.join(sorted(unknown))}")
        fault_id = str(raw.get("id") or f"f{self._next}")
        self._next += 1
        endpoint = str(raw.get("endpoint") or ("ws" if kind in WS_KINDS else "*"))
        if kind in WS_KINDS and endpoint not in ("ws", "ws:market", "ws:user"):
            raise FaultError("websocket faults take endpoint ws, ws:market or ws:user")
        when = raw.get("when", _DEFAULT_WHEN.get(kind, "before"))
        if kind in ("ban", "maintenance"):
            when = "before"  # a banned or closed exchange never executes the request
        if when not in ("before", "after"):
            raise FaultError("when must be 'before' or 'after'")
        rate = float(raw.get("rate", 1.0))
        if not 0.0 <= rate <= 1.0:
            raise FaultError("rate must be within [0, 1]")
        duration = raw.get("duration_s")
        code = _int(raw, "code")
        if kind == "error" and code is None:
            raise FaultError("an error fault needs a Binance error code, e.g. -1021")
        default_delay = 30_000 if kind == "timeout" else 0
        fault = Fault(
            id=fault_id,
            kind=kind,
            endpoint=endpoint,
            account=raw.get("account"),
            rate=rate,
            count=_int(raw, "count"),
            expires_at=now_ms + int(float(duration) * 1000) if duration is not None else None,
            when=when,
            delay_ms=_int(raw, "delay_ms", default_delay) or 0,
            jitter_ms=_int(raw, "jitter_ms", 0) or 0,
            code=code,
            msg=raw.get("msg"),
            status=_int(raw, "status"),
            offset_ms=_int(raw, "offset_ms", 0) or 0,
            limit=_int(raw, "limit"),
            created_at=now_ms,
        )
        if kind == "weight_limit" and (fault.limit is None or fault.limit < 1):
            raise FaultError("a weight_limit fault needs limit (request weight per minute) >= 1")
        if kind == "error" and fault.code not in CATALOG and fault.msg is None:
            raise FaultError(f"error code {fault.code} is not in the catalog: give msg too")
        if kind == "ban" and fault.expires_at is None:
            fault.expires_at = now_ms + 60_000
        self._faults[fault_id] = fault
        return fault

    @property
    def empty(self) -> bool:
        return not self._faults

    def remove(self, fault_id: str) -> bool:
        return self._faults.pop(fault_id, None) is not None

    def clear(self) -> int:
        count = len(self._faults)
        self._faults.clear()
        return count

    def active(self, now_ms: int) -> list[Fault]:
        expired = [
            f.id
            for f in self._faults.values()
            if (f.expires_at is not None and f.expires_at <= now_ms) or f.count == 0
        ]
        for fault_id in expired:
            del self._faults[fault_id]
        return list(self._faults.values())

    def _applies(self, fault: Fault, account: str | None) -> bool:
        if fault.account is not None and fault.account != account:
            return False
        return fault.rate >= 1.0 or self._rng.random() < fault.rate

    def _consume(self, fault: Fault) -> Fault:
        fault.hits += 1
        if fault.count is not None:
            fault.count -= 1
        return fault

    def for_request(
        self, method: str, path: str, account: str | None, phase: Phase, now_ms: int
    ) -> list[Fault]:
        """REST faults that fire for this request in this phase (consumes counts)."""
        fired: list[Fault] = []
        for fault in self.active(now_ms):
            if fault.kind not in REST_KINDS or fault.when != phase:
                continue
            if fault.matches_endpoint(method, path) and self._applies(fault, account):
                fired.append(self._consume(fault))
        return fired

    def for_websocket(
        self, kind: str, stream: str, account: str | None, now_ms: int
    ) -> Fault | None:
        """A ws_drop/ws_freeze rule covering a connection (``stream``: market or user)."""
        for fault in self.active(now_ms):
            if fault.kind != kind or fault.endpoint not in ("ws", f"ws:{stream}"):
                continue
            if fault.account is not None and fault.account != account:
                continue
            return fault
        return None

    def consume(self, fault: Fault) -> None:
        self._consume(fault)

    def clock_skew(self, account: str | None, now_ms: int) -> int:
        skew = 0
        for fault in self.active(now_ms):
            if fault.kind == "clock_skew" and fault.account in (None, account):
                skew += fault.offset_ms
        return skew

    def weight_limit(self, account: str | None, now_ms: int) -> int | None:
        """The lowest weight-per-minute limit of the active weight_limit rules covering
        ``account`` (None: no such rule). Requests over it get the real 429s, counted
        towards the 418 ban like any other."""
        limits = [
            f.limit
            for f in self.active(now_ms)
            if f.kind == "weight_limit" and f.limit is not None and f.account in (None, account)
        ]
        return min(limits) if limits else None

    def jitter(self, fault: Fault) -> int:
        return fault.delay_ms + (self._rng.randrange(fault.jitter_ms + 1) if fault.jitter_ms else 0)
