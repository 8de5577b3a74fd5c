"""The store: the only package that speaks SQL. The store is the truth; heaps are indexes.

It runs on SQLite (a file path, the default) or PostgreSQL (a `postgresql://` URL), through one
connection layer (`pinsched.store.driver`; `pinsched.store.postgres`) with the same semantics:

* A change is durable before it is acknowledged or acted on (SQLite: WAL, `synchronous=FULL`).
* Writes go through one writer task that **group-commits**: every write queued while the previous
  transaction was being committed shares the next transaction (one fsync), each inside its own
  SAVEPOINT so one failing write never undoes another. On SQLite the batch runs on the aiosqlite
  thread in a single hop; on PostgreSQL on the writer connection.
* Job changes are compare-and-set on `version`; each appends its row to the event log (and its
  webhook outbox rows) in the same transaction. After the commit, the committed events are handed
  to `on_events` in sequence order.
* Reads use other connections (SQLite: a second connection, WAL readers never block the writer;
  PostgreSQL: a small pool).
* Schema versions: SQLite's `PRAGMA user_version` (`MIGRATIONS[i]` upgrades from version i);
  PostgreSQL's `pinsched_schema` table (`pinsched.store.pg_schema`).
* One process per database: SQLite's `<db>.lock` file (`pinsched.store.opening`), PostgreSQL's
  advisory lock. `Store.open` refuses a database it cannot use before writing anything. A storage
  failure at run time (disk full, read-only, I/O error, lost connection) becomes
  `StorageUnavailable`; the transaction it hit is rolled back whole.

The table-owning parts are mixins written once over `driver.Tx`: jobs (here), accounts, outbox,
media, pacers, retention, slots, videos. It does not decide anything: which transition is legal
is `jobs.py`'s business.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from pinsched import codec
from pinsched.errors import (
    AccountNotFound,
    AlreadyExists,
    JobNotFound,
    ShuttingDown,
    StorageUnavailable,
)
from pinsched.jobs import Job, JobState, Transition, job_reference
from pinsched.store.accounts import AccountsMixin
from pinsched.store.driver import Backend, Reader, SqliteBackend, Tx
from pinsched.store.leases import Fence, Lease, LeaseLost, LeasesMixin, check_fence
from pinsched.store.location import is_postgres
from pinsched.store.media import MediaMixin
from pinsched.store.opening import (
    DatabaseLock,
    StoreOpenError,
    check_directory,
    inspect,
    storage_problem,
)
from pinsched.store.outbox import OutboxMixin
from pinsched.store.pacers import PacerStateMixin
from pinsched.store.retention import Pruned, RetentionMixin
from pinsched.store.rows import (
    _ACTIVE_SQL,
    _JOB_COLUMNS,
    AccountOutboxRenderer,
    Delivery,
    Event,
    JobFilter,
    OutboxRenderer,
    OutboxRow,
    StaleJob,
    TokenCipher,
    _append_event,
    _cas,
    _fields,
    _insert_jobs,
    _job_from_row,
    _job_row,
    _jobs_by_request_id,
    _store_media,
    _transition_from_row,
)
from pinsched.store.schema import MIGRATIONS, migrate
from pinsched.store.slots import (
    SlotAsk,
    SlotsMixin,
    count_new,
    place_new,
)
from pinsched.store.videos import VideoMixin

__all__ = [
    "MIGRATIONS",
    "AccountOutboxRenderer",
    "Delivery",
    "Event",
    "Fence",
    "JobFilter",
    "Lease",
    "LeaseLost",
    "OutboxRenderer",
    "OutboxRow",
    "Pruned",
    "SlotAsk",
    "StaleJob",
    "Store",
    "StoreOpenError",
    "TokenCipher",
]

T = TypeVar("T")


class Store(
    AccountsMixin,
    OutboxMixin,
    RetentionMixin,
    MediaMixin,
    PacerStateMixin,
    SlotsMixin,
    VideoMixin,
    LeasesMixin,
):
    """Async facade over one database (a SQLite file or a PostgreSQL database)."""

    def __init__(
        self,
        backend: Backend,
        on_events: Callable[[Sequence[Event]], None] | None,
        lock: DatabaseLock | None = None,
    ) -> None:
        self._db = backend
        self._reader: Reader = backend.reader
        self._lock = lock
        self._on_events = on_events or (lambda _: None)
        self._outbox: OutboxRenderer | None = None
        self._account_outbox: AccountOutboxRenderer | None = None
        self._on_outbox: Callable[[], None] = lambda: None
        self._outbox_written = False  # set in the writer thread, read after the batch commits
        self._cipher: TokenCipher | None = None
        self._queue: list[
            tuple[Callable[[Tx, list[Event]], Awaitable[Any]], asyncio.Future[Any]]
        ] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._write_loop(), name="store-writer")
        self.batches = 0  # group-commit statistics (transactions committed)
        self.writes = 0  # writes committed

    @classmethod
    async def open(
        cls, path: str | Path, *, on_events: Callable[[Sequence[Event]], None] | None = None
    ) -> Store:
        """Open (creating and migrating if needed) the database at *path* (a SQLite file, or a
        `postgresql://` URL), locked for this process. Raises StoreOpenError (one line naming the
        database) when it cannot be used."""
        if isinstance(path, str) and is_postgres(path):
            from pinsched.store.postgres import PgBackend  # asyncpg only when it is used

            return cls(await PgBackend.open(path, len(MIGRATIONS)), on_events)
        db_path = Path(path)
        check_directory(db_path)
        lock = DatabaseLock(db_path)
        lock.acquire()
        writer: aiosqlite.Connection | None = None
        reader: aiosqlite.Connection | None = None
        try:
            inspect(db_path, len(MIGRATIONS))  # read-only: refuse before WAL or migrations
            writer = await aiosqlite.connect(str(path), isolation_level=None)
            await writer.execute("PRAGMA journal_mode=WAL")
            await writer.execute("PRAGMA synchronous=FULL")
            await writer.execute("PRAGMA foreign_keys=ON")
            await writer.execute("PRAGMA busy_timeout=5000")
            await migrate(writer)
            reader = await aiosqlite.connect(str(path), isolation_level=None)
            await reader.execute("PRAGMA busy_timeout=5000")
            await reader.execute("PRAGMA query_only=ON")
        except BaseException as exc:
            # A connection left open keeps its thread, and the process, alive.
            if reader is not None:
                await reader.close()
            if writer is not None:
                await writer.close()
            lock.release()
            problem = storage_problem(exc)
            if problem is not None:
                raise StoreOpenError(f"database {db_path}: {problem}") from None
            raise
        return cls(SqliteBackend(writer, reader), on_events, lock)

    @property
    def _writer(self) -> aiosqlite.Connection:
        """The SQLite writer connection (tests simulate storage failures through it)."""
        if not isinstance(self._db, SqliteBackend):
            raise TypeError("not a SQLite store")
        return self._db.writer

    @property
    def backend(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self._db.dialect.name

    def set_event_sink(self, on_events: Callable[[Sequence[Event]], None]) -> None:
        self._on_events = on_events

    def set_outbox(
        self,
        renderer: OutboxRenderer | None,
        account_renderer: AccountOutboxRenderer | None = None,
        on_written: Callable[[], None] | None = None,
    ) -> None:
        """Enqueue webhook deliveries for every event (and account change), in the change's own
        transaction; *on_written* is called after each commit that enqueued any."""
        self._outbox = renderer
        self._account_outbox = account_renderer
        self._on_outbox = on_written or (lambda: None)

    async def _insert_outbox(
        self, db: Tx, seq: int, rows: Sequence[OutboxRow], when: datetime
    ) -> None:
        now = codec.to_us(when)
        self._outbox_written = True
        await db.executemany(
            "INSERT INTO webhook_deliveries (endpoint, event_seq, message_id, order_key, "
            "event_type, payload, next_attempt_at, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (r.endpoint, seq, r.message_id, r.order_key, r.event_type, r.payload, now, now, now)
                for r in rows
            ],
        )

    @property
    def is_open(self) -> bool:
        """Whether the store takes writes (not closing, its writer running)."""
        return not self._closing and not self._task.done()

    async def close(self) -> None:
        """Commit what is queued, then close both connections."""
        self._closing = True
        self._wake.set()
        await self._task
        try:
            await self._db.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    # ---------------------------------------------------------------- group commit

    async def _write(self, fn: Callable[[Tx, list[Event]], Awaitable[T]]) -> T:
        if self._closing:
            raise ShuttingDown()
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((fn, fut))
        self._wake.set()
        try:
            return await fut
        except Exception as exc:
            problem = self._db.storage_problem(exc)
            if problem is None:
                raise
            raise StorageUnavailable(f"{problem}; nothing of this change was written") from exc

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
                results = await self._db.run_batch([fn for fn, _ in batch])
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
            if self._outbox_written:
                self._outbox_written = False
                self._on_outbox()

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
                events.append(await self._append_event(db, job, entry))
                reference = job_reference(job)
                if job.request_id:
                    known[job.request_id] = reference  # a repeat later in this batch
                out.append((reference, True))
            await _insert_jobs(db, rows)
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
        self, changes: Sequence[tuple[Job, Job, Transition]]
    ) -> list[tuple[Job, int] | None]:
        """Commit CAS changes independently (one transaction); a lost CAS yields None."""

        async def op(db: Tx, events: list[Event]) -> list[tuple[Job, int] | None]:
            out: list[tuple[Job, int] | None] = []
            for old, new, entry in changes:
                await db.execute("SAVEPOINT one")
                try:
                    await _cas(db, old, new)
                    event = await self._append_event(db, new, entry)
                except StaleJob:
                    await db.execute("ROLLBACK TO SAVEPOINT one")
                    out.append(None)
                else:
                    events.append(event)
                    out.append((job_reference(new), event.sequence))
                await db.execute("RELEASE SAVEPOINT one")
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
        event = await _append_event(db, job, entry)
        if self._outbox is not None:
            rows = self._outbox(event)
            if rows:
                await self._insert_outbox(db, event.sequence, rows, entry.time)
        return event

    # ---------------------------------------------------------------- jobs: reads

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
            job = Job(**{**_fields(job), "history": history})
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
        CANCELLING, and delivered pins with a pending remote update."""
        rows = await self._reader.execute_fetchall(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state IN ('QUEUED', 'SUBMITTED', 'CANCELLING') "
            f"UNION ALL SELECT {_JOB_COLUMNS} FROM jobs WHERE remote_pending = 1 "
            f"AND state NOT IN ({_ACTIVE_SQL})"
        )
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
        """The highest sequence ever given (pruned events included: it never goes back)."""
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
