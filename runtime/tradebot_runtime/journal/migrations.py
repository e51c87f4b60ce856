"""Versioned schema migrations of the journal, applied under a Postgres advisory lock.

Every runtime pod calls ``migrate`` at start; with per-bot logins (which may not create
tables) the installer applies them once with the owner's login:
``python -m tradebot_runtime.journal.migrations <DSN>`` (the password from ``PGPASSWORD``).
The advisory lock serialises concurrent
starters (the first applies, the others wait and then find nothing to do), and each
migration runs in the same transaction as its ``schema_migrations`` row, so a crash
mid-migration leaves nothing half-applied. Migrations are append-only: never edit one
that has shipped, add a new version instead.
"""

from __future__ import annotations

from typing import Final

import asyncpg

ADVISORY_LOCK_KEY: Final = 0x7472616465626F74  # "tradebot"

MIGRATIONS: Final[tuple[tuple[int, str], ...]] = (
    (
        1,
        """
        CREATE TABLE shard_epochs (
            bot         text   NOT NULL,
            account     text   NOT NULL,
            shard       int    NOT NULL,
            epoch       bigint NOT NULL CHECK (epoch >= 0),
            next_seq    bigint NOT NULL DEFAULT 1 CHECK (next_seq >= 1),
            holder      text,
            updated_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (bot, account, shard)
        );

        CREATE TABLE orders (
            client_order_id   text PRIMARY KEY,
            bot               text    NOT NULL,
            account           text    NOT NULL,
            shard             int     NOT NULL,
            epoch             bigint  NOT NULL,
            seq               bigint  NOT NULL,
            symbol            text    NOT NULL,
            side              text    NOT NULL CHECK (side IN ('buy', 'sell')),
            type              text    NOT NULL CHECK (type IN ('market', 'limit')),
            amount            numeric NOT NULL CHECK (amount > 0),
            price             numeric CHECK (price IS NULL OR price > 0),
            reduce_only       boolean NOT NULL DEFAULT false,
            tag               text    NOT NULL DEFAULT '',
            state             text    NOT NULL,
            filled            numeric NOT NULL DEFAULT 0 CHECK (filled >= 0),
            exchange_order_id text,
            created_ms        bigint  NOT NULL,
            sent_ms           bigint,
            updated_ms        bigint,
            created_at        timestamptz NOT NULL DEFAULT now(),
            updated_at        timestamptz NOT NULL DEFAULT now(),
            UNIQUE (bot, account, shard, seq)
        );
        CREATE INDEX orders_working ON orders (bot, account, shard)
            WHERE state IN ('intent', 'sending', 'unknown', 'open',
                            'partially_filled', 'pending_cancel');

        CREATE TABLE fills (
            id               bigserial PRIMARY KEY,
            account          text    NOT NULL,
            symbol           text    NOT NULL,
            trade_id         text    NOT NULL,
            bot              text    NOT NULL,
            shard            int     NOT NULL,
            client_order_id  text    NOT NULL,
            side             text    NOT NULL,
            price            numeric NOT NULL,
            amount           numeric NOT NULL,
            fee              numeric NOT NULL,
            fee_currency     text    NOT NULL,
            ts_ms            bigint  NOT NULL,
            recorded_at      timestamptz NOT NULL DEFAULT now(),
            UNIQUE (account, symbol, trade_id)
        );
        CREATE INDEX fills_order ON fills (client_order_id);

        CREATE TABLE audit_events (
            id               bigserial PRIMARY KEY,
            ts               timestamptz NOT NULL DEFAULT now(),
            bot              text   NOT NULL,
            account          text   NOT NULL,
            shard            int,
            epoch            bigint,
            kind             text   NOT NULL,
            client_order_id  text,
            data             jsonb  NOT NULL DEFAULT '{}'::jsonb
        );

        CREATE FUNCTION audit_events_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_events is append-only';
        END $$;
        CREATE TRIGGER audit_events_append_only
            BEFORE UPDATE OR DELETE ON audit_events
            FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
        """,
    ),
    (
        2,
        # A fill is one trade of one of our orders. (account, symbol, trade_id) was not
        # unique: `account` is the ExchangeAccount's name, which repeats across namespaces,
        # and a trade between two of our orders (two accounts, or two bots on one account)
        # has one trade id for both sides; the second side was dropped as a duplicate.
        """
        ALTER TABLE fills DROP CONSTRAINT fills_account_symbol_trade_id_key;
        ALTER TABLE fills ADD CONSTRAINT fills_order_trade_key
            UNIQUE (client_order_id, symbol, trade_id);
        """,
    ),
    (
        3,
        # Per-bot logins (Vault's database secrets engine, operator builders/data_access.py):
        # each is a member of tradebot_runtime and is listed in journal_logins with its bot.
        # Row-level security lets such a login see and write only its own bot's rows. The
        # tables' owner (the migrating login) is not subject to it.
        """
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tradebot_runtime') THEN
                CREATE ROLE tradebot_runtime NOLOGIN;
            END IF;
        END $$;

        CREATE TABLE journal_logins (
            login name PRIMARY KEY,
            bot   text NOT NULL
        );
        REVOKE ALL ON journal_logins FROM PUBLIC;

        -- The bot of this session's login; SECURITY DEFINER so that no login can read
        -- the other logins' rows. session_user, not current_user: SET ROLE cannot change it.
        CREATE FUNCTION journal_login_bot() RETURNS text
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT
            AS $$ SELECT bot FROM journal_logins WHERE login = session_user $$;
        REVOKE ALL ON FUNCTION journal_login_bot() FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION journal_login_bot() TO tradebot_runtime;

        GRANT SELECT ON schema_migrations TO tradebot_runtime;
        GRANT SELECT, INSERT, UPDATE ON shard_epochs, orders, fills TO tradebot_runtime;
        GRANT SELECT, INSERT ON audit_events TO tradebot_runtime;
        GRANT USAGE ON SEQUENCE fills_id_seq, audit_events_id_seq TO tradebot_runtime;

        ALTER TABLE shard_epochs ENABLE ROW LEVEL SECURITY;
        ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
        ALTER TABLE fills ENABLE ROW LEVEL SECURITY;
        ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
        -- (SELECT ...) is evaluated once per statement, not once per row.
        CREATE POLICY own_bot ON shard_epochs TO tradebot_runtime
            USING (bot = (SELECT journal_login_bot()))
            WITH CHECK (bot = (SELECT journal_login_bot()));
        CREATE POLICY own_bot ON orders TO tradebot_runtime
            USING (bot = (SELECT journal_login_bot()))
            WITH CHECK (bot = (SELECT journal_login_bot()));
        CREATE POLICY own_bot ON fills TO tradebot_runtime
            USING (bot = (SELECT journal_login_bot()))
            WITH CHECK (bot = (SELECT journal_login_bot()));
        CREATE POLICY own_bot ON audit_events TO tradebot_runtime
            USING (bot = (SELECT journal_login_bot()))
            WITH CHECK (bot = (SELECT journal_login_bot()));
        """,
    ),
    (
        4,
        # A bot deleted and created again under the same name starts its Leases' epochs
        # from the beginning, below the epoch its predecessor left here: the new bot could
        # never take its shards. The fence is (generation, epoch) instead: the generation
        # is the bot's creation time, later for every new incarnation. next_seq is never
        # reset, so a client order id is never issued twice.
        """
        ALTER TABLE shard_epochs ADD COLUMN generation bigint NOT NULL DEFAULT 0;
        """,
    ),
    (
        5,
        # The daily-loss and drawdown baselines of each shard. They lived in memory only,
        # so every restart or failover opened a new day at the current PnL and a new peak
        # at the current equity: a pod killed at its loss limit came back with a fresh
        # budget. Written fenced by the shard's leader, read on takeover.
        """
        CREATE TABLE pnl_baselines (
            bot            text    NOT NULL,
            account        text    NOT NULL,
            shard          int     NOT NULL,
            day            int     NOT NULL,
            day_open_pnl   numeric NOT NULL,
            peak_equity    numeric NOT NULL,
            last_total_pnl numeric NOT NULL,
            updated_at     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (bot, account, shard)
        );
        GRANT SELECT, INSERT, UPDATE ON pnl_baselines TO tradebot_runtime;
        ALTER TABLE pnl_baselines ENABLE ROW LEVEL SECURITY;
        CREATE POLICY own_bot ON pnl_baselines TO tradebot_runtime
            USING (bot = (SELECT journal_login_bot()))
            WITH CHECK (bot = (SELECT journal_login_bot()));
        """,
    ),
)

LATEST_VERSION: Final = MIGRATIONS[-1][0]


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply every pending migration; returns the versions this call applied.

    Safe to call concurrently from many processes and any number of times.
    """
    if await schema_version(conn) >= LATEST_VERSION:
        # Current: nothing to lock or create (a per-bot login may not create tables).
        return []
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK_KEY)
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    int PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, sql in MIGRATIONS:
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied_now.append(version)
    return applied_now


async def schema_version(conn: asyncpg.Connection) -> int:
    """Highest applied migration, 0 for an empty database."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))


def main(argv: list[str] | None = None) -> None:
    """``python -m tradebot_runtime.journal.migrations DSN``: apply pending migrations."""
    import argparse
    import asyncio

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("dsn", help="PostgreSQL DSN of the tables' owner (password: PGPASSWORD)")
    args = parser.parse_args(argv)

    async def run() -> list[int]:
        conn = await asyncpg.connect(args.dsn)
        try:
            return await migrate(conn)
        finally:
            await conn.close()

    applied = asyncio.run(run())
    print(f"journal schema at version {LATEST_VERSION}; applied now: {applied or 'none'}")


if __name__ == "__main__":
    main()
