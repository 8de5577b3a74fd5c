"""The store's connection layer: one transaction / execute / fetch API over two engines.

The table-owning parts of the store (jobs, accounts, events, outbox, media, slots, pacers,
retention) are written once, as `async def op(tx, events)` functions over a `Tx`, with `?`
placeholders. A `Backend` runs a batch of such operations in one transaction, each inside its own
savepoint (group commit), and gives the store a reader for queries outside the writer:

* SQLite (`SqliteBackend`, aiosqlite): the batch runs on the aiosqlite thread in a single hop.
  `SqliteTx` answers at once (its `await`s never suspend), so the thread drives each operation's
  coroutine to its end with `drive()`: the same code, no event-loop round trip per statement.
* PostgreSQL (`pinsched.store.postgres`, asyncpg): the same operations awaited on the event loop,
  `?` translated to `$n` (`numbered`).

Only what differs between the dialects lives in `Dialect` (JSON paths, the event sequence); the
schemas are `pinsched.store.schema` and `pinsched.store.pg_schema`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, TypeVar

import aiosqlite

from pinsched.store.opening import GuardedReader, storage_problem

T = TypeVar("T")
Row = Sequence[Any]


class IntegrityError(sqlite3.IntegrityError):
    """A constraint of the schema refused a write (PostgreSQL's unique violations and the like,
    raised as SQLite's class so one `except sqlite3.IntegrityError` covers both backends)."""


class Tx(Protocol):
    """The writing transaction one store operation runs in (`?` placeholders)."""

    dialect: Dialect

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Row]: ...

    async def fetchone(self, sql: str, args: Sequence[Any] = ()) -> Row | None: ...


class Reader(Protocol):
    """Queries outside the writer (a storage failure becomes `StorageUnavailable`)."""

    async def execute_fetchall(self, sql: str, args: Iterable[Any] = ()) -> Iterable[Any]: ...

    async def close(self) -> None: ...


#: A store operation: reads and writes through the transaction, appends the events it committed.
Op = Callable[[Tx, list[Any]], Awaitable[Any]]
#: Per operation of a batch: (succeeded, its value or exception, the events it appended).
Results = list[tuple[bool, Any, list[Any]]]


class Backend(Protocol):
    """One database engine: runs batches of operations, reads, classifies its errors."""

    dialect: Dialect
    reader: Reader

    async def run_batch(self, ops: Sequence[Op]) -> Results:
        """Run *ops* in one transaction, each in its own savepoint; raise only when the
        transaction itself failed (nothing of the batch committed)."""
        ...

    def storage_problem(self, exc: BaseException) -> str | None:
        """*exc* in plain words when it is a storage failure; None for a bug or a refusal."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """The SQL that differs between SQLite and PostgreSQL."""

    name: str  # "sqlite" | "postgresql"

    def json_text(self, column: str, *keys: str) -> str:
        """The text (or number) at *keys* of the JSON in *column*; NULL when absent."""
        if self.name == "sqlite":
            return f"json_extract({column}, '$.{'.'.join(keys)}')"
        return f"(({column})::jsonb #>> '{{{','.join(keys)}}}')"

    def json_int(self, column: str, *keys: str) -> str:
        text = self.json_text(column, *keys)
        return text if self.name == "sqlite" else f"({text})::bigint"

    @property
    def last_sequence_sql(self) -> str:
        """The highest event sequence ever given (pruned events included)."""
        if self.name == "sqlite":
            return (
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), "
                "coalesce((SELECT max(seq) FROM events), 0))"
            )
        return (
            "SELECT greatest(coalesce(pg_sequence_last_value('events_seq_seq'::regclass), 0), "
            "coalesce((SELECT max(seq) FROM events), 0))"
        )


SQLITE = Dialect("sqlite")
POSTGRESQL = Dialect("postgresql")


@lru_cache(maxsize=2048)
def numbered(sql: str) -> str:
    """*sql* with its `?` placeholders as PostgreSQL's `$1, $2, …` (quoted text left alone)."""
    out: list[str] = []
    n = 0
    quoted = False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
        elif ch == "?" and not quoted:
            n += 1
            out.append(f"${n}")
            continue
        out.append(ch)
    return "".join(out)


# -------------------------------------------------------------------- SQLite


class SqliteTx:
    """A `Tx` over the writer thread's sqlite3 connection: every call answers at once."""

    dialect = SQLITE

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        return int(self.db.execute(sql, args).rowcount)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.db.executemany(sql, rows)

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        return self.db.execute(sql, args).fetchall()

    async def fetchone(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self.db.execute(sql, args).fetchone()
        return row


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run *coro* to its end without an event loop: it must never suspend (a `SqliteTx`
    operation only awaits calls that answer at once)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coro.close()
    raise RuntimeError("a store operation awaited something other than its transaction")


class SqliteBackend:
    """One SQLite file: a writer connection (its thread runs each batch) and a read connection."""

    dialect = SQLITE

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self.writer = writer  # tests reach it (`Store._writer`) to simulate storage failures
        self.reader: Reader = GuardedReader(reader)

    async def run_batch(self, ops: Sequence[Op]) -> Results:
        # One thread hop for the whole batch (aiosqlite's queue-a-callable primitive).
        results: Results = await self.writer._execute(  # type: ignore[no-untyped-call]
            _run_sqlite_batch, self.writer._conn, ops
        )
        return results

    def storage_problem(self, exc: BaseException) -> str | None:
        return storage_problem(exc)

    async def close(self) -> None:
        await self.reader.close()
        await self.writer.close()


def _run_sqlite_batch(db: sqlite3.Connection, ops: Sequence[Op]) -> Results:
    """In the writer thread: every operation in its own savepoint of one transaction."""
    results: Results = []
    tx = SqliteTx(db)
    db.execute("BEGIN IMMEDIATE")
    try:
        for fn in ops:
            events: list[Any] = []
            db.execute("SAVEPOINT op")
            try:
                value: Any = drive(fn(tx, events))  # type: ignore[arg-type]
            except Exception as exc:
                if not db.in_transaction:
                    raise  # SQLite rolled the whole transaction back (disk full, I/O error)
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
