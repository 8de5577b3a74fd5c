"""The PostgreSQL backend of the store (asyncpg): the same operations, transactions and group
commit as SQLite (`pinsched.store.driver`), over a writer connection and a pool of readers.

* One writer connection runs each batch in one transaction, every operation in its own savepoint,
  so the store's semantics are SQLite's: compare-and-set on `version`, the event log and the
  outbox in the job change's own transaction, events committed in sequence order.
* Several daemons share one database (`pinsched.cluster`: account leases say which one
  publishes an account). A session advisory lock (`LOCK_KEY`) is held only while migrating, so
  daemons starting together migrate once; PostgreSQL drops it with the connection, so a daemon
  killed mid-migration never leaves it behind.
* Errors: a constraint violation becomes `driver.IntegrityError`; a lost connection, a full disk
  or a server shutting down is a storage problem (`StorageUnavailable`); a refused connection at
  start-up is `StoreOpenError`, one line naming `db_path` without its password.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

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

#: The advisory lock held while migrating (`hashtext('pinsched')`-like, fixed).
LOCK_KEY = 0x70696E73  # "pins"


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
        self.reconnects = 0

    @classmethod
    async def open(cls, url: str, known_version: int) -> PgBackend:
        """Connect and migrate (under the migration lock); StoreOpenError otherwise."""
        where = f"db_path {redact(url)}"
        try:
            writer = await asyncpg.connect(url, timeout=10)
        except Exception as exc:  # refused, unknown host, bad password, no such database
            raise StoreOpenError(
                f"{where}: cannot connect to PostgreSQL: {_one_line(exc)}"
            ) from None
        pool: asyncpg.Pool | None = None
        try:
            await writer.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)  # waits for a peer
            try:
                await migrate(writer, known_version, where)
            finally:
                await writer.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
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
        return cls(writer, pool, url)

    async def _reconnect(self) -> None:
        """A new writer connection after the old one was lost (server restart, network)."""
        self._writer = await asyncpg.connect(self._url, timeout=10)
        self.reconnects += 1

    async def run_batch(self, ops: Sequence[Op]) -> Results:
        if self._writer.is_closed():
            await self._reconnect()  # a failure fails this batch; the next one tries again
        conn = self._writer
        tx = PgTx(conn)
        results: Results = []
        outer = conn.transaction()
        await outer.start()
        try:
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
            await outer.commit()
        except BaseException:
            if not conn.is_closed():
                with contextlib.suppress(Exception):  # the original error says more
                    await outer.rollback()
            raise
        return results

    def storage_problem(self, exc: BaseException) -> str | None:
        return pg_problem(exc)

    async def close(self) -> None:
        try:
            await self.reader.close()
        finally:
            await self._writer.close()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text
