"""Seed a pinsched database directly with the Store API: accounts and N PENDING jobs.

`Store.create_jobs` in large batches (one transaction per batch) writes exactly the rows and
event-log entries a SchedulePin would, without the RPC layer. The pending jobs are planned far
in the future (they are the "N others pending" that must not slow anything down).
Run as a child process so the bench runner's own memory stays small:

    python -m bench.seed --db X.db --jobs 1000000 --accounts 100 --token T
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pinsched.core.accounts import Account, Pacing
from pinsched.core.jobs import ImageUrl, Job, JobState, PinSpec, Transition
from pinsched.service import new_job_id
from pinsched.store import Store

#: No cap: pacing must not bind in the lateness and burst runs.
FREE_PACING = Pacing(writes_per_minute=0)


def account_ids(n: int, prefix: str = "acct") -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(n)]


async def seed(
    db: Path,
    *,
    jobs: int,
    accounts: int,
    token: str,
    board: str = "1001",
    days_ahead: float = 300.0,
    batch: int = 20_000,
    prefix: str = "acct",
) -> dict[str, float]:
    started = time.perf_counter()
    store = await Store.open(db)
    try:
        now = datetime.now(UTC)
        ids = account_ids(accounts, prefix)
        for acct in ids:
            await store.create_account(
                Account(
                    id=acct, access_token=token, pacing=FREE_PACING, created_at=now, updated_at=now
                )
            )
        pin = PinSpec(
            board_id=board,
            media=ImageUrl(url="https://example.com/seed.jpg"),
            title="Seeded pin",
            description="Pending far in the future.",
            link="https://example.com/seed",
            alt_text="seed",
        )
        base = now + timedelta(days=days_ahead)
        entry = Transition(from_state=None, to_state=JobState.PENDING, time=now, reason="scheduled")
        done = 0
        while done < jobs:
            n = min(batch, jobs - done)
            chunk = []
            for i in range(done, done + n):
                when = base + timedelta(seconds=i)
                chunk.append(
                    Job(
                        # Ids in creation order, as a backlog built over time has them: the
                        # primary key grows at its end (all in one millisecond, 5M random ids
                        # scatter the index and seeding slows to hours).
                        id=new_job_id(now + timedelta(milliseconds=i)),
                        account_id=ids[i % accounts],
                        pin=pin,
                        state=JobState.PENDING,
                        scheduled_at=when,
                        planned_at=when,
                        created_at=now,
                        updated_at=now,
                    )
                )
            await store.create_jobs(chunk, [entry] * n)
            done += n
    finally:
        await store.close()
    return {"jobs": jobs, "accounts": accounts, "seconds": time.perf_counter() - started}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.seed")
    p.add_argument("--db", required=True, type=Path)
    p.add_argument("--jobs", type=int, required=True)
    p.add_argument("--accounts", type=int, default=100)
    p.add_argument("--token", required=True)
    p.add_argument("--board", default="1001")
    p.add_argument("--prefix", default="acct")
    args = p.parse_args()
    result = asyncio.run(
        seed(
            args.db,
            jobs=args.jobs,
            accounts=args.accounts,
            token=args.token,
            board=args.board,
            prefix=args.prefix,
        )
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
