"""The pin is encoded and written once: a state change that keeps the job's pin leaves the `pin`
column out of its compare-and-set, and a change of the pin is still written (both backends).

A trigger on `UPDATE OF pin` (it fires whenever the column is in an UPDATE's SET list, changed or
not) counts the writes of the column."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import timedelta

import asyncpg

from pinsched.core.jobs import ImageBase64, ImageUrl, JobState, PinSpec, touch, transition
from pinsched.store import JobFilter
from tests.backends import run_sql
from tests.integration.test_store_backends import NOW, new_job, open_with_account

S = JobState

_SQLITE_COUNTER = (
    "CREATE TABLE pin_writes (job_id TEXT NOT NULL)",
    "CREATE TRIGGER count_pin_writes AFTER UPDATE OF pin ON jobs BEGIN "
    "INSERT INTO pin_writes VALUES (new.id); END",
)
_PG_COUNTER = (
    "CREATE TABLE pin_writes (job_id TEXT NOT NULL)",
    "CREATE FUNCTION count_pin_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO pin_writes VALUES (NEW.id); RETURN NULL; END $$",
    "CREATE TRIGGER count_pin_writes AFTER UPDATE OF pin ON jobs "
    "FOR EACH ROW EXECUTE FUNCTION count_pin_write()",
)


def count_pin_writes(db_url: str, backend: str) -> None:
    """Install the counter of `pin` column writes on the store's database."""
    if backend == "sqlite":
        with sqlite3.connect(db_url) as conn:
            for statement in _SQLITE_COUNTER:
                conn.execute(statement)
    else:
        run_sql(db_url, *_PG_COUNTER)


async def pin_writes(db_url: str, backend: str) -> int:
    """How many times the `pin` column was written since the counter was installed."""
    if backend == "sqlite":
        with sqlite3.connect(db_url) as conn:
            return int(conn.execute("SELECT count(*) FROM pin_writes").fetchone()[0])
    conn = await asyncpg.connect(db_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM pin_writes"))
    finally:
        await conn.close()


async def test_a_state_change_keeps_the_stored_pin_without_writing_it(
    db_url: str, db_backend: str
) -> None:
    """QUEUED → SUBMITTED → DELIVERED with the same pin object writes the `pin` column zero
    times, and the job read back still has its pin; a new pin is written once and read back."""
    store = await open_with_account(db_url)
    try:
        job, entry = new_job(1)
        ((job, _),) = await store.create_jobs([job], [entry])
        count_pin_writes(db_url, db_backend)
        for to in (S.QUEUED, S.SUBMITTED):
            new, step = transition(job, to, now=NOW, reason=to.value, attempts=job.attempts + 1)
            assert new.pin is job.pin
            job, _ = await store.commit(job, new, step)
        new, step = transition(job, S.DELIVERED, now=NOW, reason="published", pinterest_pin_id="9")
        job, _ = await store.commit(job, new, step)
        assert await pin_writes(db_url, db_backend) == 0
        stored = await store.get_job(job.id)
        assert (stored.state, stored.pin, stored.attempts) == (S.DELIVERED, job.pin, 2)

        other, _ = new_job(2)
        ((other, _),) = await store.create_jobs([other], [new_job(2)[1]])
        changed_pin = PinSpec(board_id="77", media=ImageUrl(url="https://x/b.jpg"), title="new")
        new, step = touch(other, now=NOW, reason="updated", pin=changed_pin)
        await store.commit(other, new, step)
        assert await pin_writes(db_url, db_backend) == 1
        stored = await store.get_job(other.id)
        assert stored.pin == changed_pin
        assert [j.id for j in await store.list_jobs(JobFilter(board_id="77"))] == [other.id]
    finally:
        await store.close()


async def test_an_inline_image_stays_readable_across_state_changes(db_url: str) -> None:
    """A job whose pin carries image bytes keeps them through state changes that do not write
    the pin (the media row is written once, with the job)."""
    store = await open_with_account(db_url)
    try:
        job, entry = new_job(3)
        image = ImageBase64(content_type="image/png", data=b"\x89PNG" + b"x" * 64)
        job = dataclasses.replace(job, pin=dataclasses.replace(job.pin, media=image))
        ((job, _),) = await store.create_jobs([job], [entry])
        for to in (S.QUEUED, S.SUBMITTED, S.RETRYING):
            extra = {"next_attempt_at": NOW + timedelta(minutes=1)} if to is S.RETRYING else {}
            new, step = transition(job, to, now=NOW, reason=to.value, **extra)
            job, _ = await store.commit(job, new, step)
        loaded = await store.load_pin((await store.get_job(job.id)).pin)
        assert isinstance(loaded.media, ImageBase64)
        assert loaded.media.data == image.data
    finally:
        await store.close()
