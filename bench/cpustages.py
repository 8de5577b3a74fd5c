"""Where the daemon's CPU goes, per stage: SchedulePin over gRPC and over HTTP, and a burst.

    python -m bench --only stages          (the `stages` scenario)

Each run attaches `py-spy record --gil` to the daemon (only the thread holding the GIL is
sampled: the one serial resource of a Python process), sorts the samples into the stages of the
path (`SCHEDULE_STAGES`, `BURST_STAGES`: the innermost frame that matches a rule wins, rules in
order) and shares the daemon's measured CPU seconds of the run out by those shares: CPU µs per
call (or per pin), per stage. CPU time, unlike calls per second, hardly depends on how busy a
shared machine is, so before/after comparisons of these rows hold across runs; the shares are
sampled (250 Hz), so a stage below ~2 % of the samples is noise.

Rows:
* SchedulePin over gRPC, 16 in flight (`bench.loadgen`): guard + metrics interceptors,
  validation, request hash, proto → domain, service, store insert, job → proto, the event sink
  (router, scheduler, metrics, bus), the gRPC runtime;
* SchedulePin over HTTP, 16 connections (`bench.http_loadgen`): the same, plus the door's own
  JSON ↔ proto and aiohttp;
* a burst of pins due at the same second across many accounts (`bench.seed` accounts, scheduled
  ahead with BatchSchedulePins; the profile covers the drain only): scheduler, dispatch, store
  commits, the Pinterest client and aiohttp's client, the event sink, logging.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import flame, procs
from bench.context import FREE, Ctx, pin_request, schedule_all
from bench.report import Row
from bench.seed import account_ids
from pinsched.v1 import account_pb2, job_pb2
from pinsched_client import AsyncClient

PROFILE_RATE = 250  # py-spy samples per second
Stages = tuple[tuple[str, tuple[str, ...]], ...]

#: Needles are `function (file` prefixes as py-spy prints frames.
SCHEDULE_STAGES: Stages = (
    ("request hash", ("request_hash (",)),
    (
        "validation",
        (
            "(pinsched/api/validation",
            "(pinsched/api/fields",
            "(pinsched/api/slots",
            "(pinsched/api/video_validation",
            "(pinsched/core/times",
            "_spec (",
        ),
    ),
    ("proto → domain", ("(pinsched/api/pin_input",)),
    ("job → proto", ("(pinsched/api/convert", "(pinsched/api/video_convert")),
    (
        "interceptors (guard, metrics)",
        ("(pinsched/api/guard", "(pinsched/ops/rpc_metrics", "(pinsched/api/status"),
    ),
    (
        "HTTP door: JSON ↔ proto",
        (
            "(pinsched/http/fastjson",
            "(pinsched/http/routes",
            "_json (pinsched/http/server",
            "_body (pinsched/http/server",
            "to_json (pinsched/http/server",
        ),
    ),
    ("HTTP door: aiohttp server", ("(pinsched/http", "aiohttp/", "multidict", "yarl")),
    (
        "event sink (router, scheduler, metrics, bus)",
        (
            "(pinsched/dispatch",
            "(pinsched/scheduler",
            "(pinsched/ops/metrics",
            "(pinsched/events",
            "_on_events (pinsched/app",
            "(pinsched/media",
            "prometheus_client",
        ),
    ),
    ("store insert (commit, writer thread)", ("(pinsched/store", "aiosqlite", "sqlite3")),
    ("service", ("(pinsched/service", "(pinsched/core")),
    ("servicer", ("(pinsched/api/servicers",)),
    ("gRPC runtime", ("grpc/", "cygrpc", "_server.pyx")),
)
BURST_STAGES: Stages = (
    ("logging", ("structlog", "(pinsched/ops/logs", "logging/")),
    ("Pinterest client (ours)", ("(pinsched/pinterest",)),
    ("aiohttp client", ("aiohttp/", "multidict", "yarl")),
    ("store commits (writer thread)", ("(pinsched/store", "aiosqlite", "sqlite3")),
    (
        "event sink (metrics, bus, webhooks)",
        (
            "(pinsched/ops/metrics",
            "(pinsched/events",
            "_on_events (pinsched/app",
            "(pinsched/webhooks",
            "prometheus_client",
            "(pinsched/media",
        ),
    ),
    (
        "dispatch (pace, decide, apply)",
        ("(pinsched/dispatch", "(pinsched/core", "(pinsched/accounts"),
    ),
    ("scheduler (due heap → QUEUED)", ("(pinsched/scheduler",)),
    ("gRPC (the bench's status polls)", ("grpc/", "cygrpc", "(pinsched/api")),
)


def stage_of(frames: list[str], stages: Stages) -> str:
    for frame in reversed(frames):
        for stage, needles in stages:
            if any(n in frame for n in needles):
                return stage
    return "event loop, native runtime (gRPC core, uvloop)"


def stage_profile(path: Path, stages: Stages, units: int, cpu_s: float) -> dict[str, float]:
    """CPU µs per unit (call, pin) per stage: *cpu_s* shared out by the stages' sample shares."""
    per: Counter[str] = Counter()
    for frames, count in flame.load(path):
        per[stage_of(frames, stages)] += count
    total = sum(per.values()) or 1
    scale = cpu_s * 1e6 / total / max(1, units)
    return {stage: round(c * scale, 1) for stage, c in per.most_common()}


