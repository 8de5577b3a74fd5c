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
    # 4 → 5: retention and scrape-time counts. Settled jobs and finished webhook deliveries are
    # found by age (pruning); jobs by state and deliveries by (endpoint, state) are counted by
    # triggers in the writing transaction, so a metrics scrape never counts whole tables.
    # Events of jobs deleted with their account before DeleteAccount removed them go now.
    """
    CREATE INDEX jobs_settled ON jobs(updated_at)
        WHERE state IN ('CANCELLED', 'DELIVERED', 'PERMANENTLY_FAILED');
    CREATE INDEX webhook_done ON webhook_deliveries(updated_at)
        WHERE state IN ('DEAD', 'DELIVERED');
    DELETE FROM events WHERE job_id NOT IN (SELECT id FROM jobs);
    CREATE TABLE job_counts (
        state TEXT PRIMARY KEY,
        n INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    INSERT INTO job_counts (state, n) SELECT state, count(*) FROM jobs GROUP BY state;
    CREATE TRIGGER job_counts_insert AFTER INSERT ON jobs BEGIN
        INSERT INTO job_counts (state, n) VALUES (new.state, 1)
            ON CONFLICT (state) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER job_counts_delete AFTER DELETE ON jobs BEGIN
        UPDATE job_counts SET n = n - 1 WHERE state = old.state;
    END;
    CREATE TRIGGER job_counts_update AFTER UPDATE OF state ON jobs
        WHEN old.state IS NOT new.state BEGIN
        UPDATE job_counts SET n = n - 1 WHERE state = old.state;
        INSERT INTO job_counts (state, n) VALUES (new.state, 1)
            ON CONFLICT (state) DO UPDATE SET n = n + 1;
    END;
    CREATE TABLE webhook_counts (
        endpoint TEXT NOT NULL,
        state TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (endpoint, state)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO webhook_counts (endpoint, state, n)
        SELECT endpoint, state, count(*) FROM webhook_deliveries GROUP BY endpoint, state;
    CREATE TRIGGER webhook_counts_insert AFTER INSERT ON webhook_deliveries BEGIN
        INSERT INTO webhook_counts (endpoint, state, n) VALUES (new.endpoint, new.state, 1)
            ON CONFLICT (endpoint, state) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER webhook_counts_delete AFTER DELETE ON webhook_deliveries BEGIN
        UPDATE webhook_counts SET n = n - 1 WHERE endpoint = old.endpoint AND state = old.state;
    END;
    CREATE TRIGGER webhook_counts_update AFTER UPDATE OF state ON webhook_deliveries
        WHEN old.state IS NOT new.state BEGIN
        UPDATE webhook_counts SET n = n - 1 WHERE endpoint = old.endpoint AND state = old.state;
        INSERT INTO webhook_counts (endpoint, state, n) VALUES (new.endpoint, new.state, 1)
            ON CONFLICT (endpoint, state) DO UPDATE SET n = n + 1;
    END;
    """,
    # 5 → 6: inline images stored once, by content hash, apart from the jobs that use them. The
    # job's pin JSON names its image (`sha256`); the generated column indexes that name, and
    # the triggers drop an image when the last job using it is deleted or changes its image.
    """
    CREATE TABLE media (
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        data BLOB NOT NULL
    ) STRICT;
    ALTER TABLE jobs ADD COLUMN media_sha256 TEXT
        GENERATED ALWAYS AS (json_extract(pin, '$.media.image_base64.sha256')) VIRTUAL;
    CREATE INDEX jobs_media ON jobs(media_sha256) WHERE media_sha256 IS NOT NULL;
    CREATE TRIGGER media_release_delete AFTER DELETE ON jobs
        WHEN old.media_sha256 IS NOT NULL BEGIN
        DELETE FROM media WHERE sha256 = old.media_sha256
            AND NOT EXISTS (SELECT 1 FROM jobs WHERE media_sha256 = old.media_sha256);
    END;
    CREATE TRIGGER media_release_update AFTER UPDATE OF pin ON jobs
        WHEN old.media_sha256 IS NOT NULL AND old.media_sha256 IS NOT new.media_sha256 BEGIN
        DELETE FROM media WHERE sha256 = old.media_sha256
            AND NOT EXISTS (SELECT 1 FROM jobs WHERE media_sha256 = old.media_sha256);
    END;
    """,
    # 6 → 7: how long a job's transient failures are retried (NULL: the default budget).
    """
    ALTER TABLE jobs ADD COLUMN retry_for_us INTEGER;
    """,
    # 7 → 8: token lifetimes, what Pinterest said about the account, business access, a
    # per-account API base, account holds, and pacer state that survives a restart.
    """
    ALTER TABLE accounts ADD COLUMN refresh_expires_at INTEGER;
    ALTER TABLE accounts ADD COLUMN access_ttl_s INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE accounts ADD COLUMN refresh_ttl_s INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE accounts ADD COLUMN username TEXT NOT NULL DEFAULT '';
    ALTER TABLE accounts ADD COLUMN account_type TEXT NOT NULL DEFAULT '';
    ALTER TABLE accounts ADD COLUMN verified_at INTEGER;
    ALTER TABLE accounts ADD COLUMN ad_account_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE accounts ADD COLUMN api_base TEXT NOT NULL DEFAULT '';
    ALTER TABLE accounts ADD COLUMN hold_reason TEXT NOT NULL DEFAULT '';
    ALTER TABLE accounts ADD COLUMN reauth_warned_at INTEGER;
    CREATE TABLE pacer_state (
        account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
        state TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    ) STRICT;
    """,
    # 8 → 9: posting schedules, the slot a job occupies, board groups.
    """
    ALTER TABLE accounts ADD COLUMN posting_schedule TEXT;
    ALTER TABLE jobs ADD COLUMN slot TEXT;
    ALTER TABLE jobs ADD COLUMN slot_at INTEGER;
    ALTER TABLE jobs ADD COLUMN group_id TEXT;
    CREATE INDEX jobs_account_slot ON jobs(account_id, slot_at) WHERE slot_at IS NOT NULL;
    CREATE INDEX jobs_group ON jobs(group_id, id) WHERE group_id IS NOT NULL;
    """,
    # 9 → 10: the windowed due-heap. `due_us` is when a PENDING or RETRYING job is next due (a
    # retry's next attempt, else its planned time); the partial index on (due_us, id) lets the
    # scheduler read only the jobs due within its window, in due order, as time advances.
    """
    ALTER TABLE jobs ADD COLUMN due_us INTEGER GENERATED ALWAYS AS (
        CASE WHEN state = 'RETRYING' THEN coalesce(next_attempt_at, planned_at)
        ELSE planned_at END) VIRTUAL;
    CREATE INDEX jobs_due ON jobs(due_us, id) WHERE state IN ('PENDING', 'RETRYING');
    """,
    # 10 → 11: video staging. The job's staging record (JSON, `video.MediaStage`), and the
    # uploaded video a pin names, indexed so that files no job refers to can be removed.
    """
    ALTER TABLE jobs ADD COLUMN media_stage TEXT;
    ALTER TABLE jobs ADD COLUMN video_asset TEXT
        GENERATED ALWAYS AS (json_extract(pin, '$.media.video_asset.asset_id')) VIRTUAL;
    CREATE INDEX jobs_video_asset ON jobs(video_asset) WHERE video_asset IS NOT NULL;
    """,
    # 11 → 12: several daemons on one database (`pinsched.store.leases`): the members'
    # heartbeats and the account leases with their fencing epoch.
    """
    CREATE TABLE members (
        member_id TEXT PRIMARY KEY,
        started_at INTEGER NOT NULL,
        alive_until INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE account_leases (
        account_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    ) STRICT;
    """,
    # 12 → 13: the scopes Pinterest granted an account's tokens (comma-separated; NULL while
    # Pinterest has not said).
    """
    ALTER TABLE accounts ADD COLUMN scopes TEXT;
    """,
    # 13 → 14: webhook deliveries claimed by one daemon at a time (PostgreSQL,
    # `pinsched.store.outbox_claims`); always NULL on SQLite, where one daemon sends.
    """
    ALTER TABLE webhook_deliveries ADD COLUMN claimed_by TEXT;
    ALTER TABLE webhook_deliveries ADD COLUMN claim_until INTEGER;
    """,
    # 14 → 15: takeover history (`pinsched.store.leases`): a row each time an account's lease
    # passes from one daemon to another (released or expired), the last few hundred kept, for
    # `pinsched cluster status`.
    """
    CREATE TABLE lease_takeovers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id TEXT NOT NULL,
        previous_owner TEXT NOT NULL,
        new_owner TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        reason TEXT NOT NULL,
        at INTEGER NOT NULL
    ) STRICT;
    """,
    # 15 → 16: the active video jobs (their videos staged ahead), found at start-up and at a
    # takeover without reading every active job's pin (`store.videos.VIDEO_SQL`).
    """
    CREATE INDEX jobs_video ON jobs(account_id, id)
        WHERE state IN ('CANCELLING', 'PENDING', 'QUEUED', 'RETRYING', 'SUBMITTED')
        AND (video_asset IS NOT NULL OR json_extract(pin, '$.media.video_url') IS NOT NULL);
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
