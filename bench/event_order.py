"""What the cluster event order costs on PostgreSQL: job-creating commits per second through one
and through two writers (two daemons' stores) on one database, with write transactions ordered
(`pinsched.store.postgres.EVENTS_KEY`, the default) and without (`ORDERED = False`: sequences
may then commit out of order, and a reader of the log can miss events).

In-process stores (no gRPC), `IN_FLIGHT` writes queued per store (group commit), on a throwaway
local cluster (`tests.backends.Cluster`) with fsync on. Skipped with a note without PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime
from typing import Any

from bench.context import Ctx
from bench.report import Row
from pinsched.core.accounts import Account
from pinsched.core.jobs import ImageUrl, Job, JobState, PinSpec, Transition
from pinsched.store import Store, postgres

IN_FLIGHT = 64
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
_ids = itertools.count()


def _job() -> tuple[Job, Transition]:
    job = Job(
        id=f"j{next(_ids)}",
        account_id="bench",
        state=JobState.PENDING,
        pin=PinSpec(board_id="1", media=ImageUrl(url="https://x/a.jpg"), title="t"),
        scheduled_at=NOW,
        planned_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )
    return job, Transition(from_state=None, to_state=JobState.PENDING, time=NOW, reason="new")


async def _drive(store: Store, writes: int) -> None:
    left = writes

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            job, entry = _job()
            await store.create_jobs([job], [entry])

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))


async def _rate(url: str, writers: int, writes: int, ordered: bool) -> dict[str, Any]:
    postgres.ORDERED = ordered
    stores = []
    try:
        for i in range(writers):
            postgres.LOCK_KEY = 0x62656E00 + i  # one start-up lock per writer
            stores.append(await Store.open(url))
        started = time.perf_counter()
        await asyncio.gather(*(_drive(s, writes // writers) for s in stores))
        took = time.perf_counter() - started
        batches = sum(s.batches for s in stores)
    finally:
        for s in stores:
            await s.close()
        postgres.ORDERED = True
    return {"writes_per_s": writes / took, "writes_per_batch": writes / max(1, batches)}


async def run(ctx: Ctx) -> None:
    from tests.backends import Cluster, pg_bin

    bindir = pg_bin()
    if bindir is None:
        ctx.notes.append("event_order: skipped (initdb/pg_ctl not installed)")
        return
    writes = 500 if ctx.quick else 4_000
    key = postgres.LOCK_KEY
    cluster = Cluster(bindir, durable=True)
    await asyncio.to_thread(cluster.start)
    out: dict[str, Any] = {}
    try:
        for writers in (1, 2):
            for ordered in (False, True, False, True):  # alternated: less drift between them
                name = await asyncio.to_thread(cluster.create_database)
                url = cluster.url(name)
                seed = await Store.open(url)
                await seed.create_account(
                    Account(id="bench", access_token="t", created_at=NOW, updated_at=NOW)
                )
                await seed.close()
                got = await _rate(url, writers, writes, ordered)
                runs = out.setdefault(f"{writers}:{ordered}", [])
                runs.append(got)
    finally:
        postgres.LOCK_KEY = key
        await asyncio.to_thread(cluster.stop)
    ctx.details["event_order"] = out
    for writers in (1, 2):
        best = {
            ordered: max(r["writes_per_s"] for r in out[f"{writers}:{ordered}"])
            for ordered in (False, True)
        }
        batch = max(r["writes_per_batch"] for r in out[f"{writers}:True"])
        ctx.add(
            Row(
                "event_order",
                f"job-creating commits on PostgreSQL, {writers} writer(s), ordered",
                best[True],
                "writes/s",
                reference=best[False],
                reference_name="unordered",
                ratio=best[True] / best[False] if best[False] else None,
                notes=f"{IN_FLIGHT} in flight per writer, ~{batch:.0f} writes/commit; fsync on",
            )
        )
