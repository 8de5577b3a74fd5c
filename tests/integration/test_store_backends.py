"""What the two store backends must agree on (run on both through `db_url`), and what is
PostgreSQL's own: one schema, one transaction for a change with its events and outbox rows,
constraint errors, several daemons on one PostgreSQL database (migrated once), clear refusals
at start-up."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from pinsched.core.accounts import Account
from pinsched.core.errors import StorageUnavailable
from pinsched.core.jobs import ImageUrl, Job, JobState, PinSpec, Transition, transition
from pinsched.store import (
    MIGRATIONS,
    JobFilter,
    Outbox,
    OutboxRow,
    StaleJob,
    Store,
    StoreOpenError,
    postgres,
)
from pinsched.store.driver import numbered
from pinsched.store.eventlog import EVENTS_PER_STATEMENT
from pinsched.store.jobs import PENDING_PLANNED_SQL
from pinsched.store.pg_schema import PG_BASE, PG_MIGRATIONS
from pinsched.store.rows import Event
from tests.backends import Cluster, run_sql

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def new_job(i: int) -> tuple[Job, Transition]:
    job = Job(
        id=f"job{i:04d}",
        account_id="acme",
        state=JobState.PENDING,
        pin=PinSpec(board_id="1", media=ImageUrl(url="https://x/a.jpg"), title=f"t{i}"),
        scheduled_at=NOW,
        planned_at=NOW + timedelta(seconds=i),
        created_at=NOW,
        updated_at=NOW,
    )
    return job, Transition(from_state=None, to_state=JobState.PENDING, time=NOW, reason="new")


async def open_with_account(db_url: str, outbox: Outbox | None = None) -> Store:
    store = await Store.open(db_url, outbox=outbox)
    await store.create_account(Account(id="acme", access_token="t", created_at=NOW, updated_at=NOW))
    return store


async def test_the_store_runs_on_the_backend_the_fixture_chose(
    db_url: str, db_backend: str
) -> None:
    """`db_url` really selects the engine: a URL opens PostgreSQL, a path SQLite."""
    store = await Store.open(db_url)
    try:
        assert store.backend == db_backend
    finally:
        await store.close()


async def test_a_lost_compare_and_set_leaves_no_event_and_no_outbox_row(db_url: str) -> None:
    """When one change of a commit_many loses its CAS, neither its events nor the webhook rows
    of the change before it are committed (one transaction)."""
    store = await open_with_account(
        db_url, Outbox(lambda e: [OutboxRow("hook", f"m{e.sequence}", e.job_id, "job.x", "{}")])
    )
    try:
        jobs = [new_job(i) for i in range(2)]
        await store.create_jobs([j for j, _ in jobs], [e for _, e in jobs])
        seq = await store.last_sequence()
        rows = len(await store.webhook_list())
        (a, _), (b, _) = jobs
        stale_b = Job(**{**{f: getattr(b, f) for f in Job.__dataclass_fields__}, "version": 9})
        with pytest.raises(StaleJob):
            await store.commit_many(
                [
                    (a, *transition(a, JobState.QUEUED, now=NOW, reason="due")),
                    (stale_b, *transition(stale_b, JobState.QUEUED, now=NOW, reason="due")),
                ]
            )
        assert (await store.get_job(a.id)).state is JobState.PENDING
        assert await store.events_after(seq) == []
        assert len(await store.webhook_list()) == rows == 2
        # commit_each: the stale one fails alone, the good one commits with its outbox row.
        out = await store.commit_each(
            [
                (a, *transition(a, JobState.QUEUED, now=NOW, reason="due")),
                (stale_b, *transition(stale_b, JobState.QUEUED, now=NOW, reason="due")),
            ]
        )
        assert out[1] is None
        assert out[0] is not None
        assert [e.job_id for e in await store.events_after(seq)] == [a.id]
        assert len(await store.webhook_list()) == 3
        assert (await store.count_by_state())[JobState.QUEUED] == 1
    finally:
        await store.close()


async def test_a_large_batch_gets_one_event_per_job_in_order_with_its_webhook_rows(
    db_url: str,
) -> None:
    """1,203 new jobs in one call (event statements of 500, 500, 100, 100, 1, 1 and 1 rows):
    each job has exactly one event naming it, the sequences follow the jobs' order without a
    gap, the live events handed on after the commit are the same, and each event has its
    webhook row carrying its own sequence."""
    live: list[Event] = []
    store = await Store.open(
        db_url,
        on_events=live.extend,
        outbox=Outbox(lambda e: [OutboxRow("hook", f"m{e.sequence}", e.job_id, "job.x", "{}")]),
    )
    try:
        await store.create_account(
            Account(id="acme", access_token="t", created_at=NOW, updated_at=NOW)
        )
        n = 2 * EVENTS_PER_STATEMENT + 203
        jobs = [new_job(i) for i in range(n)]
        before = await store.last_sequence()
        results = await store.create_jobs([j for j, _ in jobs], [e for _, e in jobs])
        assert [job.id for job, created in results if created] == [j.id for j, _ in jobs]
        stored = await store.events_after(before, limit=n + 10)
        assert [(e.sequence, e.job_id) for e in stored] == [
            (before + 1 + i, j.id) for i, (j, _) in enumerate(jobs)
        ]
        assert all(e.transition.to_state is JobState.PENDING for e in stored)
        assert [(e.sequence, e.job_id) for e in live[-n:]] == [
            (e.sequence, e.job_id) for e in stored
        ]
        assert all(e.job is not None and e.job.id == e.job_id for e in live[-n:])
        rows = await store.webhook_list(limit=n + 10)
        assert sorted((d.event_seq, d.message_id) for d in rows) == [
            (e.sequence, f"m{e.sequence}") for e in stored
        ]
    finally:
        await store.close()


async def test_commit_each_answers_each_applied_change_with_its_own_event(db_url: str) -> None:
    """The applied changes' events are written together after the compare-and-sets: each
    answer carries the sequence of the event naming its job, a stale change in between gets
    None and no event."""
    store = await open_with_account(db_url)
    try:
        jobs = [new_job(i) for i in range(3)]
        await store.create_jobs([j for j, _ in jobs], [e for _, e in jobs])
        seq = await store.last_sequence()
        a, b, c = (j for j, _ in jobs)
        stale_b = Job(**{**{f: getattr(b, f) for f in Job.__dataclass_fields__}, "version": 9})
        out = await store.commit_each(
            [
                (j, *transition(j, JobState.QUEUED, now=NOW, reason=f"due {j.id}"))
                for j in (a, stale_b, c)
            ]
        )
        assert out[1] is None
        answered = [(r[1], r[0].id, r[0].state) for r in out if r is not None]
        stored = await store.events_after(seq)
        assert answered == [(e.sequence, e.job_id, JobState.QUEUED) for e in stored]
        assert [(e.job_id, e.transition.reason) for e in stored] == [
            (a.id, f"due {a.id}"),
            (c.id, f"due {c.id}"),
        ]
    finally:
        await store.close()


async def test_events_of_one_job_twice_in_a_chunk_are_written_one_by_one(db_url: str) -> None:
    """Sequences are matched back by job id; two events of one job in one call (not something
    create_jobs asks, but the helper allows it) still get their own sequences, in order."""
    store = await open_with_account(
        db_url, Outbox(lambda e: [OutboxRow("hook", f"m{e.sequence}", e.job_id, "job.x", "{}")])
    )
    try:
        job, entry = new_job(1)
        await store.create_jobs([job], [entry])
        note = Transition(from_state=None, to_state=JobState.PENDING, time=NOW, reason="note")

        async def op(db: Any, events: list[Event]) -> list[Event]:
            return await store._append_events(db, [(job, entry), (job, note)])

        first, second = await store._write(op)
        assert (first.job_id, second.job_id) == (job.id, job.id)
        assert second.sequence == first.sequence + 1
        assert (first.transition.reason, second.transition.reason) == ("new", "note")
        assert {d.event_seq for d in await store.webhook_list()} >= {
            first.sequence,
            second.sequence,
        }
    finally:
        await store.close()


async def test_pending_planned_is_the_pending_jobs_of_the_range_soonest_first(
    db_url: str,
) -> None:
    """`Store.pending_planned` (the at-risk pass's read): PENDING jobs planned in [lo, hi), in
    planned order, at most *limit*; jobs before or at the end of the range, and jobs in other
    states, are left out."""
    store = await open_with_account(db_url)
    try:
        jobs = [new_job(i) for i in range(12)]  # planned NOW + i s
        await store.create_jobs([j for j, _ in jobs], [e for _, e in jobs])
        queued = jobs[5][0]
        await store.commit(queued, *transition(queued, JobState.QUEUED, now=NOW, reason="due"))
        lo, hi = NOW + timedelta(seconds=3), NOW + timedelta(seconds=9)
        got = await store.pending_planned(lo, hi, 100)
        assert [j.id for j in got] == [jobs[i][0].id for i in (3, 4, 6, 7, 8)]
        assert [j.id for j in await store.pending_planned(lo, hi, 2)] == [
            jobs[3][0].id,
            jobs[4][0].id,
        ]
    finally:
        await store.close()


async def test_pending_planned_reads_one_range_of_the_due_index(
    db_url: str, db_backend: str
) -> None:
    """The query's plan on each engine is a search of `jobs_due`, never a scan of the jobs: a
    filter on `planned_at` scanned every pending job (4 s with 5M pending, every minute, while
    the read connection dispatch needs waited)."""
    store = await open_with_account(db_url)
    await store.close()
    args = (1, 2, 10)
    if db_backend == "sqlite":
        db = sqlite3.connect(db_url)
        try:
            plan = " ".join(
                str(r[-1]) for r in db.execute("EXPLAIN QUERY PLAN " + PENDING_PLANNED_SQL, args)
            )
        finally:
            db.close()
        assert "USING INDEX jobs_due" in plan, plan
        assert "SCAN" not in plan, plan
        return
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("SET enable_seqscan = off")  # an empty table: make the index count
        rows = await conn.fetch("EXPLAIN " + numbered(PENDING_PLANNED_SQL), *args)
    finally:
        await conn.close()
    plan = " ".join(r[0] for r in rows)
    assert "jobs_due" in plan, plan


async def test_a_constraint_violation_is_an_integrity_error_on_both(db_url: str) -> None:
    """A second job claiming a Pinterest pin id raises sqlite3.IntegrityError on either backend
    (the dispatcher relies on it), and a duplicate account is AlreadyExists."""
    store = await open_with_account(db_url)
    try:
        jobs = [new_job(i) for i in range(2)]
        await store.create_jobs([j for j, _ in jobs], [e for _, e in jobs])
        (a, _), (b, _) = jobs
        await store.commit(
            a, *transition(a, JobState.QUEUED, now=NOW, reason="x", pinterest_pin_id="p1")
        )
        with pytest.raises(sqlite3.IntegrityError):
            await store.commit(
                b, *transition(b, JobState.QUEUED, now=NOW, reason="x", pinterest_pin_id="p1")
            )
        with pytest.raises(Exception, match="already exists"):
            await open_with_account_again(store)
        assert (await store.get_job(b.id)).version == 1
    finally:
        await store.close()


async def open_with_account_again(store: Store) -> None:
    await store.create_account(Account(id="acme", access_token="t", created_at=NOW, updated_at=NOW))


async def test_sequences_never_go_back_after_pruning(db_url: str) -> None:
    """last_sequence counts pruned events too, on both backends."""
    store = await open_with_account(db_url)
    try:
        job, entry = new_job(1)
        await store.create_jobs([job], [entry])
        _, seq = await store.commit(job, *transition(job, JobState.CANCELLED, now=NOW, reason="x"))
        pruned = await store.prune(NOW + timedelta(days=1))
        assert pruned.jobs == 1
        assert pruned.events == 2
        assert await store.last_sequence() == seq
        assert await store.events_after(0) == []
    finally:
        await store.close()


def test_both_schemas_end_at_the_same_version() -> None:
    """A SQLite migration without its PostgreSQL twin is caught here, not in production."""
    assert PG_BASE + len(PG_MIGRATIONS) - 1 == len(MIGRATIONS)


def test_placeholders_are_numbered_outside_quotes() -> None:
    """`?` becomes `$n` in order; a `?` inside a quoted literal stays."""
    assert numbered("SELECT ? , '?' , x = ?") == "SELECT $1 , '?' , x = $2"


@pytest.mark.sqlite_only
async def test_sqlite_and_postgresql_schemas_have_the_same_columns(
    db_url: str, pg_cluster: Cluster
) -> None:
    """Every table has the same columns, in the same order, on both engines."""
    sqlite_store = await Store.open(db_url)
    await sqlite_store.close()
    with sqlite3.connect(db_url) as db:
        tables = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        lite = {t: [r[1] for r in db.execute(f"PRAGMA table_xinfo({t})")] for t in tables}
    name = pg_cluster.create_database()
    try:
        pg = await Store.open(pg_cluster.url(name))
        await pg.close()
        conn = await asyncpg.connect(pg_cluster.url(name))
        try:
            rows = await conn.fetch(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name <> 'pinsched_schema' "
                "ORDER BY table_name, ordinal_position"
            )
        finally:
            await conn.close()
    finally:
        pg_cluster.drop_database(name)
    post: dict[str, list[str]] = {}
    for r in rows:
        post.setdefault(r["table_name"], []).append(r["column_name"])
    assert post == lite


async def test_stores_opened_together_share_one_postgresql_database_migrated_once(
    pg_cluster: Cluster,
) -> None:
    """Three stores opened at the same moment on one fresh PostgreSQL database all open (the
    migration lock lets one migrate, the others wait), the schema is recorded once, and a job
    one of them writes is read by the others."""
    name = pg_cluster.create_database()
    url = pg_cluster.url(name)
    stores: list[Store] = []
    try:
        stores = list(await asyncio.gather(*(Store.open(url, cluster=True) for _ in range(3))))
        await stores[0].create_account(
            Account(id="acme", access_token="t", created_at=NOW, updated_at=NOW)
        )
        job, entry = new_job(1)
        await stores[1].create_jobs([job], [entry])
        assert (await stores[2].get_job(job.id)).pin.title == "t1"
        versions = await stores[0]._reader.execute_fetchall("SELECT version FROM pinsched_schema")
        assert [int(r[0]) for r in versions] == [len(MIGRATIONS)]
        held = await stores[0]._reader.execute_fetchall(
            "SELECT objid, mode FROM pg_locks WHERE locktype = 'advisory' ORDER BY objid"
        )
        # the migration lock is not kept; the database lock is held shared by all three
        assert [(int(r[0]), str(r[1])) for r in held] == [(postgres.LOCK_KEY, "ShareLock")] * 3
    finally:
        for store in stores:
            await store.close()
        pg_cluster.drop_database(name)


async def test_a_daemon_alone_and_a_cluster_refuse_each_other(pg_cluster: Cluster) -> None:
    """Without `cluster` a daemon holds its PostgreSQL database alone: a second one is refused,
    and so is a cluster daemon; a cluster daemon's shared hold refuses one that runs alone. Each
    refusal is one line naming db_path and what to do."""
    name = pg_cluster.create_database()
    url = pg_cluster.url(name)
    try:
        alone = await Store.open(url)
        try:
            with pytest.raises(StoreOpenError) as second:
                await Store.open(url)
            assert "in use by another pinsched" in str(second.value)
            assert "--cluster" in str(second.value)
            with pytest.raises(StoreOpenError, match="runs alone, without --cluster"):
                await Store.open(url, cluster=True)
        finally:
            await alone.close()
        member = await Store.open(url, cluster=True)
        try:
            with pytest.raises(StoreOpenError, match="in use by another pinsched"):
                await Store.open(url)
        finally:
            await member.close()
        again = await Store.open(url)  # every hold ended with its connection
        await again.close()
    finally:
        pg_cluster.drop_database(name)


async def test_an_unreachable_postgresql_is_one_line_without_the_password(
    pg_cluster: Cluster,
) -> None:
    """A database that does not exist is refused with one line naming db_path, password hidden."""
    url = pg_cluster.url("missing_db").replace("postgres@", "postgres:hunter2@")
    with pytest.raises(StoreOpenError) as refused:
        await Store.open(url)
    text = str(refused.value)
    assert text.startswith("db_path postgresql://postgres:***@127.0.0.1")
    assert "hunter2" not in text
    assert "\n" not in text
    assert "missing_db" in text


async def test_a_newer_postgresql_schema_is_refused(pg_cluster: Cluster) -> None:
    """A PostgreSQL database written by a newer pinsched is refused rather than misread."""
    name = pg_cluster.create_database()
    url = pg_cluster.url(name)
    try:
        run_sql(
            url,
            "CREATE TABLE pinsched_schema (version INTEGER NOT NULL)",
            f"INSERT INTO pinsched_schema VALUES ({len(MIGRATIONS) + 1})",
        )
        with pytest.raises(StoreOpenError, match="newer than this pinsched"):
            await Store.open(url)
    finally:
        pg_cluster.drop_database(name)


async def test_a_lost_postgresql_connection_fails_one_write_and_the_next_reconnects(
    pg_cluster: Cluster,
) -> None:
    """When the server ends the writer's connection, the write it hit raises
    StorageUnavailable (nothing of it written); the next write reconnects and commits."""
    name = pg_cluster.create_database()
    url = pg_cluster.url(name)
    store = await open_with_account(url)
    try:
        writer_pid = store._db._writer.get_server_pid()  # type: ignore[attr-defined]
        run_sql(pg_cluster.url("postgres"), f"SELECT pg_terminate_backend({writer_pid})")
        job, entry = new_job(1)
        with pytest.raises(StorageUnavailable, match="nothing of this change was written"):
            await store.create_jobs([job], [entry])
        await store.create_jobs([job], [entry])
        assert [j.id for j in await store.list_jobs(JobFilter())] == [job.id]
    finally:
        await store.close()
        pg_cluster.drop_database(name)


async def test_last_sequence_counts_only_committed_events_on_postgresql(
    pg_cluster: Cluster,
) -> None:
    """While a write holds event sequences it has not committed, last_sequence still says the
    committed one (a watcher starting there would otherwise skip those events); after the
    commit it moves."""
    import asyncio

    from pinsched.store.driver import Tx
    from pinsched.store.eventlog import _append_event

    name = pg_cluster.create_database()
    store = await open_with_account(pg_cluster.url(name))
    try:
        job, entry = new_job(1)
        await store.create_jobs([job], [entry])
        committed = await store.last_sequence()
        inside, release = asyncio.Event(), asyncio.Event()

        async def slow(db: Tx, events: list[Any]) -> None:
            events.append(await _append_event(db, job, entry))  # takes a sequence
            inside.set()
            await release.wait()

        writing = asyncio.create_task(store._write(slow))
        await inside.wait()
        try:
            seen = await store.last_sequence()
        finally:
            release.set()
        await writing
        assert seen == committed
        assert await store.last_sequence() == committed + 1
    finally:
        await store.close()
        pg_cluster.drop_database(name)
