"""The alternative a Python user would pick: APScheduler 3 (`AsyncIOScheduler` +
`SQLAlchemyJobStore` on SQLite in WAL mode, `synchronous=FULL` like pinsched), doing the same
work, one child process per measurement (clean RSS, same uvloop runtime as the daemon):

    python -m bench.apsched add    --db X --jobs 5000
    python -m bench.apsched seed   --db X --jobs 1000000          (direct inserts, far future)
    python -m bench.apsched stream --db X --url SANDBOX --jobs 2000 --over 5 [--spawned-at T]
    python -m bench.apsched burst  --db X --url SANDBOX --jobs 5000 [--grace default|none]

Jobs are `date`-trigger jobs whose function POSTs the pin to the sandbox (`POST /v5/pins`) with
one long-lived aiohttp session; it records `sent - planned` just before the request leaves (the
same point where pinsched stamps `late_by`). Scheduler settings are APScheduler's defaults
(misfire_grace_time 1 s, coalesce off, AsyncIOExecutor) unless `--grace none` says otherwise.
Each mode prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import pickle
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import uvloop
from apscheduler.events import EVENT_JOB_MISSED, JobEvent
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import create_engine, event

from bench.stats import summarize

TOKEN = "pina_bench_access"
BODY = json.dumps(
    {
        "board_id": "1001",
        "title": "Benchmark pin",
        "description": "A pin a bench made.",
        "link": "https://example.com/bench",
        "alt_text": "bench",
        "media_source": {"source_type": "image_url", "url": "https://example.com/bench.jpg"},
    }
)

# Filled by the job function (module level: APScheduler stores jobs as textual references).
LATE_MS: list[float] = []
SENT_AT: list[float] = []
DONE = {"ok": 0, "failed": 0}
_session: aiohttp.ClientSession | None = None
_finished = asyncio.Event()
_expected = [0]


async def post_pin(url: str, planned_ts: float) -> None:
    """The job: POST one pin to the sandbox."""
    global _session
    now = time.time()
    LATE_MS.append((now - planned_ts) * 1000)
    SENT_AT.append(now)
    if _session is None:
        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
    try:
        async with _session.post(
            f"{url}/pins",
            data=BODY,
            headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
        ) as r:
            await r.read()
            DONE["ok" if r.status == 201 else "failed"] += 1
    except aiohttp.ClientError:
        DONE["failed"] += 1
    if DONE["ok"] + DONE["failed"] >= _expected[0]:
        _finished.set()


def engine_url(db: Path) -> str:
    return f"sqlite:///{db}"


def make_scheduler(db: Path, *, grace: str = "default") -> AsyncIOScheduler:
    engine = create_engine(engine_url(db))

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    defaults: dict[str, Any] = {}
    if grace == "none":
        defaults["misfire_grace_time"] = None
    return AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine)},
        job_defaults=defaults,
        timezone=UTC,
    )


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


async def add(args: argparse.Namespace) -> dict[str, Any]:
    """add_job N times on a running scheduler (each one a committed INSERT)."""
    sched = make_scheduler(args.db)
    sched.start()
    when = datetime.now(UTC) + timedelta(days=30)
    lat: list[float] = []
    t0 = time.perf_counter()
    for i in range(args.jobs):
        s = time.perf_counter()
        sched.add_job(
            post_pin, "date", run_date=when, args=[args.url, when.timestamp()], id=f"add-{i}"
        )
        lat.append((time.perf_counter() - s) * 1000)
        if i % 100 == 99:
            await asyncio.sleep(0)  # let the scheduler's wake-ups run, as in a real app
    elapsed = time.perf_counter() - t0
    sched.shutdown(wait=False)
    await asyncio.sleep(0)
    return {
        "jobs": args.jobs,
        "seconds": elapsed,
        "add_per_s": args.jobs / elapsed,
        "latency_ms": summarize(lat),
    }


async def seed(args: argparse.Namespace) -> dict[str, Any]:
    """Write N far-future jobs straight into APScheduler's table (one transaction)."""
    t0 = time.perf_counter()
    sched = make_scheduler(args.db)
    store: SQLAlchemyJobStore = sched._jobstores["default"]
    store.start(sched, "default")
    base = datetime.now(UTC) + timedelta(days=300)
    proto = Job(
        sched,
        id="proto",
        func=post_pin,
        trigger=DateTrigger(base, timezone=UTC),
        executor="default",
        args=[args.url, base.timestamp()],
        kwargs={},
        name="post_pin",
        misfire_grace_time=1,
        coalesce=False,
        max_instances=1,
        next_run_time=base,
    )
    state = proto.__getstate__()
    rows = []
    for i in range(args.jobs):
        when = base + timedelta(seconds=i)
        s = dict(
            state,
            id=f"seed-{i}",
            trigger=DateTrigger(when, timezone=UTC),
            args=(args.url, when.timestamp()),
            next_run_time=when,
        )
        rows.append(
            {
                "id": s["id"],
                "next_run_time": when.timestamp(),
                "job_state": pickle.dumps(s, store.pickle_protocol),
            }
        )
        if len(rows) >= 50_000:
            with store.engine.begin() as conn:
                conn.execute(store.jobs_t.insert(), rows)
            rows = []
    if rows:
        with store.engine.begin() as conn:
            conn.execute(store.jobs_t.insert(), rows)
    return {"jobs": args.jobs, "seconds": time.perf_counter() - t0}


