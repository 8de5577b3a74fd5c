"""What every scenario gets: the run's sizes (quick or full), its work directory, the shared
sandbox, the rows and details it adds to, and a few gRPC helpers over the AsyncClient.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import procs
from bench.report import Row
from pinsched.v1 import account_pb2, job_pb2, scheduler_pb2
from pinsched_client import AsyncClient


@dataclass
class Sizes:
    """How much each scenario does; `quick()` is the CI smoke run (< 60 s in all)."""

    concurrency: tuple[int, ...] = (1, 16, 64, 256)
    batches: tuple[tuple[int, int], ...] = ((100, 4), (1000, 2))  # (batch size, in flight)
    throughput_s: float = 3.0
    pending: tuple[int, ...] = (10_000, 100_000, 1_000_000, 5_000_000)  # APScheduler: to 1M
    stream_jobs: int = 5000
    stream_s: float = 10.0
    burst_jobs: int = 5000
    burst_accounts: int = 1000
    watchers: int = 100
    watch_rates: tuple[int, ...] = (2000, 500, 100)
    watch_s: float = 3.0
    aps_add_jobs: int = 5000
    aps_pending: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    soak: bool = True
    import_rows: tuple[int, ...] = (20_000, 100_000)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            concurrency=(1, 64),
            batches=((100, 4),),
            throughput_s=1.0,
            pending=(10_000,),
            stream_jobs=300,
            stream_s=1.5,
            burst_jobs=1000,
            burst_accounts=200,
            watchers=10,
            watch_rates=(500,),
            watch_s=2.0,
            aps_add_jobs=1000,
            aps_pending=(10_000,),
            soak=False,
            import_rows=(10_000,),
        )


@dataclass
class Ctx:
    quick: bool
    sizes: Sizes
    workdir: Path
    sandbox_url: str = ""
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Figures of one scenario that another one compares against (e.g. APScheduler's add rate).
    shared: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def db(self, name: str) -> Path:
        return self.workdir / f"{name}.db"


FREE = account_pb2.Pacing(writes_per_minute=0)  # 0 = no cap: pacing not binding


async def create_accounts(
    client: AsyncClient, ids: Sequence[str], token: str, in_flight: int = 32
) -> None:
    sem = asyncio.Semaphore(in_flight)

    async def one(acct: str) -> None:
        async with sem:
            await client.create_account(acct, account_pb2.Account(access_token=token, pacing=FREE))

    await asyncio.gather(*(one(a) for a in ids))


def pin_request(account: str, when: datetime) -> scheduler_pb2.SchedulePinRequest:
    req = scheduler_pb2.SchedulePinRequest(
        account_id=account,
        pin=job_pb2.Pin(
            board_id=procs.SANDBOX_BOARD,
            title="Benchmark pin",
            description="A pin a bench made.",
            link="https://example.com/bench",
            alt_text="bench",
        ),
    )
    req.pin.media_source.image_url.url = "https://example.com/bench.jpg"
    req.scheduled_at.FromDatetime(when)
    return req


async def schedule_all(
    client: AsyncClient, requests: Sequence[scheduler_pb2.SchedulePinRequest], batch: int = 1000
) -> list[job_pb2.Job]:
    out: list[job_pb2.Job] = []
    for i in range(0, len(requests), batch):
        resp = await client.batch_schedule_pins(requests[i : i + batch])
        out.extend(resp.jobs)
    return out


async def get_jobs(
    client: AsyncClient,
    ids: Sequence[str],
    in_flight: int = 32,
) -> list[job_pb2.Job]:
    sem = asyncio.Semaphore(in_flight)

    async def one(job_id: str) -> job_pb2.Job:
        async with sem:
            return await client.get_job(job_id)

    return list(await asyncio.gather(*(one(i) for i in ids)))


async def wait_settled(client: AsyncClient, job_id: str, timeout_s: float) -> bool:
    """Poll one job (4 Hz) until it leaves PENDING/QUEUED/SUBMITTED; False on timeout."""
    deadline = time.monotonic() + timeout_s
    waiting = {job_pb2.Job.STATE_PENDING, job_pb2.Job.STATE_QUEUED, job_pb2.Job.STATE_SUBMITTED}
    while time.monotonic() < deadline:
        if (await client.get_job(job_id)).state not in waiting:
            return True
        await asyncio.sleep(0.25)
    return False


def late_ms(job: job_pb2.Job) -> float | None:
    if not job.HasField("late_by"):
        return None
    return job.late_by.seconds * 1000 + job.late_by.nanos / 1e6


def sent_time(job: job_pb2.Job) -> float | None:
    """planned_at + late_by, in epoch seconds (when the publish request left)."""
    late = late_ms(job)
    if late is None:
        return None
    return job.planned_at.seconds + job.planned_at.nanos / 1e9 + late / 1000
