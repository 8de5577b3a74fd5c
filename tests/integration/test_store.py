"""The store on a real database (SQLite file and PostgreSQL, `db_url`): group commit,
compare-and-set, event log, migrations."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pinsched.core.accounts import Account
from pinsched.core.errors import AccountNotFound, AlreadyExists
from pinsched.core.jobs import ImageUrl, Job, JobState, PinSpec, Transition, touch, transition
from pinsched.store import MIGRATIONS, Event, StaleJob, Store

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def make_job(i: int, *, request_id: str = "", account: str = "acme") -> tuple[Job, Transition]:
    job = Job(
        id=f"job{i:06d}",
        account_id=account,
        state=JobState.PENDING,
        pin=PinSpec(board_id="1", media=ImageUrl(url="https://x/a.jpg"), title=f"t{i}"),
        scheduled_at=NOW,
        planned_at=NOW + timedelta(seconds=i),
        request_id=request_id,
        request_hash=f"h{i}",
        created_at=NOW,
        updated_at=NOW,
    )
    return job, Transition(from_state=None, to_state=JobState.PENDING, time=NOW, reason="scheduled")


def batch(*made: tuple[Job, Transition]) -> tuple[list[Job], list[Transition]]:
    """`make_job` results as `create_jobs` takes them: the jobs, then their transitions."""
    return [job for job, _ in made], [t for _, t in made]


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url)
    await s.create_account(Account(id="acme", access_token="tok", created_at=NOW, updated_at=NOW))
    yield s
    await s.close()


async def test_concurrent_writes_share_transactions(store: Store) -> None:
    """500 concurrent inserts commit in far fewer transactions than writes (group commit)."""
    before = store.batches
    await asyncio.gather(*(store.create_jobs(*batch(make_job(i))) for i in range(500)))
    assert store.writes >= 500
    assert store.batches - before < 100
    assert len(await store.due_index()) == 500


async def test_one_failing_write_does_not_undo_its_batch_neighbours(store: Store) -> None:
    """A write that fails (unknown account) fails alone; the writes sharing its transaction
    commit."""
    good = [store.create_jobs([make_job(i)[0]], [make_job(i)[1]]) for i in range(20)]
    bad = store.create_jobs([make_job(99, account="ghost")[0]], [make_job(99)[1]])
    results = await asyncio.gather(*good, bad, return_exceptions=True)
    assert isinstance(results[-1], AccountNotFound)
    assert len(await store.due_index()) == 20


async def test_compare_and_set_refuses_a_stale_version(store: Store) -> None:
    """A transition from an old version raises StaleJob and leaves the row and the log as
    they were."""
    job, entry = make_job(1)
    await store.create_jobs([job], [entry])
    _, seq = await store.commit(job, *transition(job, JobState.QUEUED, now=NOW, reason="due"))
    with pytest.raises(StaleJob):
        await store.commit(job, *touch(job, now=NOW, reason="late update", attempts=5))
    stored = await store.get_job(job.id, with_history=True)
    assert stored.state is JobState.QUEUED
    assert stored.version == 2
    assert [t.sequence for t in stored.history] == [seq - 1, seq]
    assert await store.last_sequence() == seq


async def test_request_id_is_unique_and_content_checked(store: Store) -> None:
    """The same request_id returns the stored job for equal content and is refused otherwise."""
    job, entry = make_job(1, request_id="r1")
    [(first, created)] = await store.create_jobs([job], [entry])
    assert created
    retry = Job(**{**{f: getattr(job, f) for f in Job.__dataclass_fields__}, "id": "job-retry"})
    [(again, created)] = await store.create_jobs([retry], [entry])
    assert not created
    assert again.id == first.id
    other = Job(
        **{
            **{f: getattr(job, f) for f in Job.__dataclass_fields__},
            "id": "job-other",
            "request_hash": "different",
        }
    )
    with pytest.raises(AlreadyExists, match="different content"):
        await store.create_jobs([other], [entry])
    assert [job_id for job_id, _ in await store.due_index()] == [first.id]


async def test_events_are_handed_over_in_sequence_order_after_commit(db_url: str) -> None:
    """Committed events reach the sink once, in sequence order, and equal the durable log."""
    seen: list[Event] = []
    store = await Store.open(db_url, on_events=seen.extend)
    await store.create_account(Account(id="acme", access_token="t", created_at=NOW, updated_at=NOW))
    await asyncio.gather(
        *(store.create_jobs([make_job(i)[0]], [make_job(i)[1]]) for i in range(50))
    )
    logged = await store.events_after(0, limit=1000)
    assert [e.sequence for e in seen] == [e.sequence for e in logged]
    assert [e.sequence for e in seen] == sorted(e.sequence for e in seen)
    await store.close()


async def test_reopening_keeps_everything_and_schema_is_current(tmp_path: Path) -> None:
    """A reopened database has every job and the newest schema version."""
    store = await Store.open(tmp_path / "r.db")
    await store.create_account(Account(id="acme", access_token="t", created_at=NOW, updated_at=NOW))
    await store.create_jobs(*batch(*(make_job(i) for i in range(10))))
    await store.close()
    reopened = await Store.open(tmp_path / "r.db")
    assert len(await reopened.due_index()) == 10
    await reopened.close()
    with sqlite3.connect(tmp_path / "r.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database written by a newer pinsched is refused rather than misread."""
    with sqlite3.connect(tmp_path / "n.db") as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        await Store.open(tmp_path / "n.db")


