"""What `pinsched cluster status` reads, straight from the database, and the takeover history.

* `record_takeover`: the one write, called by `leases.take_lease` in its own transaction when an
  account's lease passes from one daemon to another; it keeps the last `TAKEOVERS_KEPT` rows.
* `read_cluster`: a read-only snapshot (members, account leases, recent takeovers) that opens
  its own connection: it takes no lock, migrates nothing and works while every daemon is down.
  On SQLite it also says which process holds the file's lock (`SqliteHolder`): one daemon per
  SQLite file, so there is no membership to show.

Every failure to read (no such file, unreachable server, refused login, no pinsched schema, a
newer schema) is `StoreOpenError`, one line naming the database without its password.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from pinsched.store import codec
from pinsched.store.driver import Tx
from pinsched.store.location import is_postgres, redact
from pinsched.store.opening import StoreOpenError, inspect, storage_problem

#: How many takeover rows `lease_takeovers` keeps (the oldest go as new ones come).
TAKEOVERS_KEPT: Final = 500


async def record_takeover(
    db: Tx, account_id: str, before: Sequence[object], new_owner: str, now_us: int
) -> None:
    """Append a takeover of *account_id* from *before* (its lease row: owner, epoch,
    expires_at) to *new_owner* to the history, and drop what is past `TAKEOVERS_KEPT`."""
    reason = "released" if int(str(before[2])) == 0 else "expired"
    await db.execute(
        "INSERT INTO lease_takeovers (account_id, previous_owner, new_owner, epoch, reason, at) "
        "VALUES (?,?,?,?,?,?)",
        (account_id, str(before[0]), new_owner, int(str(before[1])) + 1, reason, now_us),
    )
    await db.execute(
        "DELETE FROM lease_takeovers WHERE id <= (SELECT max(id) FROM lease_takeovers) - ?",
        (TAKEOVERS_KEPT,),
    )


@dataclass(frozen=True, slots=True)
class Member:
    member_id: str
    started_at_us: int
    alive_until_us: int


@dataclass(frozen=True, slots=True)
class LeaseRow:
    account_id: str
    owner: str
    epoch: int
    expires_at_us: int


@dataclass(frozen=True, slots=True)
class Takeover:
    account_id: str
    previous_owner: str
    new_owner: str
    epoch: int
    reason: str  # "expired" (the owner stopped renewing) or "released" (rebalance, shutdown)
    at_us: int


@dataclass(frozen=True, slots=True)
class SqliteHolder:
    """The SQLite file's daemon: the pid its lock file names, and whether the lock is held."""

    pid: int | None
    running: bool | None  # None: this system cannot tell (no /proc/locks)


@dataclass(frozen=True, slots=True)
class ClusterView:
    backend: str  # "sqlite" or "postgresql"
    database: str  # without a password
    members: list[Member]
    leases: list[LeaseRow]
    takeovers: list[Takeover]  # newest first
    holder: SqliteHolder | None = None


_MEMBERS: Final = "SELECT member_id, started_at, alive_until FROM members ORDER BY member_id"
_LEASES: Final = (
    "SELECT account_id, owner, epoch, expires_at FROM account_leases ORDER BY account_id"
)
_TAKEOVERS: Final = (
    "SELECT account_id, previous_owner, new_owner, epoch, reason, at FROM lease_takeovers "
    "ORDER BY id DESC LIMIT {limit}"
)


def _view(
    backend: str, database: str, rows: dict[str, list[Any]], holder: SqliteHolder | None = None
) -> ClusterView:
    return ClusterView(
        backend=backend,
        database=database,
        members=[Member(str(r[0]), int(r[1]), int(r[2])) for r in rows.get("members", [])],
        leases=[
            LeaseRow(str(r[0]), str(r[1]), int(r[2]), int(r[3]))
            for r in rows.get("account_leases", [])
        ],
        takeovers=[
            Takeover(str(r[0]), str(r[1]), str(r[2]), int(r[3]), str(r[4]), int(r[5]))
            for r in rows.get("lease_takeovers", [])
        ],
        holder=holder,
    )


async def read_cluster(
    db: str, known_version: int, *, takeovers: int, timeout_s: float
) -> ClusterView:
    """A snapshot of *db* (a SQLite path or a PostgreSQL URL): members, leases, and the
    *takeovers* most recent takeovers; StoreOpenError when it cannot be read."""
    if is_postgres(db):
        return await _read_postgres(db, known_version, takeovers, timeout_s)
    return await asyncio.to_thread(_read_sqlite, Path(db), known_version, takeovers)


async def _read_postgres(db: str, known: int, limit: int, timeout_s: float) -> ClusterView:
    import asyncpg

    where = f"database {redact(db)}"
    try:
        conn = await asyncpg.connect(db, timeout=timeout_s)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        cause = str(exc).strip() or type(exc).__name__
        raise StoreOpenError(f"{where}: cannot connect: {cause}") from None
    try:
        names = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        tables = {str(r[0]) for r in names}
        if "pinsched_schema" not in tables:
            raise StoreOpenError(f"{where}: no pinsched schema (no daemon has opened it yet)")
        version = await conn.fetchval("SELECT max(version) FROM pinsched_schema")
        _check_version(where, version, known)
        rows: dict[str, list[Any]] = {}
        for table, sql in _queries(limit):
            if table in tables:
                rows[table] = list(await conn.fetch(sql))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreOpenError(f"{where}: cannot read: {exc}") from None
    finally:
        await conn.close()
    return _view("postgresql", redact(db), rows)


def _read_sqlite(path: Path, known: int, limit: int) -> ClusterView:
    where = f"database {path}"
    if not path.is_file():
        raise StoreOpenError(f"{where}: no such file (give the daemon's --db)")
    inspect(path, known)  # a SQLite file, readable, a schema this pinsched knows
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        try:
            tables = {
                str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            rows = {t: conn.execute(sql).fetchall() for t, sql in _queries(limit) if t in tables}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreOpenError(f"{where}: {storage_problem(exc) or exc}") from None
    return _view("sqlite", str(path), rows, _holder(path))


def _queries(limit: int) -> list[tuple[str, str]]:
    return [
        ("members", _MEMBERS),
        ("account_leases", _LEASES),
        ("lease_takeovers", _TAKEOVERS.format(limit=min(int(limit), TAKEOVERS_KEPT))),
    ]


def _check_version(where: str, version: object, known: int) -> None:
    if isinstance(version, int) and version > known:
        raise StoreOpenError(
            f"{where}: schema version {version} is newer than this pinsched knows ({known}); "
            "upgrade pinsched"
        )


def _holder(path: Path) -> SqliteHolder:
    """Who holds `<db>.lock` (`opening.DatabaseLock`), read without touching the lock."""
    lock = path.with_name(path.name + ".lock")
    try:
        text = lock.read_text(encoding="ascii", errors="replace").strip()
        inode = os.stat(lock).st_ino
    except OSError:
        return SqliteHolder(None, False)
    pid = int(text) if text.isdigit() else None
    try:
        table = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return SqliteHolder(pid, None)
    # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF": the inode is the third field of the id.
    held = any(
        len(f) > 5 and f[1] == "FLOCK" and f[5].rsplit(":", 1)[-1] == str(inode)
        for f in (line.split() for line in table.splitlines())
    )
    return SqliteHolder(pid, held)


def us_to_iso(us: int) -> str:
    """A stored microsecond time as ISO 8601 UTC (`-` for 0: never / released)."""
    if us <= 0:
        return "-"
    return codec.from_us(us).isoformat().replace("+00:00", "Z")
