"""The order journal in PostgreSQL: intent first, fenced by the shard's epoch.

Fencing. ``shard_epochs`` holds the current epoch (the Lease term) of every
(bot, account, shard). A new leader calls ``take_shard`` with its epoch: the row moves
forward, never back. Every write on behalf of a shard (intent insert, order update, fill,
sequence allocation) is ONE statement that reads that row ``FOR SHARE`` with the caller's
epoch in the WHERE clause: if another leader has taken the shard at a higher epoch the
statement matches nothing and ``StaleEpochError`` is raised. Because ``take_shard``
updates the row (exclusive row lock), it waits for in-flight fenced writes to commit,
and every fenced write that starts after it sees the new epoch: a stale leader can never
journal an intent after the new leader has taken over, so it can never send one either
(the runtime sends only what it journaled).

Sequences. ``shard_epochs.next_seq`` is never reset, so sequence numbers (and with the
epoch, client order ids) are monotonic across epochs. The runtime allocates them in
blocks (``allocate_seqs``) so that the hot path is a single INSERT; unused numbers of a
block are simply skipped (gaps are harmless, reuse is impossible).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from tradebot_runtime import metrics
from tradebot_runtime.domain import Fill, OrderIntent, OrderType, Side
from tradebot_runtime.journal.migrations import LATEST_VERSION, migrate
from tradebot_runtime.orders import WORKING_STATES, OrderRecord, OrderState
from tradebot_runtime.positions import PnlTrackerState


class JournalError(RuntimeError):
    """Base class of journal refusals."""


class StaleEpochError(JournalError):
    """The caller's epoch is older than the shard's current epoch: it lost the shard and
    must stop writing (and sending) at once."""

    def __init__(self, fence: Fence, current: int | None) -> None:
        # every refusal is counted once, where it is raised (tradebot_journal_fenced_total)
        metrics.JOURNAL_FENCED.labels(str(fence.shard)).inc()
        super().__init__(
            f"shard {fence.bot}/{fence.account}/{fence.shard}: epoch {fence.epoch} is stale "
            f"(current {current})"
        )
        self.fence = fence
        self.current = current


class UnknownOrderError(JournalError, LookupError):
    """No such order in this shard of the journal."""


@dataclass(frozen=True, slots=True)
class Fence:
    """Who writes: one shard of one bot on one account, at one epoch. ``bot`` is
    ``namespace/name``."""

    bot: str
    account: str
    shard: int
    epoch: int
    generation: int = 0
    """The bot's incarnation (its creation time, ms): a bot created again under the same
    name has a higher one, so its epochs may start from the beginning again."""


def _fence_cte(generation: int) -> str:
    """The fence of a statement whose $1..$4 are bot, account, shard and epoch and whose
    last parameter, ``$<generation>``, is the fence's generation."""
    return f"""
WITH fence AS (
    SELECT 1 FROM shard_epochs
    WHERE bot = $1 AND account = $2 AND shard = $3 AND epoch = $4
      AND generation = ${generation}
    FOR SHARE
)
"""


_INSERT_INTENT = (
    _fence_cte(21)
    + """
INSERT INTO orders (client_order_id, bot, account, shard, epoch, seq, symbol, side, type,
                    amount, price, reduce_only, tag, state, filled, exchange_order_id,
                    created_ms, sent_ms, updated_ms)
SELECT $5, $1, $2, $3, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20
FROM fence
RETURNING 1
"""
)

_UPDATE_ORDER = (
    _fence_cte(11)
    + """
UPDATE orders SET state = $6, filled = $7, exchange_order_id = $8, sent_ms = $9,
                  updated_ms = $10, updated_at = now()
WHERE client_order_id = $5 AND bot = $1 AND account = $2 AND shard = $3
  AND EXISTS (SELECT 1 FROM fence)
RETURNING 1
"""
)

_INSERT_FILL = (
    _fence_cte(14)
    + """
INSERT INTO fills (account, symbol, trade_id, bot, shard, client_order_id, side, price,
                   amount, fee, fee_currency, ts_ms)
SELECT $2, $5, $6, $1, $3, $7, $8, $9, $10, $11, $12, $13 FROM fence
ON CONFLICT (client_order_id, symbol, trade_id) DO NOTHING
RETURNING 1
"""
)

_ALLOCATE = """
UPDATE shard_epochs SET next_seq = next_seq + $5, updated_at = now()
WHERE bot = $1 AND account = $2 AND shard = $3 AND epoch = $4 AND generation = $6
RETURNING next_seq - $5
"""