async def test_a_pin_id_belongs_to_one_job_only(store: Store) -> None:
    """Two jobs can never hold the same Pinterest pin id (reconciliation cannot double-claim)."""
    jobs = [make_job(i) for i in range(2)]
    await store.create_jobs([j for j, _ in jobs], [e for _, e in jobs])
    a, b = jobs[0][0], jobs[1][0]
    await store.commit(a, *touch(a, now=NOW, reason="x", pinterest_pin_id="555"))
    with pytest.raises(sqlite3.IntegrityError):
        await store.commit(b, *touch(b, now=NOW, reason="x", pinterest_pin_id="555"))
    assert (await store.get_job(a.id)).pinterest_pin_id == "555"
    assert not (await store.get_job(b.id)).pinterest_pin_id


async def test_a_batch_looks_up_request_ids_once_and_keeps_repeats_idempotent(store: Store) -> None:
    """In one 1,200-job batch (over two 500-id lookups): ids stored before come back uncreated,
    a repeat inside the batch returns the batch's own job, other content is refused by item."""
    earlier = [make_job(i, request_id=f"r{i}") for i in range(0, 1200, 100)]
    await store.create_jobs([j for j, _ in earlier], [e for _, e in earlier])
    batch = [make_job(i, request_id=f"r{i}") for i in range(1200)]
    batch.append(make_job(7, request_id="r7"))  # the same request again, later in the batch
    jobs = [
        Job(**{**{f: getattr(j, f) for f in Job.__dataclass_fields__}, "id": f"new{i:06d}"})
        for i, (j, _) in enumerate(batch)
    ]
    results = await store.create_jobs(jobs, [e for _, e in batch])
    created = [c for _, c in results]
    assert created.count(False) == len(earlier) + 1
    assert [job.id for job, c in results if not c][:2] == [earlier[0][0].id, earlier[1][0].id]
    assert results[-1][0].id == results[7][0].id == "new000007"
    assert len(await store.due_index()) == 1200
    clash = Job(
        **{
            **{f: getattr(jobs[3], f) for f in Job.__dataclass_fields__},
            "id": "clash",
            "request_hash": "other",
        }
    )
    with pytest.raises(AlreadyExists, match=r"requests\[1\]\.request_id 'r3'"):
        await store.create_jobs([make_job(5000)[0], clash], [make_job(5000)[1]] * 2)
    assert len(await store.due_index()) == 1200
