"""The schema of the pinsched database and its migrations (`PRAGMA user_version`)."""

from __future__ import annotations

from typing import Final

import aiosqlite

MIGRATIONS: Final[tuple[str, ...]] = (
    # 0 → 1: the initial schema.
    """
    CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        display_name TEXT NOT NULL DEFAULT '',
        access_token TEXT NOT NULL DEFAULT '',
        refresh_token TEXT NOT NULL DEFAULT '',
        access_expires_at INTEGER,
        pacing TEXT NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        needs_reauth INTEGER NOT NULL DEFAULT 0,
        state_reason TEXT NOT NULL DEFAULT '',
        version INTEGER NOT NULL DEFAULT 1,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        state TEXT NOT NULL,
        board_id TEXT NOT NULL,
        pin TEXT NOT NULL,
        scheduled_at INTEGER NOT NULL,
        window_us INTEGER NOT NULL,
        planned_at INTEGER NOT NULL,
        local_time TEXT,
        request_id TEXT,
        request_hash TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER,
        pinterest_pin_id TEXT,
        last_error TEXT,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        submitted_at INTEGER,
        delivered_at INTEGER,
        late_by_us INTEGER,
        cancel_requested INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE UNIQUE INDEX jobs_request_id ON jobs(request_id) WHERE request_id IS NOT NULL;
    -- A Pinterest pin belongs to at most one job: reconciliation can never claim it twice.
    CREATE UNIQUE INDEX jobs_pin_id ON jobs(pinterest_pin_id) WHERE pinterest_pin_id IS NOT NULL;
    CREATE INDEX jobs_active ON jobs(state)
        WHERE state IN ('PENDING', 'QUEUED', 'SUBMITTED', 'RETRYING', 'CANCELLING');
    CREATE INDEX jobs_account ON jobs(account_id, id);
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        from_state TEXT,
        to_state TEXT NOT NULL,
        time INTEGER NOT NULL,
        reason TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        error TEXT
    ) STRICT;
    CREATE INDEX events_job ON events(job_id, seq);
    """,
    # 1 → 2: the webhook outbox (one row per event and endpoint, written with the event).
    """
    CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        endpoint TEXT NOT NULL,
        event_seq INTEGER NOT NULL,
        message_id TEXT NOT NULL,
        order_key TEXT NOT NULL,
        event_type TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'PENDING',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_status INTEGER,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX webhook_pending ON webhook_deliveries(endpoint, next_attempt_at)
        WHERE state = 'PENDING';
    CREATE INDEX webhook_order ON webhook_deliveries(endpoint, order_key, id)
        WHERE state = 'PENDING';
    CREATE INDEX webhook_state ON webhook_deliveries(state, id);
    """,
    # 2 → 3: changes of delivered pins being applied on Pinterest (UpdateJob after delivery).
    """
    ALTER TABLE jobs ADD COLUMN remote_update TEXT;
    ALTER TABLE jobs ADD COLUMN remote_pending INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX jobs_remote_pending ON jobs(id) WHERE remote_pending = 1;
    """,
    # 3 → 4: window planning looks up an account's planned times.
    """
    CREATE INDEX jobs_account_planned ON jobs(account_id, planned_at);
    """,
    # 4 → 5 (issue 16): posting schedules, the slot a job occupies, board groups.
    """
    ALTER TABLE accounts ADD COLUMN posting_schedule TEXT;
    ALTER TABLE jobs ADD COLUMN slot TEXT;
    ALTER TABLE jobs ADD COLUMN slot_at INTEGER;
    ALTER TABLE jobs ADD COLUMN group_id TEXT;
    CREATE INDEX jobs_account_slot ON jobs(account_id, slot_at) WHERE slot_at IS NOT NULL;
    CREATE INDEX jobs_group ON jobs(group_id, id) WHERE group_id IS NOT NULL;
    """,
)



async def migrate(db: aiosqlite.Connection) -> None:
    rows = list(await db.execute_fetchall("PRAGMA user_version"))
    version = int(rows[0][0])
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema version {version} is newer than this pinsched "
            f"({len(MIGRATIONS)}); upgrade pinsched"
        )
    for target in range(version, len(MIGRATIONS)):
        await db.executescript(
            f"BEGIN IMMEDIATE; {MIGRATIONS[target]}; PRAGMA user_version = {target + 1}; COMMIT;"
        )