# Never lowers (generation, epoch); next_seq is kept across generations.
_TAKE = """
INSERT INTO shard_epochs AS s (bot, account, shard, epoch, holder, generation)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (bot, account, shard) DO UPDATE
    SET epoch = excluded.epoch, holder = excluded.holder, generation = excluded.generation,
        updated_at = now()
    WHERE (s.generation, s.epoch) <= (excluded.generation, excluded.epoch)
RETURNING epoch, next_seq
"""

_SAVE_PNL = (
    _fence_cte(9)
    + """
INSERT INTO pnl_baselines AS p (bot, account, shard, day, day_open_pnl, peak_equity,
                                last_total_pnl)
SELECT $1, $2, $3, $5, $6, $7, $8 FROM fence
ON CONFLICT (bot, account, shard) DO UPDATE
    SET day = excluded.day, day_open_pnl = excluded.day_open_pnl,
        peak_equity = excluded.peak_equity, last_total_pnl = excluded.last_total_pnl,
        updated_at = now()
RETURNING 1
"""
)

_ORDER_COLUMNS = """client_order_id, shard, epoch, seq, symbol, side, type, amount, price,
reduce_only, tag, state, filled, exchange_order_id, created_ms, sent_ms, updated_ms"""


def _fence_args(fence: Fence) -> tuple[str, str, int, int]:
    return (fence.bot, fence.account, fence.shard, fence.epoch)


def record_from_row(row: asyncpg.Record) -> OrderRecord:
    intent = OrderIntent(
        symbol=row["symbol"],
        side=Side(row["side"]),
        type=OrderType(row["type"]),
        amount=Decimal(row["amount"]),
        price=Decimal(row["price"]) if row["price"] is not None else None,
        reduce_only=row["reduce_only"],
        tag=row["tag"],
    )
    return OrderRecord(
        client_order_id=row["client_order_id"],
        intent=intent,
        shard=row["shard"],
        epoch=row["epoch"],
        seq=row["seq"],
        created_ms=row["created_ms"],
        state=OrderState(row["state"]),
        filled=Decimal(row["filled"]),
        exchange_order_id=row["exchange_order_id"],
        sent_ms=row["sent_ms"],
        updated_ms=row["updated_ms"],
    )


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """The pool's reset when a connection comes back: nothing beyond asyncpg's own rollback
    of a transaction left open. The journal keeps no session state (no LISTEN, SET, cursor
    or session advisory lock), and the default reset (RESET ALL, UNLISTEN, ...) is one more
    round trip after every statement: ~150 us of a ~400 us journaled intent."""


