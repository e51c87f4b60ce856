"""Pure computation of a TradingBot's status from what the operator observes.

Inputs are plain observations (validation problems, apply errors, Deployments, Leases
with their heartbeats); the output is the whole `status` dict. The reconciler only patches
it when it differs from the current one (and not for a heartbeat time alone, see
``worth_writing``), and schedules the bot's next pass when the status could next change
on its own (``next_status_change``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tradebot_contracts.heartbeat import Heartbeat, heartbeat_from_annotations
from tradebot_contracts.names import LABEL_SHARD
from tradebot_contracts.types import fit_decimal
from tradebot_operator.checks import Problem
from tradebot_operator.kube.conditions import ConditionUpdate, merge_conditions

# Reasons that mean "something the bot refers to does not exist yet": the bot waits
# (Pending) and reconciles as soon as it appears, instead of failing.
WAITING_REASONS = frozenset(
    {"StrategyNotFound", "AccountNotFound", "CredentialsNotReady", "PriorityClassNotFound"}
)

# Runtime states on the way to a pod's first ready heartbeat (the Lease is written at once
# on acquisition, before the journal is loaded and reconciled). A bot that has never run
# stays Pending in them; it is Degraded only once it has run, or when a shard reports
# anything else (Error, Draining, a stale heartbeat).
STARTING_STATES = frozenset({"Starting", "Reconciling"})
# ...but not forever: a runtime that is still starting this long after the bot became
# not-ready (journal load or reconciliation hanging) is reported Degraded.
STARTUP_TIMEOUT = timedelta(minutes=5)
# Re-check a little after a Lease or heartbeat deadline, not exactly on it (clock rounding).
DEADLINE_MARGIN_SECONDS = 0.5
# A status change that only moves lastHeartbeat is written at most this often: the
# heartbeat time alone tells nothing new, and writing it on every pass of every running
# bot would be most of the operator's writes.
HEARTBEAT_STATUS_SECONDS = 30.0


@dataclass(frozen=True)
class LeaseObservation:
    name: str
    shard: int
    holder: str | None
    renew_time: datetime | None
    duration_seconds: int
    heartbeat: Heartbeat | None

    def held(self, now: datetime) -> bool:
        if not self.holder or self.renew_time is None:
            return False
        return now <= self.renew_time + timedelta(seconds=self.duration_seconds)

    def ready(self, now: datetime, stale_after: timedelta) -> bool:
        hb = self.heartbeat
        return (
            self.held(now)
            and hb is not None
            and hb.ready
            and hb.pod == self.holder
            and now - hb.ts <= stale_after
        )


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def owner_bot(meta: Mapping[str, Any]) -> str | None:
    """The TradingBot controlling an object (its Lease), from the owner references."""
    for owner in meta.get("ownerReferences") or []:
        if owner.get("kind") == "TradingBot" and owner.get("controller"):
            return str(owner["name"])
    return None


def lease_observation(body: Mapping[str, Any]) -> LeaseObservation:
    """What the status needs of one shard's Lease: holder, renewal and heartbeat."""
    meta, spec = body.get("metadata", {}), body.get("spec") or {}
    try:
        shard = int((meta.get("labels") or {}).get(LABEL_SHARD, "0"))
    except ValueError:
        shard = 0
    return LeaseObservation(
        name=meta.get("name", ""),
        shard=shard,
        holder=spec.get("holderIdentity") or None,
        renew_time=_time(spec.get("renewTime")),
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        heartbeat=heartbeat_from_annotations(meta.get("annotations")),
    )


@dataclass(frozen=True)
class ExchangeObservation:
    account: str
    shards_total: int
    leases: Sequence[LeaseObservation] = ()
    ready_replicas: int = 0


