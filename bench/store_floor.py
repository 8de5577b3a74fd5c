"""The store's floor: what inserting new jobs costs, with the store and with SQLite alone.

Three ways of writing the same jobs, 1,000 per transaction (as a BatchSchedulePins of 1,000),
each into a fresh database with the current schema:

* `store`: `Store.create_jobs`, the daemon's own write (job rows, their events, the request-id
  lookup, the group commit on the writer thread);
* `sqlite`: the same job and event rows, encoded beforehand, given to `sqlite3` with
  `executemany`: SQLite's own work for the schema's tables, indexes and triggers (no Python per
  row beyond the binding);
* `sqlite_bare`: the same, with the jobs table's secondary indexes and triggers dropped: the
  share of the schema's indexes is the difference.

CPU µs per job (the whole process, both threads) for each:

    python -m bench.store_floor --dir /tmp/x --jobs 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pinsched.core.accounts import Account, Pacing
from pinsched.core.jobs import ImageUrl, Job, JobState, PinSpec, Transition
from pinsched.service import new_job_id
from pinsched.store import Store
from pinsched.store import rows as store_rows

BATCH = 1000
ACCOUNT = "floor"
_EVENT_SQL = (
    "INSERT INTO events (job_id, account_id, from_state, to_state, time, reason, attempt, error) "
    "VALUES (?,?,?,?,?,?,?,?)"
)


def _jobs(n: int, start: int, now: datetime) -> list[Job]:
    pin = PinSpec(
        board_id="1001",
        media=ImageUrl(url="https://example.com/bench.jpg"),
        title="Benchmark pin",
        description="A pin a bench made.",
        link="https://example.com/bench",
        alt_text="bench",
    )
    out = []
    for i in range(start, start + n):
        when = now + timedelta(days=30, seconds=i)
        out.append(
            Job(
                id=new_job_id(now + timedelta(milliseconds=i)),
                account_id=ACCOUNT,
                pin=pin,
                state=JobState.PENDING,
                scheduled_at=when,
                planned_at=when,
                request_id=f"floor-{i}",
                request_hash="0" * 64,
                created_at=now,
                updated_at=now,
            )
        )
    return out


async def _empty_db(path: Path, now: datetime) -> None:
    store = await Store.open(path)
    try:
        await store.create_account(
            Account(
                id=ACCOUNT,
                access_token="x",
                pacing=Pacing(writes_per_minute=0),
                created_at=now,
                updated_at=now,
            )
        )
    finally:
        await store.close()


async def _store(path: Path, jobs: int, now: datetime) -> dict[str, Any]:
    store = await Store.open(path)
    try:
        entry = Transition(from_state=None, to_state=JobState.PENDING, time=now, reason="bench")
        await store.create_jobs(_jobs(BATCH, 10**8, now), [entry] * BATCH)  # warm
        batches = [_jobs(BATCH, i, now) for i in range(0, jobs, BATCH)]
        cpu0, t0 = time.process_time(), time.perf_counter()
        for batch in batches:
            await store.create_jobs(batch, [entry] * len(batch))
        return {"cpu_s": time.process_time() - cpu0, "seconds": time.perf_counter() - t0}
    finally:
        await store.close()


def _sqlite(path: Path, jobs: int, now: datetime, *, bare: bool) -> dict[str, Any]:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")  # as the store's writer has it
        if bare:
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE tbl_name = 'jobs' AND sql IS NOT NULL "
                "AND type IN ('index', 'trigger')"
            ).fetchall():
                kind = db.execute(
                    "SELECT type FROM sqlite_master WHERE name = ?", (name,)
                ).fetchone()[0]
                db.execute(f"DROP {kind.upper()} {name}")
        insert = (
            f"INSERT INTO jobs ({store_rows._JOB_COLUMNS}) "
            f"VALUES ({','.join('?' * store_rows._JOB_COLUMN_COUNT)})"
        )
        t_us = int((now - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1e6)
        batches = []
        for i in range(0, jobs, BATCH):
            batch = _jobs(BATCH, i, now)
            batches.append(
                (
                    [store_rows._job_row(j) for j in batch],
                    [(j.id, ACCOUNT, None, "PENDING", t_us, "bench", 0, None) for j in batch],
                )
            )
        cpu0, t0 = time.process_time(), time.perf_counter()
        for job_rows, event_rows in batches:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(insert, job_rows)
            db.executemany(_EVENT_SQL, event_rows)
            db.execute("COMMIT")
        return {"cpu_s": time.process_time() - cpu0, "seconds": time.perf_counter() - t0}
    finally:
        db.close()


async def run(folder: Path, jobs: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    out: dict[str, Any] = {"jobs": jobs, "batch": BATCH}
    for name in ("store", "sqlite", "sqlite_bare"):
        path = folder / f"floor-{name}.db"
        for suffix in ("", "-wal", "-shm", ".lock"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        await _empty_db(path, now)
        if name == "store":
            got = await _store(path, jobs, now)
        else:
            got = _sqlite(path, jobs, now, bare=name == "sqlite_bare")
        got["cpu_us_per_job"] = got["cpu_s"] * 1e6 / jobs
        out[name] = got
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.store_floor")
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--jobs", type=int, default=20_000)
    args = p.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    print(json.dumps(asyncio.run(run(args.dir, args.jobs))), flush=True)


if __name__ == "__main__":
    main()