class Journal:
    """Async access to the journal through an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool, dsn: str | None = None) -> None:
        self.pool = pool
        self.dsn = dsn

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        user: str | None = None,
        password: str | None = None,
        min_size: int = 1,
        max_size: int = 4,
    ) -> Journal:
        """Open a pool and apply pending migrations (under the advisory lock). ``user`` and
        ``password``: a login that is not in the DSN (the bot's own, from Vault)."""
        pool = await asyncpg.create_pool(
            dsn, user=user, password=password, min_size=min_size, max_size=max_size,
            reset=_keep_session,
        )  # fmt: skip
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
        except asyncpg.InsufficientPrivilegeError:
            await pool.close()
            raise JournalError(
                f"the journal schema is older than version {LATEST_VERSION} and this login "
                "may not migrate it: apply the migrations with the tables' owner "
                "(python -m tradebot_runtime.journal.migrations DSN)"
            ) from None
        return cls(pool, dsn)

    async def use_login(self, user: str, password: str) -> None:
        """New connections log in as ``user``; open ones are replaced as they come back
        (a login replaced before its lease ends, data_logins.py)."""
        self.pool.set_connect_args(self.dsn, user=user, password=password)
        await self.pool.expire_connections()

    async def close(self) -> None:
        await self.pool.close()

    async def ping(self, timeout_s: float = 2.0) -> None:
        """One round trip to the server (raises when it is unreachable)."""
        await self.pool.fetchval("SELECT 1", timeout=timeout_s)

    # -- shards -------------------------------------------------------------------------

    async def take_shard(self, fence: Fence, holder: str) -> int:
        """Record ``fence.epoch`` as the shard's current epoch (never lowers the pair
        (generation, epoch)); returns the shard's next sequence number, which carries on
        across generations. Raises StaleEpochError when a higher pair is recorded."""
        row = await self.pool.fetchrow(_TAKE, *_fence_args(fence), holder, fence.generation)
        if row is None:
            raise StaleEpochError(fence, await self.current_epoch(fence))
        return int(row["next_seq"])

    async def current_epoch(self, fence: Fence) -> int | None:
        value = await self.pool.fetchval(
            "SELECT epoch FROM shard_epochs WHERE bot = $1 AND account = $2 AND shard = $3",
            fence.bot,
            fence.account,
            fence.shard,
        )
        return None if value is None else int(value)

    async def allocate_seqs(self, fence: Fence, count: int) -> range:
        """Reserve ``count`` sequence numbers for this shard (fenced)."""
        if count < 1:
            raise ValueError("count must be positive")
        first = await self.pool.fetchval(_ALLOCATE, *_fence_args(fence), count, fence.generation)
        if first is None:
            raise StaleEpochError(fence, await self.current_epoch(fence))
        return range(int(first), int(first) + count)

    async def _stale_or(self, fence: Fence, other: JournalError) -> JournalError:
        row = await self.pool.fetchrow(
            "SELECT generation, epoch FROM shard_epochs"
            " WHERE bot = $1 AND account = $2 AND shard = $3",
            fence.bot, fence.account, fence.shard,
        )  # fmt: skip
        if row is None or (row["generation"], row["epoch"]) != (fence.generation, fence.epoch):
            return StaleEpochError(fence, None if row is None else int(row["epoch"]))
        return other

    # -- orders -------------------------------------------------------------------------

    async def insert_intent(self, fence: Fence, record: OrderRecord) -> None:
        """Journal a new order before it is sent (one fenced, durable INSERT)."""
        if record.shard != fence.shard or record.epoch != fence.epoch:
            raise ValueError("an intent must be journaled by its own shard and epoch")
        intent = record.intent
        done = await self.pool.fetchval(
            _INSERT_INTENT,
            *_fence_args(fence),
            record.client_order_id,
            record.epoch,
            record.seq,
            intent.symbol,
            intent.side.value,
            intent.type.value,
            intent.amount,
            intent.price,
            intent.reduce_only,
            intent.tag,
            record.state.value,
            record.filled,
            record.exchange_order_id,
            record.created_ms,
            record.sent_ms,
            record.updated_ms,
            fence.generation,
        )
        if done is None:
            raise StaleEpochError(fence, await self.current_epoch(fence))

    async def update_order(self, fence: Fence, record: OrderRecord) -> None:
        """Persist the record's state, filled amount, exchange id and times (fenced)."""
        done = await self.pool.fetchval(
            _UPDATE_ORDER,
            *_fence_args(fence),
            record.client_order_id,
            record.state.value,
            record.filled,
            record.exchange_order_id,
            record.sent_ms,
            record.updated_ms,
            fence.generation,
        )
        if done is None:
            raise await self._stale_or(
                fence, UnknownOrderError(f"no order {record.client_order_id} in this shard")
            )

    async def get_order(self, client_order_id: str) -> OrderRecord | None:
        row = await self.pool.fetchrow(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE client_order_id = $1", client_order_id
        )
        return None if row is None else record_from_row(row)

    async def load_orders(
        self, bot: str, account: str, shard: int, *, working_only: bool = True
    ) -> list[OrderRecord]:
        """The shard's orders (working ones only by default), oldest first."""
        states: Sequence[str] = (
            [s.value for s in WORKING_STATES] if working_only else [s.value for s in OrderState]
        )
        rows = await self.pool.fetch(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE bot = $1 AND account = $2 "
            "AND shard = $3 AND state = ANY($4::text[]) ORDER BY seq",
            bot,
            account,
            shard,
            list(states),
        )
        return [record_from_row(row) for row in rows]

    async def load_abandoned(
        self, bot: str, account: str, shard: int, since_ms: int
    ) -> list[OrderRecord]:
        """The shard's orders abandoned (never found) since ``since_ms``: looked up again
        on takeover, in case the exchange took one after all."""
        rows = await self.pool.fetch(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE bot = $1 AND account = $2"
            " AND shard = $3 AND state = 'abandoned' AND updated_ms >= $4 ORDER BY seq",
            bot, account, shard, since_ms,
        )  # fmt: skip
        return [record_from_row(row) for row in rows]

    async def tag_stats(
        self, bot: str, account: str, shard: int
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """(symbol, tag) -> (count, last created_ms) of the shard's orders that reached or
        may have reached the market (REJECTED and ABANDONED excluded): what strategies
        use to schedule (StrategyContext.tag_stats), so a restart never repeats an order."""
        rows = await self.pool.fetch(
            "SELECT symbol, tag, count(*) AS n, max(created_ms) AS last FROM orders"
            " WHERE bot = $1 AND account = $2 AND shard = $3"
            " AND state NOT IN ('rejected', 'abandoned') GROUP BY symbol, tag",
            bot,
            account,
            shard,
        )
        return {(r["symbol"], r["tag"]): (int(r["n"]), int(r["last"])) for r in rows}

    async def first_order_ms(self, bot: str, account: str, shard: int, symbol: str) -> int | None:
        """When the shard's oldest order in ``symbol`` was created (None: it has none):
        no fill of this shard in that symbol can be older."""
        value = await self.pool.fetchval(
            "SELECT min(created_ms) FROM orders"
            " WHERE bot = $1 AND account = $2 AND shard = $3 AND symbol = $4",
            bot, account, shard, symbol,
        )  # fmt: skip
        return None if value is None else int(value)

    # -- PnL baselines ------------------------------------------------------------------

    async def save_pnl_baseline(self, fence: Fence, state: PnlTrackerState) -> None:
        """The shard's daily-loss and drawdown baselines (fenced)."""
        done = await self.pool.fetchval(
            _SAVE_PNL, *_fence_args(fence), state.day, state.day_open_pnl,
            state.peak_equity, state.last_total_pnl, fence.generation,
        )  # fmt: skip
        if done is None:
            raise StaleEpochError(fence, await self.current_epoch(fence))

    async def load_pnl_baseline(self, bot: str, account: str, shard: int) -> PnlTrackerState | None:
        row = await self.pool.fetchrow(
            "SELECT day, day_open_pnl, peak_equity, last_total_pnl FROM pnl_baselines"
            " WHERE bot = $1 AND account = $2 AND shard = $3",
            bot, account, shard,
        )  # fmt: skip
        if row is None:
            return None
        return PnlTrackerState(
            day=int(row["day"]), day_open_pnl=Decimal(row["day_open_pnl"]),
            peak_equity=Decimal(row["peak_equity"]),
            last_total_pnl=Decimal(row["last_total_pnl"]),
        )  # fmt: skip

    # -- fills --------------------------------------------------------------------------

    async def record_fill(self, fence: Fence, fill: Fill) -> bool:
        """Store one fill; False when it was already recorded (dedup by our order, symbol
        and exchange trade id: both sides of a trade between two of our orders count)."""
        inserted = await self.pool.fetchval(
            _INSERT_FILL,
            *_fence_args(fence),
            fill.symbol,
            fill.trade_id,
            fill.client_order_id,
            fill.side.value,
            fill.price,
            fill.amount,
            fill.fee,
            fill.fee_currency,
            fill.ts,
            fence.generation,
        )
        if inserted is not None:
            return True
        stale = await self._stale_or(fence, JournalError("duplicate"))
        if isinstance(stale, StaleEpochError):
            raise stale
        return False

    async def load_fills(self, bot: str, account: str, shard: int) -> list[Fill]:
        rows = await self.pool.fetch(
            "SELECT trade_id, client_order_id, symbol, side, price, amount, fee, fee_currency,"
            " ts_ms FROM fills WHERE bot = $1 AND account = $2 AND shard = $3 ORDER BY ts_ms, id",
            bot,
            account,
            shard,
        )
        return [
            Fill(
                trade_id=row["trade_id"],
                client_order_id=row["client_order_id"],
                symbol=row["symbol"],
                side=Side(row["side"]),
                price=Decimal(row["price"]),
                amount=Decimal(row["amount"]),
                fee=Decimal(row["fee"]),
                fee_currency=row["fee_currency"],
                ts=row["ts_ms"],
            )
            for row in rows
        ]

    # -- audit --------------------------------------------------------------------------

    async def audit(
        self,
        bot: str,
        account: str,
        kind: str,
        *,
        shard: int | None = None,
        epoch: int | None = None,
        client_order_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Append one event (never fenced: refusals are worth recording too)."""
        await self.pool.execute(
            "INSERT INTO audit_events (bot, account, shard, epoch, kind, client_order_id, data)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
            bot,
            account,
            shard,
            epoch,
            kind,
            client_order_id,
            json.dumps(data or {}, default=str),
        )
