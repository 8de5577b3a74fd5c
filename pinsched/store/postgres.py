"""The PostgreSQL backend of the store (asyncpg): the same operations, transactions and group
commit as SQLite (`pinsched.store.driver`), over a writer connection and a pool of readers.

* One writer connection runs each batch in one transaction, every operation in its own savepoint,
  so the store's semantics are SQLite's: compare-and-set on `version`, the event log and the
  outbox in the job change's own transaction, events committed in sequence order.
* Commit order is sequence order, across daemons: every write transaction first takes the
  transaction-level advisory lock `EVENTS_KEY` (held to its commit), so an event sequence is
  never handed out while a smaller one is still uncommitted, and a reader that read the log up
  to N never later finds an event below N (`pinsched.feed`). A transaction that wrote events
  sends `NOTIFY` on `CHANNEL` before it commits (delivered on commit), and hands them to
  `before_commit` (the feed marks them as this daemon's own). A transaction left idle longer
  than `HOLD_MS` (a paused daemon) has its session ended by the server, so a stopped daemon
  never holds the other daemons' writes for longer than that.
* A daemon holds its database with a session advisory lock (`LOCK_KEY`): exclusively when it runs
  alone (the default; a second daemon is refused with one line), shared when it runs in a
  cluster (`cluster = true`: several daemons, account leases say which one publishes an
  account, `pinsched.cluster`); the two kinds refuse each other, so a daemon started without
  `--cluster` never publishes beside a cluster. Migrations run under their own lock
  (`MIGRATE_KEY`), so daemons starting together migrate once. PostgreSQL drops both with the
  connection: a killed daemon never leaves them behind.
* Errors: a constraint violation becomes `driver.IntegrityError`; a lost connection, a full disk
  or a server shutting down is a storage problem (`StorageUnavailable`); a refused connection at
  start-up is `StoreOpenError`, one line naming `db_path` without its password.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import asyncpg

from pinsched.core.errors import StorageUnavailable
from pinsched.store.driver import (
    POSTGRESQL,
    IntegrityError,
    Op,
    Reader,
    Results,
    Row,
    numbered,
)
from pinsched.store.location import redact
from pinsched.store.opening import StoreOpenError
from pinsched.store.pg_schema import migrate

#: The session advisory lock a daemon holds on its database: exclusive alone, shared in a cluster.
LOCK_KEY = 0x70696E73  # "pins"
#: The advisory lock held while migrating (daemons starting together migrate once).
MIGRATE_KEY = 0x70696E6D  # "pinm"
#: The transaction-level advisory lock that orders write transactions (events in commit order).
EVENTS_KEY = 0x70696E65  # "pine"
#: The channel a transaction that wrote events notifies (`pinsched.feed` listens on it).
CHANNEL = "pinsched_events"
#: Whether write transactions take `EVENTS_KEY` (only `bench.event_order` turns it off, to
#: measure what the ordering costs).
ORDERED = True
#: How long a write transaction may sit idle (its daemon paused, SIGSTOPped, partitioned) before
#: the server ends its session, releasing `EVENTS_KEY` for the other daemons' writes.
HOLD_MS = 5000


def pg_problem(exc: BaseException) -> str | None:
    """What went wrong with PostgreSQL, in plain words; None for errors that are bugs."""
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError | IntegrityError):
        return None
    if isinstance(exc, asyncpg.InsufficientResourcesError):
        return f"the PostgreSQL server is out of resources (disk full?) ({exc})"
    if isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
        return "the PostgreSQL database is read-only (a standby?)"
    if isinstance(
        exc,
        asyncpg.PostgresConnectionError
        | asyncpg.OperatorInterventionError
        | asyncpg.InterfaceError
        | ConnectionError
        | OSError,
    ):
        return f"the connection to PostgreSQL failed ({exc})"
    if isinstance(exc, asyncpg.SerializationError | asyncpg.DeadlockDetectedError):
        return f"PostgreSQL aborted the transaction ({exc})"
    return None


def _rowcount(status: str) -> int:
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PgTx:
    """A `Tx` over the writer connection, inside the batch's transaction."""

    dialect = POSTGRESQL

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        try:
            return _rowcount(await self.conn.execute(numbered(sql), *args))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(str(exc)) from exc

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            await self.conn.executemany(numbered(sql), rows)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(str(exc)) from exc

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        try:
            rows: list[Row] = await self.conn.fetch(numbered(sql), *args)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(str(exc)) from exc
        return rows

    async def fetchone(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        try:
            row: Row | None = await self.conn.fetchrow(numbered(sql), *args)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(str(exc)) from exc
        return row


class PgReader:
    """Reads from the pool; a storage failure becomes `StorageUnavailable`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def execute_fetchall(self, sql: str, args: Iterable[Any] = ()) -> Iterable[Any]:
        try:
            rows: list[Any] = await self._pool.fetch(numbered(sql), *args)
        except Exception as exc:
            problem = pg_problem(exc)
            if problem is None:
                raise
            raise StorageUnavailable(f"{problem}; could not read") from exc
        return rows

    async def close(self) -> None:
        await self._pool.close()


class PgBackend:
    """One PostgreSQL database: the writer connection and a reader pool."""

    dialect = POSTGRESQL

    def __init__(self, writer: asyncpg.Connection, pool: asyncpg.Pool, url: str) -> None:
        self._writer = writer
        self._url = url
        self.reader: Reader = PgReader(pool)
        self._pool = pool
        self.reconnects = 0
        self.shared = False  # holds LOCK_KEY shared (a cluster), not exclusively
        #: Called with a batch's events just before its COMMIT (then perhaps never committed).
        self.before_commit: Callable[[list[Any]], None] = lambda events: None

    @classmethod
    async def open(cls, url: str, known_version: int, *, shared: bool = False) -> PgBackend:
        """Connect, take the database's lock (*shared*: beside the other daemons of a cluster)
        and migrate (under the migration lock); StoreOpenError otherwise."""
        where = f"db_path {redact(url)}"
        try:
            writer = await asyncpg.connect(url, timeout=10)
        except Exception as exc:  # refused, unknown host, bad password, no such database
            raise StoreOpenError(
                f"{where}: cannot connect to PostgreSQL: {_one_line(exc)}"
            ) from None
        pool: asyncpg.Pool | None = None
        try:
            if not await _hold(writer, shared):
                raise StoreOpenError(f"{where} {_REFUSED[shared]}")
            await writer.execute("SELECT pg_advisory_lock($1)", MIGRATE_KEY)  # waits for a peer
            try:
                await migrate(writer, known_version, where)
            finally:
                await writer.execute("SELECT pg_advisory_unlock($1)", MIGRATE_KEY)
            pool = await asyncpg.create_pool(url, min_size=1, max_size=4, timeout=10)
        except BaseException as exc:
            await writer.close()
            if isinstance(exc, StoreOpenError):
                raise
            problem = pg_problem(exc)
            if problem is not None:
                raise StoreOpenError(f"{where}: {problem}") from None
            raise
        assert pool is not None
        backend = cls(writer, pool, url)
        backend.shared = shared
        return backend

    async def _reconnect(self) -> None:
        """A new writer connection after the old one was lost (server restart, network): it
        takes the database's lock again, or another daemon took the database meanwhile."""
        writer = await asyncpg.connect(self._url, timeout=10)
        if not await _hold(writer, self.shared):
            await writer.close()
            raise ConnectionError(f"the database {_REFUSED[self.shared]}")
        self._writer = writer
        self.reconnects += 1

    async def run_batch(self, ops: Sequence[Op]) -> Results:
        if self._writer.is_closed():
            await self._reconnect()  # a failure fails this batch; the next one tries again
        conn = self._writer
        tx = PgTx(conn)
        results: Results = []
        outer = conn.transaction()
        await outer.start()
        written: list[Any] = []
        try:
            # First, before any row lock (no deadlock with a transaction waiting for it).
            if ORDERED:
                await conn.execute(
                    "SELECT set_config('idle_in_transaction_session_timeout', $2, true), "
                    "pg_advisory_xact_lock($1)",
                    EVENTS_KEY,
                    str(HOLD_MS),
                )
            for fn in ops:
                events: list[Any] = []
                savepoint = conn.transaction()
                await savepoint.start()
                try:
                    value = await fn(tx, events)
                except Exception as exc:
                    if pg_problem(exc) is not None:
                        raise  # the connection (or the server) failed: the batch is lost
                    await savepoint.rollback()
                    results.append((False, exc, []))
                else:
                    await savepoint.commit()
                    results.append((True, value, events))
                    written.extend(events)
            if written:
                await conn.execute("SELECT pg_notify($1, '')", CHANNEL)
                self.before_commit(written)
            await outer.commit()
        except BaseException:
            if not conn.is_closed():
                with contextlib.suppress(Exception):  # the original error says more
                    await outer.rollback()
            raise
        return results

    def storage_problem(self, exc: BaseException) -> str | None:
        return pg_problem(exc)

    async def committed_sequence(self) -> int:
        """The highest event sequence given so far, read while no write transaction is open
        (under `EVENTS_KEY`): every sequence up to it is committed or rolled back for good."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", EVENTS_KEY)
            value = await conn.fetchval(POSTGRESQL.last_sequence_sql)
        return int(value or 0)

    async def close(self) -> None:
        try:
            await self.reader.close()
        finally:
            await self._writer.close()


_REFUSED: Final = {
    False: "is in use by another pinsched (PostgreSQL advisory lock "
    f"{LOCK_KEY}): stop it, or run several daemons on one database with --cluster on each "
    "(PINSCHED_CLUSTER=true, `cluster = true`)",
    True: "is held by a pinsched that runs alone, without --cluster (PostgreSQL advisory lock "
    f"{LOCK_KEY}): stop it, or restart it with --cluster",
}


async def _hold(conn: asyncpg.Connection, shared: bool) -> bool:
    """Take the database's session lock on *conn* (shared by a cluster's daemons)."""
    take = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
    return bool(await conn.fetchval(f"SELECT {take}($1)", LOCK_KEY))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text