@dataclass(frozen=True)
class Observation:
    generation: int | None
    suspended: bool
    halted: bool
    problems: Sequence[Problem] = ()
    apply_error: str | None = None
    exchanges: Sequence[ExchangeObservation] = ()
    stale_after: timedelta = timedelta(seconds=18)
    ever_running: bool = False
    startup_timeout: timedelta = STARTUP_TIMEOUT
    extra: Mapping[str, Any] = field(default_factory=dict)


def _sum(values: Sequence[Decimal | None]) -> Decimal:
    return sum((v for v in values if v is not None), Decimal(0))


def _text(value: Decimal) -> str:
    # Plain decimal text as the runtime quantized it ("12.50", "0", "-3.25"), fitted to
    # the CRD's 32 characters: a sum of figures that each fit may not.
    return format(fit_decimal(value), "f") if value else "0"


def exchange_status(
    obs: ExchangeObservation, now: datetime, stale_after: timedelta
) -> dict[str, Any]:
    fresh = [
        lease for lease in obs.leases
        if lease.heartbeat is not None and lease.held(now) and lease.heartbeat.pod == lease.holder
    ]  # fmt: skip
    beats = [lease.heartbeat for lease in fresh if lease.heartbeat is not None]
    shard0 = next((lease for lease in obs.leases if lease.shard == 0), None)
    leader = shard0.holder if shard0 is not None and shard0.held(now) else None
    status: dict[str, Any] = {
        "shardsTotal": obs.shards_total,
        "shardsHeld": sum(1 for lease in obs.leases if lease.held(now)),
        "readyShards": sum(1 for lease in obs.leases if lease.ready(now, stale_after)),
        "openOrders": sum(hb.open_orders for hb in beats),
        "state": "Unknown",
    }
    if leader:
        status["leader"] = leader
    if beats:
        newest = max(beats, key=lambda hb: hb.ts)
        status["lastHeartbeat"] = newest.ts.isoformat(timespec="seconds").replace("+00:00", "Z")
        currency = next((hb.quote_currency for hb in beats if hb.quote_currency), None)
        if currency:
            status["quoteCurrency"] = currency
        status["positionNotional"] = _text(_sum([hb.position_notional for hb in beats]))
        status["realizedPnl"] = _text(_sum([hb.realized_pnl for hb in beats]))
        status["unrealizedPnl"] = _text(_sum([hb.unrealized_pnl for hb in beats]))
        lead = shard0.heartbeat if shard0 is not None and shard0.heartbeat in beats else newest
        if lead is not None:
            status["state"] = lead.state
            if lead.message:
                status["message"] = lead.message[:1024]
        breaker = next((hb.breaker for hb in beats if hb.breaker), None)
        if breaker:
            status["breaker"] = breaker
    return status


def _unready_states(obs: ExchangeObservation, now: datetime, stale_after: timedelta) -> list[str]:
    """Runtime states in the heartbeats of this account's held shards that are not ready
    ("stale heartbeat" for one older than ``stale_after``)."""
    return sorted(
        {
            lease.heartbeat.state if now - lease.heartbeat.ts <= stale_after else "stale heartbeat"
            for lease in obs.leases
            if lease.heartbeat is not None
            and lease.held(now)
            and lease.heartbeat.pod == lease.holder
            and not lease.ready(now, stale_after)
        }
    )


def not_ready_since(current: Mapping[str, Any]) -> datetime | None:
    """When the Ready condition last turned False (None: ready, or never written)."""
    for condition in current.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            if condition.get("status") != "False":
                return None
            try:
                return datetime.fromisoformat(
                    str(condition.get("lastTransitionTime")).replace("Z", "+00:00")
                )
            except ValueError:
                return None
    return None


def startup_deadline(obs: Observation, current: Mapping[str, Any]) -> datetime | None:
    """When a bot still waiting for its runtime turns Degraded (None: it is not waiting)."""
    since = not_ready_since(current)
    return since + obs.startup_timeout if since is not None else None