class Spy:
    """`py-spy record --gil` attached to a pid until `stop()`."""

    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        spy = shutil.which("py-spy") or shutil.which(
            "py-spy", path=str(Path(sys.executable).parent)
        )
        self.proc = (
            None
            if spy is None
            else subprocess.Popen(
                [
                    spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--format",
                    "raw",
                    "--rate",
                    str(PROFILE_RATE),
                    "--nonblocking",
                    "--gil",
                    "-o",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )

    async def stop(self) -> Path | None:
        if self.proc is None:
            return None
        self.proc.send_signal(2)  # SIGINT: py-spy writes its file and exits
        await asyncio.to_thread(self.proc.wait, 30)
        return self.out if self.out.exists() else None


async def _profiled(
    ctx: Ctx, daemon: procs.Proc, name: str, stages: Stages, run: Any
) -> dict[str, Any]:
    """Run *run* (→ (units, details)) with py-spy on *daemon*; CPU per unit, per stage."""
    spy = Spy(daemon.pid, ctx.workdir / f"stages-{name}.txt")
    await asyncio.sleep(1.0)  # py-spy attached
    cpu0 = daemon.cpu_seconds()
    try:
        units, details = await run()
    finally:
        cpu = daemon.cpu_seconds() - cpu0
        out = await spy.stop()
    per_unit = cpu * 1e6 / max(1, units)
    got: dict[str, Any] = {"units": units, "daemon_cpu_s": cpu, "cpu_us_per_unit": per_unit}
    got.update(details)
    if out is None:
        got["skipped"] = "no profile (py-spy missing, or ptrace not permitted)"
    else:
        got["stages_us"] = stage_profile(out, stages, units, cpu)
    return got


def _row(group: str, name: str, unit: str, got: dict[str, Any]) -> Row:
    stages = got.get("stages_us")
    notes = (
        ", ".join(f"{k} {v:g}" for k, v in stages.items() if v >= 0.5)
        if stages
        else got.get("skipped", "-")
    )
    return Row(
        group,
        name,
        got["cpu_us_per_unit"],
        f"µs/{unit}",
        notes=f"daemon CPU per {unit}, by stage (µs, py-spy --gil shares): {notes}",
        extra=got,
    )


async def _schedule_rows(ctx: Ctx) -> None:
    daemon, port = await procs.start_daemon(ctx.workdir, ctx.db("stages"), ctx.sandbox_url)
    try:
        async with AsyncClient(f"127.0.0.1:{port}") as client:
            await client.create_account(
                "bench", account_pb2.Account(access_token=procs.SANDBOX_TOKEN, pacing=FREE)
            )

        seconds = str(4.0 if ctx.quick else 8.0)  # enough samples for the small stages

        async def grpc_run() -> tuple[int, dict[str, Any]]:
            got = await procs.run_child(
                [
                    "bench.loadgen",
                    "--target",
                    f"127.0.0.1:{port}",
                    "--account",
                    "bench",
                    "--concurrency",
                    "16",
                    "--duration",
                    seconds,
                    "--warmup",
                    "0.3",
                ],
                "loadgen",
                ctx.workdir,
            )
            return int(got["calls_all"]), {"calls_per_s": got["calls_per_s"]}

        async def http_run() -> tuple[int, dict[str, Any]]:
            got = await procs.run_child(
                [
                    "bench.http_loadgen",
                    "--url",
                    f"http://127.0.0.1:{daemon.info['http_port']}",
                    "--concurrency",
                    "16",
                    "--duration",
                    seconds,
                    "--warmup",
                    "0.3",
                ],
                "http-loadgen",
                ctx.workdir,
            )
            return int(got["calls_all"]), {"calls_per_s": got["calls_per_s"]}

        g = await _profiled(ctx, daemon, "grpc", SCHEDULE_STAGES, grpc_run)
        ctx.add(_row("stages", "SchedulePin over gRPC, 16 in flight", "call", g))
        h = await _profiled(ctx, daemon, "http", SCHEDULE_STAGES, http_run)
        ctx.add(_row("stages", "SchedulePin over HTTP, 16 connections", "call", h))
    finally:
        await daemon.stop()


async def _burst_row(ctx: Ctx) -> None:
    n, n_accounts = ctx.sizes.burst_jobs, ctx.sizes.burst_accounts
    db = ctx.db("stages-burst")
    await procs.run_child(
        [
            "bench.seed",
            "--db",
            str(db),
            "--jobs",
            "0",
            "--accounts",
            str(n_accounts),
            "--prefix",
            "burst",
            "--token",
            procs.SANDBOX_TOKEN,
        ],
        "seed",
        ctx.workdir,
    )
    daemon, port = await procs.start_daemon(ctx.workdir, db, ctx.sandbox_url, name="daemon-sb")
    try:
        accounts = account_ids(n_accounts, "burst")
        async with AsyncClient(f"127.0.0.1:{port}", timeout_s=60) as client:
            due_ts = int(time.time()) + 6
            due = datetime.fromtimestamp(due_ts, UTC)
            await schedule_all(
                client, [pin_request(accounts[i % n_accounts], due) for i in range(n)]
            )

            async def drain() -> tuple[int, dict[str, Any]]:
                await asyncio.sleep(max(0.0, due_ts - time.time()))
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    page = await client.list_jobs(
                        states=[
                            job_pb2.Job.STATE_PENDING,
                            job_pb2.Job.STATE_QUEUED,
                            job_pb2.Job.STATE_SUBMITTED,
                        ],
                        page_size=1,
                    )
                    if not page.jobs:
                        break
                    await asyncio.sleep(0.25)
                return n, {"jobs": n, "accounts": n_accounts}

            got = await _profiled(ctx, daemon, "burst", BURST_STAGES, drain)
    finally:
        await daemon.stop()
    ctx.add(_row("stages", f"burst of {n:,} across {n_accounts:,} accounts", "pin", got))


async def run(ctx: Ctx) -> None:
    await _schedule_rows(ctx)
    await _burst_row(ctx)
