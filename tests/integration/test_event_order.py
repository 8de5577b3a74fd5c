"""The event log read by position on PostgreSQL, with several writers: two transactions that
commit out of their sequence order would let a reader that read up to N miss N-1 for ever.
Write transactions take their sequences in commit order, so nothing is skipped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from pinsched.core import notes
from pinsched.core.accounts import Account
from pinsched.core.errors import StorageUnavailable
from pinsched.core.jobs import ImageUrl, Job, JobState, PinSpec, Transition
from pinsched.store import Event, Store, postgres
from pinsched.store.driver import Tx
from pinsched.store.eventlog import _append_event

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def two(
    db_backend: str, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Store, Store, Job]]:
    """Two stores (two daemons' writers) on one PostgreSQL database, and a job."""
    if db_backend != "postgresql":
        pytest.skip("several writers share a PostgreSQL database only")
    monkeypatch.setattr(postgres, "LOCK_KEY", 0x0E0E0001, raising=False)
    a = await Store.open(db_url)
    monkeypatch.setattr(postgres, "LOCK_KEY", 0x0E0E0002, raising=False)
    b = await Store.open(db_url)
    await a.create_account(Account(id="acme", access_token="t", created_at=NOW, updated_at=NOW))
    job = Job(
        id="job1",
        account_id="acme",
        state=JobState.PENDING,
        pin=PinSpec(board_id="1", media=ImageUrl(url="https://x/a.jpg"), title="t"),
        scheduled_at=NOW,
        planned_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )
    entry = Transition(from_state=None, to_state=JobState.PENDING, time=NOW, reason="new")
    [(job, _)] = await a.create_jobs([job], [entry])
    try:
        yield a, b, job
    finally:
        await b.close()
        await a.close()


async def waits_for_a_lock(store: Store) -> bool:
    """Whether a session of the database is waiting for an advisory lock."""
    rows = await store._reader.execute_fetchall(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
    )
    return int(next(iter(rows))[0]) > 0


async def test_a_reader_by_position_never_misses_an_event_committed_late(
    two: tuple[Store, Store, Job],
) -> None:
    """A's transaction takes a sequence, then B's transaction writes an event while A's is still
    open; a reader reads the log, A commits, the reader reads on from where it was: it has seen
    every event (B waited for A, instead of committing a later sequence first)."""
    a, b, job = two
    start = await a.last_sequence()
    inserted, release = asyncio.Event(), asyncio.Event()
    note = notes.at_risk(job, NOW, "first")

    async def slow(db: Tx, events: list[Event]) -> int:
        event = await _append_event(db, job, note)
        events.append(event)
        inserted.set()
        await release.wait()  # A's transaction stays open, its sequence taken
        return event.sequence

    a_write = asyncio.create_task(a._write(slow))
    await inserted.wait()
    b_write = asyncio.create_task(b.append_note(job, notes.at_risk(job, NOW, "second")))
    async with asyncio.timeout(10):  # B committed (the old behaviour) or waits for A
        while not b_write.done() and not await waits_for_a_lock(a):
            await asyncio.wait([b_write], timeout=0.01)
    seen = await a.events_after(start)
    position = seen[-1].sequence if seen else start
    release.set()
    sequences = {await a_write, await b_write}
    seen += await a.events_after(position)
    assert {e.sequence for e in seen} == sequences
    assert [e.transition.reason for e in seen] == [note.reason, "at risk: second"]


async def test_a_paused_writer_holds_the_others_for_at_most_the_hold_time(
    two: tuple[Store, Store, Job], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A's transaction stops mid-way (its daemon paused) holding the commit order: the server
    ends A's session after `HOLD_MS`, B's write then commits, and A's write commits nothing."""
    a, b, job = two
    monkeypatch.setattr(postgres, "HOLD_MS", 200)
    start = await a.last_sequence()
    inserted, release = asyncio.Event(), asyncio.Event()

    async def paused(db: Tx, events: list[Event]) -> int:
        event = await _append_event(db, job, notes.at_risk(job, NOW, "paused"))
        events.append(event)
        inserted.set()
        await release.wait()
        await db.execute("SELECT 1")  # resumed: its session is gone
        return event.sequence

    a_write = asyncio.create_task(a._write(paused))
    await inserted.wait()
    async with asyncio.timeout(10):
        sequence = await b.append_note(job, notes.at_risk(job, NOW, "b"))
    release.set()
    with pytest.raises(StorageUnavailable):
        await a_write
    assert [e.sequence for e in await b.events_after(start)] == [sequence]
