"""A burst: 5,000 pins due at the same second across 1,000 accounts (pacing not binding, sandbox
with zero latency). Missed count (not DELIVERED within 60 s), drain rate (pins sent ÷ time from
the due second to the last send) and lateness; APScheduler does the same in the same run, once
with its defaults (misfire_grace_time = 1 s) and once with misfires disabled.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from bench import procs
from bench.context import Ctx, late_ms, pin_request, schedule_all, sent_time
from bench.report import Row
from bench.seed import account_ids
from bench.stats import summarize
from pinsched.v1 import job_pb2
from pinsched_client import AsyncClient

DRAIN_TARGET = 2500.0  # pins/s
OPEN = [
    job_pb2.Job.STATE_PENDING,
    job_pb2.Job.STATE_QUEUED,
    job_pb2.Job.STATE_SUBMITTED,
    job_pb2.Job.STATE_RETRYING,
]


async def _pinsched(ctx: Ctx) -> dict[str, Any]:
    n, n_accounts = ctx.sizes.burst_jobs, ctx.sizes.burst_accounts
    db = ctx.db("burst")
    for suffix in ("", "-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
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
    daemon, port = await procs.start_daemon(ctx.workdir, db, ctx.sandbox_url, name="daemon-burst")
    try:
        accounts = account_ids(n_accounts, "burst")
        async with AsyncClient(f"127.0.0.1:{port}", timeout_s=60) as client:
            due_ts = int(time.time()) + 4
            due = datetime.fromtimestamp(due_ts, UTC)
            t0 = time.perf_counter()
            jobs = await schedule_all(
                client, [pin_request(accounts[i % n_accounts], due) for i in range(n)]
            )
            scheduled_s = time.perf_counter() - t0
            ahead_s = due_ts - time.time()
            cpu0 = daemon.cpu_seconds()
            sandbox = ctx.shared.get("sandbox")
            scpu0 = sandbox.cpu_seconds() if sandbox else 0.0
            await asyncio.sleep(max(0.0, ahead_s) + n / DRAIN_TARGET)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                page = await client.list_jobs(states=OPEN, page_size=1)
                if not page.jobs:
                    break
                await asyncio.sleep(0.25)
            cpu = daemon.cpu_seconds() - cpu0
            scpu = (sandbox.cpu_seconds() - scpu0) if sandbox else float("nan")
            done = [j async for j in client.iter_jobs(page_size=1000)]
    finally:
        await daemon.stop()
    delivered = [j for j in done if j.state == job_pb2.Job.STATE_DELIVERED]
    late = [x for j in delivered if (x := late_ms(j)) is not None]
    sent = [x for j in delivered if (x := sent_time(j)) is not None]
    drain_s = (max(sent) - due_ts) if sent else float("nan")
    return {
        "jobs": n,
        "accounts": n_accounts,
        "job_ids": len(jobs),
        "scheduled_in_s": scheduled_s,
        "scheduled_ahead_s": ahead_s,
        "delivered": len(delivered),
        "missed": n - len(delivered),
        "late_ms": summarize(late),
        "drain_s": drain_s,
        "drain_per_s": len(sent) / drain_s if sent else 0.0,
        "daemon_cpu_s": cpu,
        "sandbox_cpu_s": scpu,
        "states": _count_states(done),
    }


def _count_states(jobs: list[job_pb2.Job]) -> dict[str, int]:
    out: dict[str, int] = {}
    for j in jobs:
        name = job_pb2.Job.State.Name(j.state)
        out[name] = out.get(name, 0) + 1
    return out


async def _aps(ctx: Ctx, grace: str) -> dict[str, Any]:
    db = ctx.db(f"aps-burst-{grace}")
    for suffix in ("", "-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    return await procs.run_child(
        [
            "bench.apsched",
            "burst",
            "--db",
            str(db),
            "--url",
            ctx.sandbox_url,
            "--jobs",
            str(ctx.sizes.burst_jobs),
            "--grace",
            grace,
            "--lead",
            "3",
        ],
        f"aps-burst-{grace}",
        ctx.workdir,
        timeout_s=300,
    )


async def run(ctx: Ctx) -> None:
    p = await _pinsched(ctx)
    a_default = await _aps(ctx, "default")
    a_none = await _aps(ctx, "none")
    ctx.details["burst"] = {
        "pinsched": p,
        "apscheduler_default": a_default,
        "apscheduler_no_misfire": a_none,
    }
    n = p["jobs"]
    a_missed = a_default["missed"] + a_default["never_ran"]
    ctx.add(
        Row(
            "burst",
            f"{n:,} due at once across {p['accounts']:,} accounts: missed",
            p["missed"],
            "jobs",
            reference=a_missed,
            reference_name="APScheduler defaults",
            target="0",
            passed=p["missed"] == 0,
            ahead=p["missed"] <= a_missed,
            notes=(
                f"states {p['states']}; APScheduler with misfire_grace_time=None "
                f"missed {a_none['missed'] + a_none['never_ran']}"
            ),
        )
    )
    ratio = p["drain_per_s"] / a_none["drain_per_s"] if a_none["drain_per_s"] else None
    ctx.add(
        Row(
            "burst",
            f"{n:,} due at once: drain rate",
            p["drain_per_s"],
            "pins/s",
            reference=a_none["drain_per_s"],
            reference_name="APScheduler, no misfire",
            ratio=ratio,
            target=f"≥ {DRAIN_TARGET:,.0f} pins/s",
            passed=p["drain_per_s"] >= DRAIN_TARGET,
            ahead=(ratio or 0) > 1,
            notes=(
                f"last pin sent {p['drain_s']:.2f} s after the due second; CPU per pin: "
                f"daemon {p['daemon_cpu_s'] / max(1, n) * 1e6:.0f} µs, sandbox "
                f"{p['sandbox_cpu_s'] / max(1, n) * 1e6:.0f} µs"
            ),
        )
    )
    lat, alat = p["late_ms"], a_none["late_ms"]
    ctx.add(
        Row(
            "burst",
            f"{n:,} due at once: lateness p99",
            lat["p99"],
            "ms",
            reference=alat["p99"],
            reference_name="APScheduler, no misfire",
            ratio=lat["p99"] / alat["p99"] if alat["p99"] else None,
            ahead=lat["p99"] < alat["p99"],
            notes=f"p50 {lat['p50']:.0f} ms, max {lat['max']:.0f} ms "
            f"(APScheduler p50 {alat['p50']:.0f}, max {alat['max']:.0f} ms)",
        )
    )
