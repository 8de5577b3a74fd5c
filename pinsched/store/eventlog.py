"""Appending to the event log: one event (`INSERT … RETURNING seq`) or many in a few multi-row
statements of fixed sizes (a batch of new jobs, the scheduler's queued jobs). Used only by the
store's transactions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from pinsched.core.jobs import Job, Transition, job_reference
from pinsched.store import codec
from pinsched.store.driver import Tx
from pinsched.store.rows import Event

_EVENT_INSERT: Final = (
    "INSERT INTO events (job_id, account_id, from_state, to_state, time, reason, attempt, "
    "error) VALUES "
)
_EVENT_VALUES: Final = "(?,?,?,?,?,?,?,?)"
#: Events per multi-row INSERT: 8 values each stays far below the bind limits of SQLite
#: (32,766) and PostgreSQL (32,767).
EVENTS_PER_STATEMENT: Final = 500
#: The statement sizes a run of events is cut into (largest first): a handful of distinct SQL
#: texts, so that the statement caches (sqlite3's, asyncpg's) keep them whatever the count.
_CHUNKS: Final = (EVENTS_PER_STATEMENT, 100, 20, 5, 1)


def _chunks(n: int) -> list[tuple[int, int]]:
    """(start, size) of the statements for *n* events, sizes from `_CHUNKS`."""
    out, start = [], 0
    for size in _CHUNKS:
        while n - start >= size:
            out.append((start, size))
            start += size
    return out


def _event_values(job: Job, entry: Transition) -> tuple[Any, ...]:
    return (
        job.id,
        job.account_id,
        entry.from_state.value if entry.from_state else None,
        entry.to_state.value,
        codec.to_us(entry.time),
        entry.reason,
        entry.attempt,
        json.dumps(entry.error.to_dict()) if entry.error else None,
    )


async def _append_event(db: Tx, job: Job, entry: Transition) -> Event:
    row = await db.fetchone(
        _EVENT_INSERT + _EVENT_VALUES + " RETURNING seq", _event_values(job, entry)
    )
    seq = int(row[0]) if row else 0
    return Event(seq, job.id, job.account_id, _with_seq(entry, seq), job_reference(job))


async def _append_events(db: Tx, items: Sequence[tuple[Job, Transition]]) -> list[Event]:
    """One event per (job, entry) of *items*, up to `EVENTS_PER_STATEMENT` rows per INSERT (a
    batch of new jobs: a few statements, not one per job); the events in *items*' order. Each
    statement answers (seq, job id) pairs, matched back by job id: a chunk naming a job twice
    is written a row at a time instead."""
    out: list[Event] = []
    for start, size in _chunks(len(items)):
        chunk = items[start : start + size]
        if len({job.id for job, _ in chunk}) < len(chunk):
            out.extend([await _append_event(db, job, entry) for job, entry in chunk])
            continue
        rows = await db.fetchall(
            _EVENT_INSERT + ",".join([_EVENT_VALUES] * len(chunk)) + " RETURNING seq, job_id",
            [value for job, entry in chunk for value in _event_values(job, entry)],
        )
        seqs = {str(r[1]): int(r[0]) for r in rows}
        for job, entry in chunk:
            seq = seqs[job.id]
            out.append(
                Event(seq, job.id, job.account_id, _with_seq(entry, seq), job_reference(job))
            )
    return out


def _with_seq(entry: Transition, seq: int) -> Transition:
    return Transition(
        from_state=entry.from_state,
        to_state=entry.to_state,
        time=entry.time,
        reason=entry.reason,
        attempt=entry.attempt,
        error=entry.error,
        sequence=seq,
    )
