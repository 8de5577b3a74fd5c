"""Opening the database safely: one daemon per SQLite file, and start-up checks that refuse a
database this pinsched cannot use before anything is written to it.

* `DatabaseLock`: an exclusive `flock` on `<db>.lock` beside the database, held for as long as the
  store is open; the holder's pid is written in it so a second daemon can name it. The kernel
  drops the lock when the process dies (even on SIGKILL), so a crash never leaves a stale lock.
  The lock file is never deleted (deleting it would let two processes lock two different files).
* `inspect`: read-only look at an existing file (a SQLite header, a readable schema, a schema
  version this pinsched knows) *before* the writer connection switches it to WAL or migrates it.
* `StoreOpenError`: every start-up refusal, one line naming the file and what to do.
* `storage_problem`: a plain-words description of a SQLite error (disk full, read-only, I/O);
  `GuardedReader` turns such an error on the read connection into `StorageUnavailable`.

It does not open the store's connections (`Store.open` does).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import aiosqlite

from pinsched.core.errors import StorageUnavailable

SQLITE_HEADER: Final = b"SQLite format 3\x00"

# Primary SQLite result codes (https://sqlite.org/rescode.html).
_PROBLEMS: Final[dict[int, str]] = {
    sqlite3.SQLITE_FULL: "the disk holding the database is full",
    sqlite3.SQLITE_READONLY: "the database is read-only (read-only file or mount)",
    sqlite3.SQLITE_IOERR: "an I/O error occurred on the database file",
    sqlite3.SQLITE_CORRUPT: "the database file is corrupted",
    sqlite3.SQLITE_NOTADB: "the file is not a SQLite database",
    sqlite3.SQLITE_CANTOPEN: "the database file cannot be opened",
    sqlite3.SQLITE_BUSY: "the database is busy (locked by another connection)",
    sqlite3.SQLITE_LOCKED: "the database is locked",
    sqlite3.SQLITE_NOMEM: "SQLite ran out of memory",
    sqlite3.SQLITE_PERM: "access to the database file was denied",
    sqlite3.SQLITE_PROTOCOL: "the database lock protocol failed",
}


class StoreOpenError(RuntimeError):
    """The database cannot be used; the message is one line naming the file and the cause."""


def storage_problem(exc: BaseException) -> str | None:
    """What went wrong with the storage, in plain words; None for errors that are bugs
    (constraint violations, misuse of the API)."""
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return None
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and (code & 0xFF) in _PROBLEMS:
            return f"{_PROBLEMS[code & 0xFF]} ({exc})"
        if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
            return f"storage error ({exc})"
        return None
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return f"the disk holding the database is full ({exc.strerror})"
        if exc.errno == errno.EROFS:
            return "the database is on a read-only file system"
        return f"I/O error ({exc.strerror or exc})"
    return None


class DatabaseLock:
    """An exclusive lock on `<database>.lock`: one pinsched per SQLite file."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise StoreOpenError naming the holder's pid."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreOpenError(
                f"database {self.db_path}: cannot create the lock file {self.path}: "
                f"{storage_problem(exc)}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise StoreOpenError(
                f"database {self.db_path} is in use by another pinsched (pid {holder}, lock "
                f"file {self.path}); stop that daemon first, or give this one another --db"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StoreOpenError(
                f"database {self.db_path}: cannot lock {self.path}: {exc.strerror}"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the lock holds without the pid; a second daemon then shows "unknown"
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


def check_directory(db_path: Path) -> None:
    """Refuse a database whose directory is missing or not writable (nothing is created)."""
    parent = db_path.parent
    if not parent.is_dir():
        raise StoreOpenError(
            f"database {db_path}: the directory {parent} does not exist; create it first"
        )
    if not os.access(parent, os.W_OK):
        # SQLite needs the directory for its -wal and -shm files.
        raise StoreOpenError(
            f"database {db_path}: the directory {parent} is not writable (read-only mount or "
            "permissions); pinsched needs it for the database and its -wal file"
        )


def inspect(db_path: Path, known_version: int) -> None:
    """Check an existing database read-only: a SQLite file, a readable schema and a schema
    version at most *known_version*. Writes nothing (no WAL switch, no migration)."""
    if not db_path.exists():
        return
    if not db_path.is_file():
        raise StoreOpenError(f"database {db_path}: not a regular file")
    try:
        with db_path.open("rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreOpenError(f"database {db_path}: cannot read it: {exc.strerror}") from None
    if not header:
        return  # an empty file: SQLite makes a new database of it
    if header != SQLITE_HEADER:
        raise StoreOpenError(
            f"database {db_path}: not a SQLite database (corrupted, or another file); restore "
            "it from a backup or give another --db"
        )
    uri = f"file:{quote(str(db_path.resolve()))}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreOpenError(f"database {db_path}: {storage_problem(exc) or exc}") from None
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise StoreOpenError(
            f"database {db_path}: {storage_problem(exc) or exc}; restore it from a backup"
        ) from None
    finally:
        db.close()
    if version > known_version:
        raise StoreOpenError(
            f"database {db_path}: schema version {version} is newer than this pinsched knows "
            f"({known_version}); it was written by a newer pinsched: upgrade pinsched"
        )


class GuardedReader:
    """The read connection; a storage failure becomes `StorageUnavailable`."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute_fetchall(self, sql: str, args: Iterable[Any] = ()) -> Iterable[Any]:
        try:
            return await self._conn.execute_fetchall(sql, args)
        except sqlite3.Error as exc:
            problem = storage_problem(exc)
            if problem is None:
                raise
            raise StorageUnavailable(f"{problem}; could not read") from exc

    async def close(self) -> None:
        await self._conn.close()