def _runtime_verdict(
    obs: Observation, exchanges: dict[str, dict[str, Any]], now: datetime,
    current: Mapping[str, Any],
) -> tuple[str, str, str]:  # fmt: skip
    """(phase, reason, message) from the runtime's side once the spec is fine."""
    unready = {ex.account: _unready_states(ex, now, obs.stale_after) for ex in obs.exchanges}
    not_ready = [
        f"{name}: {ex['readyShards']}/{ex['shardsTotal']} shards ready"
        + (f" (runtime {', '.join(unready[name])})" if unready.get(name) else "")
        for name, ex in exchanges.items()
        if ex["readyShards"] < ex["shardsTotal"]
    ]
    if not not_ready:
        return "Running", "AllShardsReady", "every shard has a ready leader"
    starting = all(set(states) <= STARTING_STATES for states in unready.values())
    if not obs.ever_running and starting:
        deadline = startup_deadline(obs, current)
        if deadline is None or now < deadline:
            return "Pending", "WaitingForRuntime", "; ".join(not_ready)
        minutes = obs.startup_timeout.total_seconds() / 60
        return (
            "Degraded",
            "RuntimeStartTimeout",
            f"runtime still starting after {minutes:g} min: " + "; ".join(not_ready),
        )
    return "Degraded", "ShardsNotReady", "; ".join(not_ready)


def compute_status(
    obs: Observation, current: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """The complete status for the bot, given the current one (for transition times)."""
    current = current or {}
    exchanges = {ex.account: exchange_status(ex, now, obs.stale_after) for ex in obs.exchanges}
    reconciled = ConditionUpdate("Reconciled", "True", "ChildrenApplied", "all children applied")
    progressing = ConditionUpdate("Progressing", "False", "Stable", "")

    if obs.problems:
        first = obs.problems[0]
        waiting = all(p.reason in WAITING_REASONS for p in obs.problems)
        phase, reason = ("Pending" if waiting else "Failed"), first.reason
        message = "; ".join(str(p) for p in obs.problems)
        reconciled = ConditionUpdate("Reconciled", "False", reason, message)
    elif obs.apply_error:
        phase, reason, message = "Degraded", "ApplyFailed", obs.apply_error
        reconciled = ConditionUpdate("Reconciled", "False", "ApplyFailed", obs.apply_error)
    elif obs.suspended:
        phase, reason, message = "Suspended", "Suspended", "spec.suspend is true: no runtime pods"
    else:
        phase, reason, message = _runtime_verdict(obs, exchanges, now, current)
        if obs.halted and phase == "Running":
            phase, reason, message = "Halted", "Halted", "tradingState is Halted: no new orders"
        if phase == "Pending":
            progressing = ConditionUpdate("Progressing", "True", reason, message)

    ready = phase in ("Running", "Halted")
    degraded = phase in ("Degraded", "Failed")
    conditions = merge_conditions(
        current.get("conditions", []),
        [
            ConditionUpdate("Ready", "True" if ready else "False", reason, message),
            ConditionUpdate("Degraded", "True" if degraded else "False", reason, message),
            progressing,
            reconciled,
        ],
        generation=obs.generation,
        now=now,
    )
    leaders = [ex["leader"] for ex in exchanges.values() if ex.get("leader")]
    by_currency: dict[str, Decimal] = {}
    for ex in exchanges.values():
        if "realizedPnl" in ex or "unrealizedPnl" in ex:
            total = _sum([Decimal(ex[k]) for k in ("realizedPnl", "unrealizedPnl") if k in ex])
            currency = ex.get("quoteCurrency", "")
            by_currency[currency] = by_currency.get(currency, Decimal(0)) + total
    ready_count = sum(1 for ex in exchanges.values() if ex["readyShards"] >= ex["shardsTotal"] > 0)
    summary: dict[str, Any] = {
        "exchangesReady": f"{ready_count}/{len(obs.exchanges)}",
        "reason": "" if phase == "Running" else reason,
    }
    if by_currency:
        summary["pnl"] = ", ".join(
            f"{_text(amount)} {currency}".strip()
            for currency, amount in sorted(by_currency.items())
        )[:256]
    if leaders:
        summary["leader"] = ",".join(leaders)[:253]
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions,
        "exchanges": exchanges,
        "summary": summary,
    }
    if len(by_currency) == 1:
        status["pnl"] = _text(next(iter(by_currency.values())))
    if obs.generation is not None:
        status["observedGeneration"] = obs.generation
    return status


