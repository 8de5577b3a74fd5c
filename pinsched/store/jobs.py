"""The jobs table and its event log: creating jobs (with their slots and request ids),
compare-and-set changes (optionally fenced by an account lease), notes, and every job read.
Each change appends its events, and its webhook outbox rows, in its own transaction. Mixed into
`Store`; written once over `driver.Tx` for both engines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

from pinsched.core import notes
from pinsched.core.errors import AccountNotFound, AlreadyExists, JobNotFound
from pinsched.core.jobs import Job, JobState, Transition, job_reference
from pinsched.store import codec
from pinsched.store.driver import Backend, Reader, Tx
from pinsched.store.eventlog import _append_event, _append_events
from pinsched.store.leases import Fence, LeaseLost, check_fence
from pinsched.store.rows import (
    _ACTIVE_SQL,
    _JOB_COLUMNS,
    Event,
    JobFilter,
    OutboxRenderer,
    OutboxRow,
    StaleJob,
    _cas,
    _fields,
    _insert_jobs,
    _job_from_row,
    _job_row,
    _jobs_by_request_id,
    _store_media,
    _transition_from_row,
)
from pinsched.store.slots import SlotAsk, count_new, place_new
from pinsched.store.writer import GroupCommit

T = TypeVar("T")


#: The jobs a dispatcher picks up at start-up. The first half repeats the partial index
#: `jobs_active`'s condition word for word: SQLite uses a partial index only when the query's
#: WHERE names its condition exactly, and without it a restart reads the whole jobs table.
IN_FLIGHT_SQL = (
    f"SELECT {_JOB_COLUMNS} FROM jobs "
    "WHERE state IN ('PENDING', 'QUEUED', 'SUBMITTED', 'RETRYING', 'CANCELLING') "
    "AND state IN ('QUEUED', 'SUBMITTED', 'CANCELLING') "
    f"UNION ALL SELECT {_JOB_COLUMNS} FROM jobs WHERE remote_pending = 1 "
    f"AND state NOT IN ({_ACTIVE_SQL}) ORDER BY 8, 1"  # planned_at, id
)


#: PENDING jobs planned in a time range, soonest first. A PENDING job's `due_us` is its planned
#: time, and the state test repeats the partial index `jobs_due`'s own condition, so both engines
#: read one range of that index: a filter on `planned_at` would scan every pending job (seconds
#: with millions pending, holding the read connection that dispatch needs meanwhile).
PENDING_PLANNED_SQL: Final = (
    f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state IN ('PENDING', 'RETRYING') "
    "AND due_us >= ? AND due_us < ? AND state = 'PENDING' ORDER BY due_us, id LIMIT ?"
)


class JobsMixin:
    """Jobs and events; `Store` provides what is declared here."""

    _db: Backend
    _reader: Reader
    _outbox: OutboxRenderer | None
    _commits: GroupCommit

    async def _write(self, fn: Callable[[Tx, list[Event]], Awaitable[T]]) -> T:
        raise NotImplementedError

    async def _insert_outbox(
        self, db: Tx, seq: int, rows: Sequence[OutboxRow], when: datetime
    ) -> None:
        now = codec.to_us(when)
        self._commits.outbox_written = True
        await db.executemany(
            "INSERT INTO webhook_deliveries (endpoint, event_seq, message_id, order_key, "
            "event_type, payload, next_attempt_at, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (r.endpoint, seq, r.message_id, r.order_key, r.event_type, r.payload, now, now, now)
                for r in rows
            ],
        )

    # ---------------------------------------------------------------- jobs: writes

    async def create_jobs(
        self,
        jobs: Sequence[Job],
        transitions: Sequence[Transition],
        replans: Sequence[tuple[Job, Job, Transition]] = (),
        slot_asks: Mapping[int, SlotAsk] | None = None,
        request_index: Sequence[int] | None = None,
    ) -> list[tuple[Job, bool]]:
        """Insert *jobs* atomically (all or none) with the *replans* of other jobs (CAS);
        return each job with `created=True`, or the existing job with `created=False` when its
        `request_id` was seen with the same content.

        The jobs at the indexes of *slot_asks* are placed in their account's next free posting
        slot inside this transaction (a job with an interval after the job before it: board
        groups). FailedPrecondition when an account has no schedule or no free slot.
        *request_index* maps each job to the request it came from (errors name `requests[i]`).

        Raises AlreadyExists (naming the item) when a `request_id` was used with other content,
        AccountNotFound when an account does not exist, StaleJob when a re-planned job changed.
        """

        async def op(db: Tx, events: list[Event]) -> list[tuple[Job, bool]]:
            out: list[tuple[Job, bool]] = []
            for old, new, entry in replans:
                await _cas(db, old, new)
                events.append(await self._append_event(db, new, entry))
            accounts_seen: set[str] = set()
            books: dict[str, Any] = {}
            known = await _jobs_by_request_id(
                db, [job.request_id for job in jobs if job.request_id]
            )
            rows: list[tuple[Any, ...]] = []  # inserted together (executemany)
            new_events: list[tuple[Job, Transition]] = []  # appended together, after the jobs
            for index, (job, entry) in enumerate(zip(jobs, transitions, strict=True)):
                if job.account_id not in accounts_seen:
                    if (
                        await db.fetchone("SELECT 1 FROM accounts WHERE id=?", (job.account_id,))
                        is None
                    ):
                        raise AccountNotFound(job.account_id)
                    accounts_seen.add(job.account_id)
                existing = known.get(job.request_id) if job.request_id else None
                if existing is not None:
                    if existing.request_hash != job.request_hash:
                        item = request_index[index] if request_index else index
                        many = (request_index[-1] if request_index else len(jobs) - 1) > 0
                        where = f"requests[{item}]." if many else ""
                        raise AlreadyExists(
                            f"{where}request_id {job.request_id!r} was already used for job "
                            f"{existing.id} with different content"
                        )
                    out.append((existing, False))
                    continue
                ask = slot_asks.get(index) if slot_asks else None
                if ask is not None:
                    await _insert_jobs(db, rows)  # placing reads the jobs inserted before it
                    job, entry = await place_new(
                        db, books, job, entry, ask, out[-1][0] if out and ask.interval else None
                    )
                await _store_media(db, job.pin)
                rows.append(_job_row(job))
                count_new(books, job)
                new_events.append((job, entry))
                reference = job_reference(job)
                if job.request_id:
                    known[job.request_id] = reference  # a repeat later in this batch
                out.append((reference, True))
            await _insert_jobs(db, rows)
            added = await self._append_events(db, new_events)
            events.extend(sorted(added, key=lambda e: e.sequence))
            return out

        return await self._write(op)

    async def commit(
        self, old: Job, new: Job, entry: Transition, *, fence: Fence | None = None
    ) -> tuple[Job, int]:
        """Compare-and-set *old* → *new* and append *entry* to the event log, atomically.

        Returns the new job and the event's sequence number; raises StaleJob if the stored job is
        no longer at `old.version`, LeaseLost if *fence* no longer holds.
        """
        ((job, seq),) = await self.commit_many([(old, new, entry)], fence=fence)
        return job, seq

    async def commit_many(
        self, changes: Sequence[tuple[Job, Job, Transition]], *, fence: Fence | None = None
    ) -> list[tuple[Job, int]]:
        """Commit several CAS changes in one transaction: all or none (StaleJob if any lost;
        LeaseLost if *fence*, checked in the same transaction, no longer holds)."""

        async def op(db: Tx, events: list[Event]) -> list[tuple[Job, int]]:
            if fence is not None:
                await check_fence(db, fence)
            out = []
            for old, new, entry in changes:
                await _cas(db, old, new)
                event = await self._append_event(db, new, entry)
                events.append(event)
                out.append((job_reference(new), event.sequence))
            return out

        return await self._write(op)

    async def commit_each(
        self,
        changes: Sequence[tuple[Job, Job, Transition]],
        *,
        fences: Mapping[str, Fence] | None = None,
    ) -> list[tuple[Job, int] | None]:
        """Commit CAS changes independently (one transaction); a lost CAS yields None, and so
        does a change of an account whose fence in *fences* (by account id) no longer holds."""

        async def op(db: Tx, events: list[Event]) -> list[tuple[Job, int] | None]:
            out: list[tuple[Job, int] | None] = []
            fenced: dict[str, bool] = {}  # account id → its fence holds (checked once)
            applied: list[tuple[int, Job, Transition]] = []  # (its place in out, new, entry)
            for old, new, entry in changes:
                if fences is not None:
                    if old.account_id not in fenced:
                        try:
                            await check_fence(db, fences[old.account_id])
                        except (LeaseLost, KeyError):
                            fenced[old.account_id] = False
                        else:
                            fenced[old.account_id] = True
                    if not fenced[old.account_id]:
                        out.append(None)
                        continue
                await db.execute("SAVEPOINT one")
                try:
                    await _cas(db, old, new)
                except StaleJob:
                    await db.execute("ROLLBACK TO SAVEPOINT one")
                else:
                    applied.append((len(out), new, entry))
                out.append(None)  # an applied change's answer comes with its event, below
                await db.execute("RELEASE SAVEPOINT one")
            # The applied changes' events together (a scheduler batch: one statement).
            added = await self._append_events(db, [(new, entry) for _, new, entry in applied])
            for (i, new, _), event in zip(applied, added, strict=True):
                out[i] = (job_reference(new), event.sequence)
            events.extend(sorted(added, key=lambda e: e.sequence))
            return out

        return await self._write(op)

    async def append_note(self, job: Job, entry: Transition) -> int:
        """Append *entry* (a note, `pinsched.notes`) to *job*'s events and the webhook outbox,
        leaving the job row as it is; the event's sequence. `JobNotFound` once it is gone."""

        async def op(db: Tx, events: list[Event]) -> int:
            if await db.fetchone("SELECT 1 FROM jobs WHERE id = ?", (job.id,)) is None:
                raise JobNotFound(job.id)
            event = await self._append_event(db, job, entry)
            events.append(event)
            return event.sequence

        return await self._write(op)

    async def _append_event(self, db: Tx, job: Job, entry: Transition) -> Event:
        (event,) = await self._outboxed(db, [await _append_event(db, job, entry)])
        return event

    async def _append_events(self, db: Tx, items: Sequence[tuple[Job, Transition]]) -> list[Event]:
        """`_append_event` for many jobs, in few statements (`eventlog._append_events`)."""
        return await self._outboxed(db, await _append_events(db, items) if items else [])

    async def _outboxed(self, db: Tx, events: list[Event]) -> list[Event]:
        """*events*, once their webhook outbox rows (if any) are written."""
        if self._outbox is not None:
            for event in events:
                rows = self._outbox(event)
                if rows:
                    await self._insert_outbox(db, event.sequence, rows, event.transition.time)
        return events

    # ---------------------------------------------------------------- jobs: reads

    async def jobs_by_request_id(self, request_ids: Iterable[str]) -> dict[str, Job]:
        """The stored jobs named by *request_ids* (`validate_only` answers as the call would)."""
        unique = list(dict.fromkeys(r for r in request_ids if r))
        out: dict[str, Job] = {}
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = await self._reader.execute_fetchall(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE request_id IN ({marks})", chunk
            )
            for r in rows:
                job = _job_from_row(tuple(r))
                out[job.request_id] = job
        return out

    async def get_job(self, job_id: str, *, with_history: bool = False) -> Job:
        rows = list(
            await self._reader.execute_fetchall(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
            )
        )
        if not rows:
            raise JobNotFound(job_id)
        job = _job_from_row(tuple(rows[0]))
        if with_history:
            events = await self._reader.execute_fetchall(
                "SELECT seq, from_state, to_state, time, reason, attempt, error FROM events "
                "WHERE job_id = ? ORDER BY seq",
                (job_id,),
            )
            history = tuple(_transition_from_row(tuple(r)) for r in events)
            # Events read after the row: one committed in between is a later version's.
            job = Job(**{**_fields(job), "history": notes.history_at(history, job.version)})
        return job

    async def get_jobs(self, job_ids: Iterable[str]) -> dict[str, Job]:
        ids = list(job_ids)
        out: dict[str, Job] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await self._reader.execute_fetchall(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for r in rows:
                job = _job_from_row(tuple(r))
                out[job.id] = job
        return out

    async def list_jobs(
        self, flt: JobFilter, *, before_id: str = "", limit: int = 100
    ) -> list[Job]:
        """Jobs matching *flt*, newest first (ids are time-ordered), with id < *before_id*."""
        where, args = ["1=1"], list[Any]()
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
        if flt.group_id:
            where.append("group_id = ?")
            args.append(flt.group_id)
        if before_id:
            where.append("id < ?")
            args.append(before_id)
        rows = await self._reader.execute_fetchall(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        )
        return [_job_from_row(tuple(r)) for r in rows]

    async def account_planned(self, account_id: str, lo: datetime, hi: datetime) -> list[Job]:
        """The account's jobs planned in [*lo*, *hi*] that are or will be published (for window
        planning: PENDING, QUEUED, SUBMITTED, RETRYING, DELIVERED)."""
        rows = await self._reader.execute_fetchall(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE account_id = ? AND planned_at BETWEEN ? AND ? "
            "AND state IN ('PENDING', 'QUEUED', 'SUBMITTED', 'RETRYING', 'DELIVERED') "
            "ORDER BY planned_at",
            (account_id, codec.to_us(lo), codec.to_us(hi)),
        )
        return [_job_from_row(tuple(r)) for r in rows]

    async def pending_planned(self, lo: datetime, hi: datetime, limit: int) -> list[Job]:
        """PENDING jobs planned in [*lo*, *hi*), soonest first, at most *limit*: one range of the
        due-time index (`PENDING_PLANNED_SQL`), whatever the backlog holds beyond it."""
        rows = await self._reader.execute_fetchall(
            PENDING_PLANNED_SQL, (codec.to_us(lo), codec.to_us(hi), limit)
        )
        return [_job_from_row(tuple(r)) for r in rows]

    async def due_index(self) -> list[tuple[str, int]]:
        """`(job_id, due_us)` of every PENDING and RETRYING job, in due order (diagnostics and
        tests: the scheduler reads only its window, `due_window`)."""
        rows = await self._reader.execute_fetchall(
            "SELECT id, due_us FROM jobs WHERE state IN ('PENDING', 'RETRYING') ORDER BY due_us, id"
        )
        return [(r[0], r[1]) for r in rows]

    async def due_window(
        self, after: tuple[int, str], until_us: int, limit: int
    ) -> list[tuple[str, int]]:
        """`(job_id, due_us)` of the PENDING and RETRYING jobs due after the *after* key
        `(due_us, job_id)` and at or before *until_us*, in `(due_us, id)` order, at most *limit*:
        one range of the partial index `jobs_due`, without decoding the jobs."""
        rows = await self._reader.execute_fetchall(
            "SELECT id, due_us FROM jobs WHERE state IN ('PENDING', 'RETRYING') "
            "AND (due_us, id) > (?, ?) AND due_us <= ? ORDER BY due_us, id LIMIT ?",
            (after[0], after[1], until_us, limit),
        )
        return [(r[0], r[1]) for r in rows]

    async def in_flight_jobs(self) -> list[Job]:
        """Jobs a dispatcher must pick up at start-up: QUEUED, SUBMITTED (to reconcile),
        CANCELLING, and delivered pins with a pending remote update; in planned order (the
        order is stated: PostgreSQL, unlike SQLite's index walk, gives none by itself)."""
        rows = await self._reader.execute_fetchall(IN_FLIGHT_SQL)
        return [_job_from_row(tuple(r)) for r in rows]

    async def count_by_state(self) -> dict[JobState, int]:
        """Jobs by state, from the counts the writing transactions keep (no table scan)."""
        rows = await self._reader.execute_fetchall("SELECT state, n FROM job_counts WHERE n > 0")
        return {JobState(r[0]): int(r[1]) for r in rows}

    async def owned_pin_ids(self, pin_ids: Iterable[str]) -> set[str]:
        ids = list(pin_ids)
        if not ids:
            return set()
        rows = await self._reader.execute_fetchall(
            f"SELECT pinterest_pin_id FROM jobs WHERE pinterest_pin_id IN "
            f"({','.join('?' * len(ids))})",
            ids,
        )
        return {str(r[0]) for r in rows}

    async def last_sequence(self) -> int:
        """The highest sequence ever committed (pruned events included: it never goes back).

        On PostgreSQL the event sequence shows values of transactions not yet committed, so the
        answer is the writer's own count (read once at open, then moved by each commit): a
        watcher starting from it never skips an event still being written."""
        if self._commits.last_sequence is not None:
            return self._commits.last_sequence
        rows = list(await self._reader.execute_fetchall(self._db.dialect.last_sequence_sql))
        return int(rows[0][0] or 0)

    async def events_after(
        self,
        sequence: int,
        *,
        account_id: str = "",
        job_ids: Sequence[str] = (),
        to_states: Iterable[JobState] = (),
        limit: int = 1000,
    ) -> list[Event]:
        """Event-log rows with seq > *sequence*, oldest first, matching the filters."""
        where, args = ["seq > ?"], list[Any]([sequence])
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
            f"FROM events WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?",
            (*args, limit),
        )
        return [
            Event(int(r[0]), str(r[7]), str(r[8]), _transition_from_row(tuple(r[:7]))) for r in rows
        ]