async def _start_measured(
    args: argparse.Namespace,
    grace: str = "default",
) -> tuple[AsyncIOScheduler, dict[str, Any]]:
    """Start the scheduler on the persisted store; ready = start() returned and its first pass
    over the store (the `wakeup` it queues) has run."""
    sched = make_scheduler(args.db, grace=grace)
    sched.start()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    ready = time.time()
    info = {"ready_s": ready - args.spawned_at if args.spawned_at else None, "rss_ready": rss()}
    await asyncio.sleep(1.0)
    info["rss_settled"] = rss()
    return sched, info


async def _fire(
    sched: AsyncIOScheduler, url: str, times: list[datetime], timeout_s: float
) -> dict[str, Any]:
    missed = [0]

    def on_missed(_: JobEvent) -> None:
        missed[0] += 1
        if DONE["ok"] + DONE["failed"] + missed[0] >= _expected[0]:
            _finished.set()

    sched.add_listener(on_missed, EVENT_JOB_MISSED)
    _expected[0] = len(times)
    t0 = time.perf_counter()
    for i, when in enumerate(times):
        sched.add_job(post_pin, "date", run_date=when, args=[url, when.timestamp()], id=f"fire-{i}")
    add_s = time.perf_counter() - t0
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_finished.wait(), timeout_s)
    first = min(t.timestamp() for t in times)
    last_sent = max(SENT_AT) if SENT_AT else float("nan")
    return {
        "jobs": len(times),
        "scheduled_in_s": add_s,
        "ok": DONE["ok"],
        "failed": DONE["failed"],
        "missed": missed[0],
        "never_ran": len(times) - DONE["ok"] - DONE["failed"] - missed[0],
        "late_ms": summarize(LATE_MS),
        "drain_s": last_sent - first,
        "drain_per_s": (len(SENT_AT) / (last_sent - first)) if SENT_AT else 0.0,
    }


async def stream(args: argparse.Namespace) -> dict[str, Any]:
    """Restart on N persisted jobs (ready time, RSS), then K jobs due over `--over` seconds."""
    sched, info = await _start_measured(args)
    if not args.jobs:
        sched.shutdown(wait=False)
        return info
    start = datetime.now(UTC) + timedelta(seconds=args.lead)
    step = args.over / max(1, args.jobs)
    times = [start + timedelta(seconds=i * step) for i in range(args.jobs)]
    fired = await _fire(sched, args.url, times, timeout_s=args.lead + args.over + 60)
    info.update(fired, rss_after=rss())
    sched.shutdown(wait=False)
    return info


async def burst(args: argparse.Namespace) -> dict[str, Any]:
    """K jobs all due at the same whole second."""
    sched = make_scheduler(args.db, grace=args.grace)
    sched.start()
    due = datetime.fromtimestamp(int(time.time()) + 1 + args.lead, UTC)
    out = await _fire(sched, args.url, [due] * args.jobs, timeout_s=args.lead + 120)
    out["grace"] = args.grace
    sched.shutdown(wait=False)
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.apsched")
    p.add_argument("mode", choices=["add", "seed", "stream", "burst"])
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--url", default="http://127.0.0.1:9/v5")
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--over", type=float, default=5.0)
    p.add_argument("--lead", type=float, default=2.0)
    p.add_argument("--grace", choices=["default", "none"], default="default")
    p.add_argument("--spawned-at", type=float, default=0.0)
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    fn = {"add": add, "seed": seed, "stream": stream, "burst": burst}[args.mode]

    async def go() -> dict[str, Any]:
        try:
            return await fn(args)
        finally:
            if _session is not None:
                await _session.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        print(json.dumps(runner.run(go())), flush=True)


if __name__ == "__main__":
    main()