def _ready(status: Mapping[str, Any]) -> Mapping[str, Any]:
    conditions = status.get("conditions") or []
    return next((c for c in conditions if isinstance(c, dict) and c.get("type") == "Ready"), {})


def transition_event(
    current: Mapping[str, Any], new: Mapping[str, Any], *, problems: bool
) -> tuple[str, str, str] | None:
    """The one Event (type, reason, message) a status change is worth, or None.

    A transition is a phase change, or a new problem in the same phase (StrategyNotFound,
    then PriorityClassNotFound: both Pending). It is a Warning when a problem of the
    bot's inputs (``problems``) causes it or it goes into Failed or Degraded.
    """
    old_phase, new_phase = current.get("phase"), new.get("phase")
    ready = _ready(new)
    reason = str(ready.get("reason") or new_phase or "")
    if old_phase == new_phase and not (problems and reason != _ready(current).get("reason")):
        return None
    warn = problems or new_phase in ("Failed", "Degraded")
    prefix = f"phase {old_phase or 'None'} -> {new_phase}: " if old_phase != new_phase else ""
    return "Warning" if warn else "Normal", reason, f"{prefix}{ready.get('message', '')}"[:1000]


# When to write and when to look again -----------------------------------------------------


def next_status_change(
    exchanges: Sequence[ExchangeObservation], now: datetime, stale_after: timedelta
) -> float | None:
    """Seconds until the status could change with no event: the earliest expiry of a held
    Lease or staleness of a fresh heartbeat. None when nothing can change on its own."""
    deadlines: list[datetime] = []
    for exchange in exchanges:
        for lease in exchange.leases:
            if not lease.held(now) or lease.renew_time is None:
                continue
            deadlines.append(lease.renew_time + timedelta(seconds=lease.duration_seconds))
            hb = lease.heartbeat
            if hb is not None and now - hb.ts <= stale_after:
                deadlines.append(hb.ts + stale_after)
    if not deadlines:
        return None
    return max(0.0, (min(deadlines) - now).total_seconds()) + DEADLINE_MARGIN_SECONDS


def _heartbeat_only(patch: Mapping[str, Any]) -> bool:
    """True when a status patch changes nothing but exchanges.*.lastHeartbeat."""
    exchanges = patch.get("exchanges")
    if set(patch) != {"exchanges"} or not isinstance(exchanges, dict):
        return False
    return all(
        isinstance(sub, dict) and set(sub) == {"lastHeartbeat"} for sub in exchanges.values()
    )


def _heartbeat_age(status: Mapping[str, Any], now: datetime) -> float:
    """Seconds since the oldest lastHeartbeat written in `status` (inf if unreadable)."""
    ages = []
    for exchange in (status.get("exchanges") or {}).values():
        try:
            ts = datetime.fromisoformat(str(exchange["lastHeartbeat"]).replace("Z", "+00:00"))
        except (KeyError, TypeError, ValueError):
            return float("inf")
        ages.append((now - ts).total_seconds())
    return max(ages, default=float("inf"))


def worth_writing(patch: Mapping[str, Any], current: Mapping[str, Any], now: datetime) -> bool:
    """A non-empty patch, unless it only moves lastHeartbeat and the written one is recent
    (younger than HEARTBEAT_STATUS_SECONDS)."""
    if not patch:
        return False
    return not (_heartbeat_only(patch) and _heartbeat_age(current, now) < HEARTBEAT_STATUS_SECONDS)
