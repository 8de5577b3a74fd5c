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

The table-owning parts are mixins written once over `driver.Tx`: jobs, accounts, outbox,
media, pacers, retention, slots, videos, leases; the single writer is `writer.GroupCommit`.
It does not decide anything: which transition is legal is `pinsched.core.jobs`'s business; the
one compare-and-set retry loop over it is `store.changes`.

Rule: the only code that speaks SQL; it imports the core (domain types, codec, errors) and never
the API, the service layer, the dispatcher or the Pinterest client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import aiosqlite

from pinsched.store.accounts import AccountsMixin
from pinsched.store.driver import Backend, Reader, SqliteBackend, Tx
from pinsched.store.jobs import JobsMixin
from pinsched.store.leases import Fence, Lease, LeaseLost, LeasesMixin
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
    AccountOutboxRenderer,
    Delivery,
    Event,
    JobFilter,
    Outbox,
    OutboxRenderer,
    OutboxRow,
    StaleJob,
    TokenCipher,
)
from pinsched.store.schema import MIGRATIONS, migrate
from pinsched.store.slots import SlotAsk, SlotsMixin
from pinsched.store.videos import VideoMixin
from pinsched.store.writer import GroupCommit

__all__ = [
    "MIGRATIONS",
    "AccountOutboxRenderer",
    "Delivery",
    "Event",
    "Fence",
    "JobFilter",
    "Lease",
    "LeaseLost",
    "Outbox",
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
    JobsMixin,  # first: it defines what the other parts only declare (_append_event, …)
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
        *,
        outbox: Outbox | None = None,
        cipher: TokenCipher | None = None,
    ) -> None:
        self._db = backend
        self._reader: Reader = backend.reader
        self._lock = lock
        self._outbox: OutboxRenderer | None = outbox.render_event if outbox else None
        self._account_outbox: AccountOutboxRenderer | None = (
            outbox.render_account if outbox else None
        )
        self._cipher = cipher
        self._commits = GroupCommit(backend, on_events or (lambda _: None))
        if outbox is not None and outbox.on_written is not None:
            self._commits.on_outbox = outbox.on_written

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        on_events: Callable[[Sequence[Event]], None] | None = None,
        outbox: Outbox | None = None,
        cipher: TokenCipher | None = None,
        cluster: bool = False,
    ) -> Store:
        """Open (creating and migrating if needed) the database at *path* (a SQLite file, or a
        `postgresql://` URL), locked for this process. Raises StoreOpenError (one line naming the
        database) when it cannot be used.

        *on_events* gets the committed events in sequence order; *outbox* enqueues webhook
        deliveries in each change's own transaction; *cipher* seals account tokens (and upload
        parameters) at rest — values stored in clear text or under an older key are still read.
        *cluster*: a PostgreSQL database shared with the other daemons of a cluster (its lock
        taken shared, not exclusively); a SQLite file is always one daemon's.
        """
        if isinstance(path, str) and is_postgres(path):
            from pinsched.store.postgres import PgBackend  # asyncpg only when it is used

            backend = await PgBackend.open(path, len(MIGRATIONS), shared=cluster)
            store = cls(backend, on_events, outbox=outbox, cipher=cipher)
            # Nothing written yet; read while no other daemon's write transaction is open.
            store._commits.last_sequence = await backend.committed_sequence()
            return store
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
        return cls(SqliteBackend(writer, reader), on_events, lock, outbox=outbox, cipher=cipher)

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

    @property
    def is_open(self) -> bool:
        """Whether the store takes writes (not closing, its writer running)."""
        return self._commits.is_open

    @property
    def batches(self) -> int:
        """Group-commit statistics: transactions committed."""
        return self._commits.batches

    @property
    def writes(self) -> int:
        """Writes committed."""
        return self._commits.writes

    async def _write(self, fn: Callable[[Tx, list[Event]], Awaitable[T]]) -> T:
        return await self._commits.submit(fn)

    def before_commit(self, hook: Callable[[list[Event]], None]) -> None:
        """PostgreSQL: *hook* gets each transaction's events just before its COMMIT (the
        cluster feed marks them as this daemon's own); SQLite has no use for it."""
        if hasattr(self._db, "before_commit"):
            self._db.before_commit = hook

    def saw_sequence(self, sequence: int) -> None:
        """PostgreSQL: *sequence* was committed (by any daemon) and handed to the watchers:
        `last_sequence` never answers less."""
        if self._commits.last_sequence is not None and sequence > self._commits.last_sequence:
            self._commits.last_sequence = sequence

    async def close(self) -> None:
        """Commit what is queued, then close the connections."""
        await self._commits.close()
        try:
            await self._db.close()
        finally:
            if self._lock is not None:
                self._lock.release()
