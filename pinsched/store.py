"""SQLite persistence: the only module that speaks SQL. The store is the truth; heaps are indexes.

* WAL journal, `synchronous=FULL`: a change is on disk before it is acknowledged or acted on.
* Writes go through one writer task that **group-commits**: every write queued while the previous
  transaction was being committed shares the next transaction (one fsync), each inside its own
  SAVEPOINT so one failing write never undoes another. The batch runs on the aiosqlite thread in a
  single hop (`Connection._execute`), so a batch of N writes costs one thread round trip.
* Job changes are compare-and-set on `version`; each appends its row to the event log in the same
  transaction. After the commit, the committed events are handed to `on_events` in sequence order.
* Reads use a second connection (WAL readers never block the writer).
* Schema versions live in `PRAGMA user_version`; `MIGRATIONS[i]` upgrades from version i.

It does not decide anything: which transition is legal is `jobs.py`'s business.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import aiosqlite

from pinsched import codec
from pinsched.accounts import Account, Pacing
from pinsched.errors import (
    AccountNotFound,
    AlreadyExists,
    FailedPrecondition,
    JobNotFound,
    ShuttingDown,
    VersionMismatch,
)
from pinsched.jobs import (
    ACTIVE_STATES,
    Job,
    JobError,
    JobState,
    ScheduleSpec,
    Transition,
)

T = TypeVar("T")

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
)

_JOB_COLUMNS: Final = (
    "id, account_id, state, board_id, pin, scheduled_at, window_us, planned_at, local_time, "
    "request_id, request_hash, attempts, next_attempt_at, pinterest_pin_id, last_error, version, "
    "created_at, updated_at, submitted_at, delivered_at, late_by_us, cancel_requested"
)
_ACTIVE_SQL: Final = ", ".join(f"'{s.value}'" for s in sorted(ACTIVE_STATES))


@dataclass(frozen=True, slots=True)
class Event:
    """A committed event-log row (plus, for live events, the job right after it)."""

    sequence: int
    job_id: str
    account_id: str
    transition: Transition
    job: Job | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobFilter:
    account_id: str = ""
    states: frozenset[JobState] = frozenset()
    board_id: str = ""
    planned_after: datetime | None = None
    planned_before: datetime | None = None


class StaleJob(Exception):
    """A compare-and-set lost: the job changed since it was read. Re-read and decide again."""


class Store:
    """Async facade over one SQLite file."""

    def __init__(
        self,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        on_events: Callable[[Sequence[Event]], None] | None,
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._on_events = on_events or (lambda _: None)
        self._queue: list[tuple[Callable[[sqlite3.Connection, list[Event]], Any],
                                asyncio.Future[Any]]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._write_loop(), name="store-writer")
        self.batches = 0  # group-commit statistics (transactions committed)
        self.writes = 0  # writes committed

    @classmethod
    async def open(
        cls, path: str | Path, *, on_events: Callable[[Sequence[Event]], None] | None = None
    ) -> Store:
        """Open (creating and migrating if needed) the database at *path*."""
        writer = await aiosqlite.connect(str(path), isolation_level=None)
        await writer.execute("PRAGMA journal_mode=WAL")
        await writer.execute("PRAGMA synchronous=FULL")
        await writer.execute("PRAGMA foreign_keys=ON")
        await writer.execute("PRAGMA busy_timeout=5000")
        await _migrate(writer)
        reader = await aiosqlite.connect(str(path), isolation_level=None)
        await reader.execute("PRAGMA busy_timeout=5000")
        await reader.execute("PRAGMA query_only=ON")
        return cls(writer, reader, on_events)

    def set_event_sink(self, on_events: Callable[[Sequence[Event]], None]) -> None:
        self._on_events = on_events

    async def close(self) -> None:
        """Commit what is queued, then close both connections."""
        self._closing = True
        self._wake.set()
        await self._task
        await self._reader.close()
        await self._writer.close()

    # ---------------------------------------------------------------- group commit

    async def _write(self, fn: Callable[[sqlite3.Connection, list[Event]], T]) -> T:
        if self._closing:
            raise ShuttingDown()
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((fn, fut))
        self._wake.set()
        return await fut

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._queue:
                if self._closing:
                    return
                continue
            batch, self._queue = self._queue[:4096], self._queue[4096:]
            if self._queue:
                self._wake.set()
            try:
                results = await self._writer._execute(_run_batch, self._writer._conn, batch)
            except Exception as exc:  # the transaction itself failed (disk full, I/O error)
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.batches += 1
            self.writes += len(batch)
            committed: list[Event] = []
            for (_, fut), (ok, value, events) in zip(batch, results, strict=True):
                if ok:
                    committed.extend(events)
                    if not fut.done():
                        fut.set_result(value)
                elif not fut.done():
                    fut.set_exception(value)
            if committed:
                self._on_events(committed)

    # ---------------------------------------------------------------- accounts

    async def create_account(self, account: Account) -> Account:
        def op(db: sqlite3.Connection, _: list[Event]) -> Account:
            try:
                db.execute(
                    "INSERT INTO accounts (id, display_name, access_token, refresh_token, "
                    "access_expires_at, pacing, paused, needs_reauth, state_reason, version, "
                    "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    _account_row(account),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"account {account.id!r} already exists") from None
            return account

        return await self._write(op)

    async def get_account(self, account_id: str) -> Account:
        rows = await self._reader.execute_fetchall(
            "SELECT * FROM accounts WHERE id = ?", (account_id,)
        )
        if not rows:
            raise AccountNotFound(account_id)
        return _account_from_row(tuple(next(iter(rows))))

    async def list_accounts(self, *, after_id: str = "", limit: int = 100) -> list[Account]:
        rows = await self._reader.execute_fetchall(
            "SELECT * FROM accounts WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        )
        return [_account_from_row(tuple(r)) for r in rows]

    async def update_account(self, old: Account, new: Account) -> Account:
        """Compare-and-set *old* → *new* (new.version must be old.version + 1)."""

        def op(db: sqlite3.Connection, _: list[Event]) -> Account:
            row = _account_row(new)
            cur = db.execute(
                "UPDATE accounts SET display_name=?, access_token=?, refresh_token=?, "
                "access_expires_at=?, pacing=?, paused=?, needs_reauth=?, state_reason=?, "
                "version=?, updated_at=? WHERE id=? AND version=?",
                (*row[1:10], row[11], new.id, old.version),
            )
            if cur.rowcount == 0:
                current = db.execute(
                    "SELECT version FROM accounts WHERE id=?", (old.id,)
                ).fetchone()
                if current is None:
                    raise AccountNotFound(old.id)
                raise VersionMismatch(old.id, old.version, int(current[0]))
            return new

        return await self._write(op)

    async def delete_account(self, account_id: str) -> None:
        """Delete an account with no active jobs (its settled jobs and their events go too)."""

        def op(db: sqlite3.Connection, _: list[Event]) -> None:
            if db.execute("SELECT 1 FROM accounts WHERE id=?", (account_id,)).fetchone() is None:
                raise AccountNotFound(account_id)
            active = db.execute(
                f"SELECT count(*) FROM jobs WHERE account_id=? AND state IN ({_ACTIVE_SQL})",
                (account_id,),
            ).fetchone()[0]
            if active:
                raise FailedPrecondition(
                    f"account {account_id!r} has {active} active jobs; cancel them or delete "
                    "with force"
                )
            db.execute("DELETE FROM jobs WHERE account_id=?", (account_id,))
            db.execute("DELETE FROM accounts WHERE id=?", (account_id,))

        await self._write(op)

    # ---------------------------------------------------------------- jobs: writes

    async def create_jobs(
        self, jobs: Sequence[Job], transitions: Sequence[Transition]
    ) -> list[tuple[Job, bool]]:
        """Insert *jobs* atomically (all or none); return each job with `created=True`, or the
        existing job with `created=False` when its `request_id` was seen with the same content.

        Raises AlreadyExists (naming the item) when a `request_id` was used with other content,
        AccountNotFound when an account does not exist.
        """

        def op(db: sqlite3.Connection, events: list[Event]) -> list[tuple[Job, bool]]:
            out: list[tuple[Job, bool]] = []
            accounts_seen: set[str] = set()
            for index, (job, entry) in enumerate(zip(jobs, transitions, strict=True)):
                if job.account_id not in accounts_seen:
                    if db.execute(
                        "SELECT 1 FROM accounts WHERE id=?", (job.account_id,)
                    ).fetchone() is None:
                        raise AccountNotFound(job.account_id)
                    accounts_seen.add(job.account_id)
                if job.request_id:
                    row = db.execute(
                        f"SELECT {_JOB_COLUMNS} FROM jobs WHERE request_id=?", (job.request_id,)
                    ).fetchone()
                    if row is not None:
                        existing = _job_from_row(row)
                        if existing.request_hash != job.request_hash:
                            where = f"requests[{index}]." if len(jobs) > 1 else ""
                            raise AlreadyExists(
                                f"{where}request_id {job.request_id!r} was already used for job "
                                f"{existing.id} with different content"
                            )
                        out.append((existing, False))
                        continue
                db.execute(
                    f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 22)})",
                    _job_row(job),
                )
                events.append(_append_event(db, job, entry))
                out.append((job, True))
            return out

        return await self._write(op)

    async def commit(self, old: Job, new: Job, entry: Transition) -> tuple[Job, int]:
        """Compare-and-set *old* → *new* and append *entry* to the event log, atomically.

        Returns the new job and the event's sequence number; raises StaleJob if the stored job is
        no longer at `old.version`.
        """
        ((job, seq),) = await self.commit_many([(old, new, entry)])
        return job, seq

    async def commit_many(
        self, changes: Sequence[tuple[Job, Job, Transition]]
    ) -> list[tuple[Job, int]]:
        """Commit several CAS changes in one transaction: all or none (StaleJob if any lost)."""

        def op(db: sqlite3.Connection, events: list[Event]) -> list[tuple[Job, int]]:
            out = []
            for old, new, entry in changes:
                _cas(db, old, new)
                event = _append_event(db, new, entry)
                events.append(event)
                out.append((new, event.sequence))
            return out

        return await self._write(op)

    async def commit_each(
        self, changes: Sequence[tuple[Job, Job, Transition]]
    ) -> list[tuple[Job, int] | None]:
        """Commit CAS changes independently (one transaction); a lost CAS yields None."""

        def op(db: sqlite3.Connection, events: list[Event]) -> list[tuple[Job, int] | None]:
            out: list[tuple[Job, int] | None] = []
            for old, new, entry in changes:
                db.execute("SAVEPOINT one")
                try:
                    _cas(db, old, new)
                    event = _append_event(db, new, entry)
                except StaleJob:
                    db.execute("ROLLBACK TO one")
                    out.append(None)
                else:
                    events.append(event)
                    out.append((new, event.sequence))
                db.execute("RELEASE one")
            return out

        return await self._write(op)

    # ---------------------------------------------------------------- jobs: reads

    async def get_job(self, job_id: str, *, with_history: bool = False) -> Job:
        rows = list(await self._reader.execute_fetchall(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
        ))
        if not rows:
            raise JobNotFound(job_id)
        job = _job_from_row(tuple(rows[0]))
        if with_history:
            events = await self._reader.execute_fetchall(
                "SELECT seq, from_state, to_state, time, reason, attempt, error FROM events "
                "WHERE job_id = ? ORDER BY seq", (job_id,)
            )
            history = tuple(_transition_from_row(tuple(r)) for r in events)
            job = Job(**{**_fields(job), "history": history})
        return job

    async def get_jobs(self, job_ids: Iterable[str]) -> dict[str, Job]:
        ids = list(job_ids)
        out: dict[str, Job] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = await self._reader.execute_fetchall(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for r in rows:
                job = _job_from_row(tuple(r))
                out[job.id] = job
        return out

    async def list_jobs(self, flt: JobFilter, *, before_id: str = "", limit: int = 100) -> list[Job]:
        """Jobs matching *flt*, newest first (ids are time-ordered), with id < *before_id*."""
        where, args = ["1=1"], []
        if flt.account_id:
            where.append("account_id = ?")
            args.append(flt.account_id)
        if flt.states:
            where.append(f"state IN ({','.join('?' * len(flt.states))})")
            args.extend(sorted(s.value for s in flt.states))
        if flt.board_id:
            where.append("board_id = ?")
            args.append(flt.board_id)
        if flt.planned_after is not None:
            where.append("planned_at >= ?")
            args.append(codec.to_us(flt.planned_after))
        if flt.planned_before is not None:
            where.append("planned_at < ?")
            args.append(codec.to_us(flt.planned_before))
        if before_id:
            where.append("id < ?")
            args.append(before_id)
        rows = await self._reader.execute_fetchall(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)} "
            "ORDER BY id DESC LIMIT ?", (*args, limit),
        )
        return [_job_from_row(tuple(r)) for r in rows]

    async def active_jobs(self) -> list[Job]:
        """Every job with automatic work left (the scheduler rebuilds its heap from these)."""
        rows = await self._reader.execute_fetchall(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state IN ({_ACTIVE_SQL})"
        )
        return [_job_from_row(tuple(r)) for r in rows]

    async def count_by_state(self) -> dict[JobState, int]:
        rows = await self._reader.execute_fetchall(
            "SELECT state, count(*) FROM jobs GROUP BY state"
        )
        return {JobState(r[0]): int(r[1]) for r in rows}

    async def pin_owner(self, pinterest_pin_id: str) -> str | None:
        """The job that owns a Pinterest pin, if any."""
        rows = list(await self._reader.execute_fetchall(
            "SELECT id FROM jobs WHERE pinterest_pin_id = ?", (pinterest_pin_id,)
        ))
        return str(rows[0][0]) if rows else None

    async def owned_pin_ids(self, pin_ids: Iterable[str]) -> set[str]:
        ids = list(pin_ids)
        if not ids:
            return set()
        rows = await self._reader.execute_fetchall(
            f"SELECT pinterest_pin_id FROM jobs WHERE pinterest_pin_id IN "
            f"({','.join('?' * len(ids))})", ids,
        )
        return {str(r[0]) for r in rows}

    async def last_sequence(self) -> int:
        rows = list(await self._reader.execute_fetchall("SELECT max(seq) FROM events"))
        return int(rows[0][0] or 0)

    async def events_after(
        self, sequence: int, *, account_id: str = "", job_ids: Sequence[str] = (),
        to_states: Iterable[JobState] = (), limit: int = 1000,
    ) -> list[Event]:
        """Event-log rows with seq > *sequence*, oldest first, matching the filters."""
        where, args = ["seq > ?"], [sequence]
        if account_id:
            where.append("account_id = ?")
            args.append(account_id)
        if job_ids:
            where.append(f"job_id IN ({','.join('?' * len(job_ids))})")
            args.extend(job_ids)
        states = sorted(s.value for s in to_states)
        if states:
            where.append(f"to_state IN ({','.join('?' * len(states))})")
            args.extend(states)
        rows = await self._reader.execute_fetchall(
            "SELECT seq, from_state, to_state, time, reason, attempt, error, job_id, account_id "
            f"FROM events WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?", (*args, limit),
        )
        return [
            Event(int(r[0]), str(r[7]), str(r[8]), _transition_from_row(tuple(r[:7])))
            for r in rows
        ]


# -------------------------------------------------------------------- in the writer thread


def _run_batch(
    db: sqlite3.Connection,
    batch: Sequence[tuple[Callable[[sqlite3.Connection, list[Event]], Any], Any]],
) -> list[tuple[bool, Any, list[Event]]]:
    results: list[tuple[bool, Any, list[Event]]] = []
    db.execute("BEGIN IMMEDIATE")
    try:
        for fn, _ in batch:
            events: list[Event] = []
            db.execute("SAVEPOINT op")
            try:
                value = fn(db, events)
            except Exception as exc:
                db.execute("ROLLBACK TO op")
                results.append((False, exc, []))
            else:
                results.append((True, value, events))
            db.execute("RELEASE op")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return results


def _cas(db: sqlite3.Connection, old: Job, new: Job) -> None:
    row = _job_row(new)
    cur = db.execute(
        "UPDATE jobs SET state=?, board_id=?, pin=?, scheduled_at=?, window_us=?, planned_at=?, "
        "local_time=?, attempts=?, next_attempt_at=?, pinterest_pin_id=?, last_error=?, "
        "version=?, updated_at=?, submitted_at=?, delivered_at=?, late_by_us=?, "
        "cancel_requested=? WHERE id=? AND version=?",
        (*row[2:9], *row[11:16], *row[17:22], new.id, old.version),
    )
    if cur.rowcount == 0:
        raise StaleJob(old.id)


def _append_event(db: sqlite3.Connection, job: Job, entry: Transition) -> Event:
    cur = db.execute(
        "INSERT INTO events (job_id, account_id, from_state, to_state, time, reason, attempt, "
        "error) VALUES (?,?,?,?,?,?,?,?)",
        (
            job.id, job.account_id,
            entry.from_state.value if entry.from_state else None, entry.to_state.value,
            codec.to_us(entry.time), entry.reason, entry.attempt,
            json.dumps(entry.error.to_dict()) if entry.error else None,
        ),
    )
    seq = int(cur.lastrowid or 0)
    return Event(seq, job.id, job.account_id, _with_seq(entry, seq), job)


def _with_seq(entry: Transition, seq: int) -> Transition:
    return Transition(
        from_state=entry.from_state, to_state=entry.to_state, time=entry.time,
        reason=entry.reason, attempt=entry.attempt, error=entry.error, sequence=seq,
    )


async def _migrate(db: aiosqlite.Connection) -> None:
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


# -------------------------------------------------------------------- row mapping


def _fields(job: Job) -> dict[str, Any]:
    return {name: getattr(job, name) for name in Job.__dataclass_fields__}


def _job_row(job: Job) -> tuple[Any, ...]:
    return (
        job.id, job.account_id, job.state.value, job.pin.board_id, codec.pin_to_json(job.pin),
        codec.to_us(job.scheduled_at), codec.td_us(job.window), codec.to_us(job.planned_at),
        codec.local_time_to_json(job.local_time), job.request_id or None, job.request_hash,
        job.attempts, codec.opt_us(job.next_attempt_at), job.pinterest_pin_id or None,
        json.dumps(job.last_error.to_dict()) if job.last_error else None, job.version,
        codec.to_us(job.created_at), codec.to_us(job.updated_at),
        codec.opt_us(job.submitted_at), codec.opt_us(job.delivered_at),
        None if job.late_by is None else codec.td_us(job.late_by), int(job.cancel_requested),
    )


def _job_from_row(r: tuple[Any, ...]) -> Job:
    from datetime import timedelta

    return Job(
        id=r[0], account_id=r[1], state=JobState(r[2]), pin=codec.pin_from_json(r[4]),
        scheduled_at=codec.from_us(r[5]), window=timedelta(microseconds=r[6]),
        planned_at=codec.from_us(r[7]), local_time=codec.local_time_from_json(r[8]),
        request_id=r[9] or "", request_hash=r[10], attempts=r[11],
        next_attempt_at=codec.opt_dt(r[12]), pinterest_pin_id=r[13] or "",
        last_error=JobError.from_dict(json.loads(r[14])) if r[14] else None, version=r[15],
        created_at=codec.from_us(r[16]), updated_at=codec.from_us(r[17]),
        submitted_at=codec.opt_dt(r[18]), delivered_at=codec.opt_dt(r[19]),
        late_by=None if r[20] is None else timedelta(microseconds=r[20]),
        cancel_requested=bool(r[21]),
    )


def _transition_from_row(r: tuple[Any, ...]) -> Transition:
    return Transition(
        sequence=int(r[0]), from_state=JobState(r[1]) if r[1] else None,
        to_state=JobState(r[2]), time=codec.from_us(r[3]), reason=r[4], attempt=int(r[5]),
        error=JobError.from_dict(json.loads(r[6])) if r[6] else None,
    )


def _account_row(a: Account) -> tuple[Any, ...]:
    return (
        a.id, a.display_name, a.access_token, a.refresh_token, codec.opt_us(a.access_expires_at),
        json.dumps(a.pacing.to_dict()), int(a.paused), int(a.needs_reauth), a.state_reason,
        a.version, codec.to_us(a.created_at), codec.to_us(a.updated_at),
    )


def _account_from_row(r: tuple[Any, ...]) -> Account:
    return Account(
        id=r[0], display_name=r[1], access_token=r[2], refresh_token=r[3],
        access_expires_at=codec.opt_dt(r[4]), pacing=Pacing.from_dict(json.loads(r[5])),
        paused=bool(r[6]), needs_reauth=bool(r[7]), state_reason=r[8], version=int(r[9]),
        created_at=codec.from_us(r[10]), updated_at=codec.from_us(r[11]),
    )
