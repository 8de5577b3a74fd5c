"""Retention soak: does the database stay flat while jobs keep being created and finished?

An in-process daemon and sandbox share a `FakeClock`; every hour of fake time `per_hour` pins
are scheduled within that hour (one in ten is cancelled before it is due, the others are
delivered), with `retention_days` of retention. After each hour the database is sampled: jobs
held, file size (pages times page size, free pages included: SQLite reuses them, the file never
shrinks) and used size (free pages excluded). Reported: bytes per job held, and the flatness of
the file size once a whole retention period went by (last ÷ that; 1.0 is flat). Also the slowest
pruning batch: how long one `Store.prune` operation ran in the writer thread (it must stay
small beside a group commit).

`python -m bench.retention [--hours H] [--per-hour N] [--retention-days D] [--image-kb K]`
prints the figures and, last, one JSON object. `tests/integration/test_retention.py` runs a small
size; `python -m bench --only retention` runs it among the other scenarios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from pinsched.app import Daemon
from pinsched.config import Config
from pinsched.core.jobs import ACTIVE_STATES
from pinsched.media import urlprobe
from pinsched.ops import logs
from pinsched.sandbox import Sandbox
from pinsched.testing import FakeClock
from pinsched.v1 import account_pb2, account_pb2_grpc, job_pb2, scheduler_pb2, scheduler_pb2_grpc

if TYPE_CHECKING:  # bench.context needs the bench extra (psutil); the test imports this module
    from bench.context import Ctx

ACCESS, REFRESH, BOARD = "pina_retention", "pinr_retention", "1001"
PNG = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True, slots=True)
class Sample:
    hour: int
    jobs: int  # jobs held in the store
    active: int  # of which not settled
    events: int
    file_bytes: int
    used_bytes: int


@dataclass
class Result:
    hours: int
    per_hour: int
    retention_days: int
    image_kb: int
    samples: list[Sample] = field(default_factory=list)
    prune_batch_ms_max: float = 0.0
    pruned: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def bytes_per_job(self) -> float:
        last = self.samples[-1]
        return last.used_bytes / max(1, last.jobs)

    @property
    def steady(self) -> Sample:
        """The first sample after a whole retention period (plus a pruning tick) went by."""
        return self.samples[min(len(self.samples) - 1, self.retention_days * 24 + 1)]

    @property
    def flatness(self) -> float:
        """File size at the end ÷ file size once retention took hold (1.0: flat)."""
        return self.samples[-1].file_bytes / max(1, self.steady.file_bytes)

    def summary(self) -> dict[str, Any]:
        return {
            "hours": self.hours,
            "per_hour": self.per_hour,
            "retention_days": self.retention_days,
            "image_kb": self.image_kb,
            "jobs_held": self.samples[-1].jobs,
            "file_bytes": self.samples[-1].file_bytes,
            "bytes_per_job": round(self.bytes_per_job),
            "flatness": round(self.flatness, 3),
            "prune_batch_ms_max": round(self.prune_batch_ms_max, 2),
            "pruned": self.pruned,
            "wall_s": round(self.wall_s, 1),
        }


def _sample(db: Path, hour: int) -> Sample:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:

        def one(sql: str) -> int:
            return int(conn.execute(sql).fetchone()[0] or 0)

        page = one("PRAGMA page_size")
        pages, free = one("PRAGMA page_count"), one("PRAGMA freelist_count")
        active = ",".join(f"'{s.value}'" for s in ACTIVE_STATES)
        return Sample(
            hour=hour,
            jobs=one("SELECT count(*) FROM jobs"),
            active=one(f"SELECT count(*) FROM jobs WHERE state IN ({active})"),
            events=one("SELECT count(*) FROM events"),
            file_bytes=pages * page,
            used_bytes=(pages - free) * page,
        )
    finally:
        conn.close()


async def run(
    workdir: Path,
    *,
    hours: int = 96,
    per_hour: int = 200,
    retention_days: int = 1,
    image_kb: int = 0,
) -> Result:
    """Run the scenario in *workdir*; see the module docstring."""
    started = time.perf_counter()
    result = Result(
        hours=hours, per_hour=per_hour, retention_days=retention_days, image_kb=image_kb
    )
    clock = FakeClock()
    # The pins' example.com images are probed ahead of their time (`checks.at_risk`); like the
    # test suite, probe loopback only: a resolver that cannot reach the outside world answers
    # each lookup in real time (~0.1 s here), which made this run take 40 minutes.
    allowed, urlprobe.ALLOWED_HOSTS = urlprobe.ALLOWED_HOSTS, frozenset({"127.0.0.1", "localhost"})
    try:
        return await _run(workdir, clock, result, started)
    finally:
        urlprobe.ALLOWED_HOSTS = allowed


async def _run(workdir: Path, clock: FakeClock, result: Result, started: float) -> Result:
    hours, per_hour = result.hours, result.per_hour
    retention_days, image_kb = result.retention_days, result.image_kb
    sandbox = Sandbox(now=clock.now)
    await sandbox.start()
    sandbox.add_user("acme", access_token=ACCESS, refresh_token=REFRESH, board_ids=[BOARD])
    db = workdir / "retention.db"
    daemon = Daemon(
        Config(
            listen="127.0.0.1:0",
            http_listen=None,
            db_path=str(db),
            pinterest_api_base=sandbox.base_url,
            log_level="warning",
            retention_days=retention_days,
        ),
        clock=clock,
    )
    await daemon.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{daemon.port}")
    try:
        jobs = scheduler_pb2_grpc.PinSchedulerStub(channel)
        await account_pb2_grpc.AccountServiceStub(channel).CreateAccount(
            account_pb2.CreateAccountRequest(
                account_id="acme",
                account=account_pb2.Account(
                    access_token=ACCESS,
                    refresh_token=REFRESH,
                    pacing=account_pb2.Pacing(writes_per_minute=0),
                ),
            )
        )
        for hour in range(hours):
            base = clock.now()
            for i in range(per_hour):
                media = job_pb2.MediaSource(
                    image_url=job_pb2.ImageUrl(url=f"https://example.com/{hour}/{i}.jpg")
                )
                if image_kb:
                    media = job_pb2.MediaSource(
                        image_base64=job_pb2.ImageBase64(
                            content_type="image/png",
                            data=PNG + f"{hour}:{i}".encode().ljust(image_kb * 1024, b"."),
                        )
                    )
                req = scheduler_pb2.SchedulePinRequest(
                    request_id=f"r-{hour}-{i}",
                    account_id="acme",
                    pin=job_pb2.Pin(board_id=BOARD, title=f"pin {hour}.{i}", media_source=media),
                )
                req.scheduled_at.FromDatetime(
                    base + timedelta(seconds=60 + (3000 * i) // max(1, per_hour))
                )
                job = await jobs.SchedulePin(req)
                if i % 10 == 9:
                    await jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=job.id))
            for _ in range(6):  # the hour in ten-minute steps
                await clock.advance(600)
                await daemon.activity.idle.wait()
            result.samples.append(await asyncio.to_thread(_sample, db, hour + 1))
        result.prune_batch_ms_max = daemon.store.prune_ms_max
        r = daemon.retention.total
        result.pruned = {"jobs": r.jobs, "events": r.events, "deliveries": r.deliveries}
    finally:
        await channel.close(None)
        await daemon.stop(grace_s=1.0)
        await sandbox.stop()
    result.wall_s = time.perf_counter() - started
    return result


def report(result: Result) -> str:
    lines = [f"{'hour':>5} {'jobs':>7} {'active':>6} {'events':>7} {'file KiB':>9} {'used KiB':>9}"]
    step = max(1, len(result.samples) // 12)
    for s in result.samples[::step] + result.samples[-1:]:
        lines.append(
            f"{s.hour:>5} {s.jobs:>7} {s.active:>6} {s.events:>7} "
            f"{s.file_bytes // 1024:>9} {s.used_bytes // 1024:>9}"
        )
    lines.append(
        f"bytes per job held {result.bytes_per_job:.0f}; file size end/steady "
        f"{result.flatness:.3f}; slowest prune batch {result.prune_batch_ms_max:.1f} ms"
    )
    return "\n".join(lines)


async def scenario(ctx: Ctx) -> None:
    """The `retention` scenario of `python -m bench`."""
    from bench.report import Row

    hours, per_hour = (30, 20) if ctx.quick else (96, 200)
    workdir = ctx.workdir / "retention"
    workdir.mkdir(parents=True, exist_ok=True)
    result = await run(workdir, hours=hours, per_hour=per_hour, retention_days=1)
    ctx.details["retention"] = {"samples": [asdict(s) for s in result.samples], **result.summary()}
    note = f"{hours} h of FakeClock time, {per_hour} jobs/h, retention 1 day"
    ctx.add(
        Row("retention", "bytes per job held (steady state)", result.bytes_per_job, "B", notes=note)
    )
    ctx.add(
        Row(
            "retention",
            "database file size, end / steady",
            result.flatness,
            "x",
            target="<= 1.05",
            passed=result.flatness <= 1.05,
            notes=note,
        )
    )
    ctx.add(
        Row(
            "retention",
            "slowest pruning batch",
            result.prune_batch_ms_max,
            "ms",
            notes="one Store.prune in the writer thread (<= 200 jobs + their events)",
        )
    )


def main() -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.retention", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--hours", type=int, default=96)
    p.add_argument("--per-hour", type=int, default=200)
    p.add_argument("--retention-days", type=int, default=1)
    p.add_argument("--image-kb", type=int, default=0, help="inline image size (0: image URLs)")
    args = p.parse_args()
    logs.configure("warning", "console")
    with tempfile.TemporaryDirectory(prefix="pinsched-retention-") as tmp:
        result = asyncio.run(
            run(
                Path(tmp),
                hours=args.hours,
                per_hour=args.per_hour,
                retention_days=args.retention_days,
                image_kb=args.image_kb,
            )
        )
    print(report(result))
    print(json.dumps({"samples": [asdict(s) for s in result.samples], **result.summary()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
