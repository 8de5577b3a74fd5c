"""Dispatch lateness (sent - planned), memory and restart time with N jobs pending, and the same
work done by APScheduler.

For each N (10k, 100k, 1M): seed the database directly (Store API, `bench.seed`) with N jobs
due far in the future across 100 accounts whose pacing does not bind; start the daemon, stop
it, start it again (the restart: `ready_s` is exec → the `pinsched_ready` log line), read its
RSS; then schedule a stream of K jobs due over a few seconds and read each delivered job's
`late_by` (GetJob). APScheduler gets the same N persisted jobs (seeded into its own table) and
the same stream against the same sandbox.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import procs
from bench.context import Ctx, get_jobs, late_ms, pin_request, schedule_all, wait_settled
from bench.report import Row
from bench.seed import account_ids
from bench.stats import summarize
from pinsched.v1 import job_pb2
from pinsched_client import AsyncClient

ACCOUNTS = 100
LATE_P99_MS = 5.0
FLAT_RATIO = 1.5
RSS_1M_MB = 400.0
READY_1M_S = 3.0


def _label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k" if n else "0"


async def _seed(ctx: Ctx, name: str, jobs: int) -> dict[str, Any]:
    db = ctx.db(name)
    for suffix in ("", "-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    return await procs.run_child(
        [
            "bench.seed",
            "--db",
            str(db),
            "--jobs",
            str(jobs),
            "--accounts",
            str(ACCOUNTS),
            "--token",
            procs.SANDBOX_TOKEN,
        ],
        "seed",
        ctx.workdir,
        timeout_s=max(1200.0, jobs / 2000),  # 5M took 567-573 s on the 2-core machine
    )


async def _stream(ctx: Ctx, port: int) -> dict[str, Any]:
    """K jobs due evenly over S seconds starting 2 s from now; their late_by once delivered."""
    k, over = ctx.sizes.stream_jobs, ctx.sizes.stream_s
    accounts = account_ids(ACCOUNTS)
    async with AsyncClient(f"127.0.0.1:{port}", timeout_s=60) as client:
        start = datetime.now(UTC) + timedelta(seconds=2.0)
        reqs = [
            pin_request(accounts[i % ACCOUNTS], start + timedelta(seconds=i * over / k))
            for i in range(k)
        ]
        t0 = time.perf_counter()
        jobs = await schedule_all(client, reqs)
        scheduled_s = time.perf_counter() - t0
        await asyncio.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds() + over + 0.5))
        last = max(jobs, key=lambda j: j.planned_at.ToDatetime(tzinfo=UTC))
        await wait_settled(client, last.id, timeout_s=60)
        done = await get_jobs(client, [j.id for j in jobs])
    late = [
        x for j in done if j.state == job_pb2.Job.STATE_DELIVERED if (x := late_ms(j)) is not None
    ]
    return {
        "jobs": k,
        "over_s": over,
        "scheduled_in_s": scheduled_s,
        "delivered": len(late),
        "missed": k - len(late),
        "late_ms": summarize(late),
    }


async def _pinsched_size(ctx: Ctx, n: int) -> dict[str, Any]:
    name = f"pending-{_label(n)}"
    out: dict[str, Any] = {"seed": await _seed(ctx, name, n)}
    first, _ = await procs.start_daemon(
        ctx.workdir, ctx.db(name), ctx.sandbox_url, timeout_s=600, name=f"daemon-{name}"
    )
    out["first_start_s"] = first.info["ready_s"]
    out["recovered"] = first.info["recovered"]
    await first.stop()
    daemon, port = await procs.start_daemon(
        ctx.workdir, ctx.db(name), ctx.sandbox_url, timeout_s=600, name=f"daemon-{name}"
    )
    try:
        out["ready_s"] = daemon.info["ready_s"]
        out["rss_ready"] = daemon.rss_bytes()
        await asyncio.sleep(1.0)
        out["rss_settled"] = daemon.rss_bytes()
        if n:
            out["stream"] = await _stream(ctx, port)
            out["rss_after_stream"] = daemon.rss_bytes()
    finally:
        await daemon.stop()
    return out


async def _aps_size(ctx: Ctx, n: int) -> dict[str, Any]:
    db = ctx.db(f"aps-pending-{_label(n)}")
    for suffix in ("", "-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    seeded = await procs.run_child(
        ["bench.apsched", "seed", "--db", str(db), "--jobs", str(n)],
        "aps-seed",
        ctx.workdir,
        timeout_s=1200,
    )
    args = [
        "bench.apsched",
        "stream",
        "--db",
        str(db),
        "--url",
        ctx.sandbox_url,
        "--over",
        str(ctx.sizes.stream_s),
    ]
    if n:
        args += ["--jobs", str(ctx.sizes.stream_jobs)]
    else:
        args += ["--jobs", "0"]
    out = await procs.run_child(
        [*args, "--spawned-at", str(time.time())], "aps-stream", ctx.workdir, timeout_s=600
    )
    out["seed"] = seeded
    return out


async def run(ctx: Ctx) -> None:
    sizes = ctx.sizes.pending
    pin: dict[int, dict[str, Any]] = {0: await _pinsched_size(ctx, 0)}
    aps: dict[int, dict[str, Any]] = {0: await _aps_size(ctx, 0)}
    for n in sizes:
        pin[n] = await _pinsched_size(ctx, n)
        if n in ctx.sizes.aps_pending:  # APScheduler past 1M would take hours to seed
            aps[n] = await _aps_size(ctx, n)
    ctx.details["pending"] = {"pinsched": pin, "apscheduler": aps}
    base_rss, aps_base = pin[0]["rss_settled"], aps[0]["rss_settled"]
    p99s: dict[int, float] = {}
    for n in sizes:
        p, a = pin[n], aps.get(n)
        lat = p["stream"]["late_ms"]
        p99s[n] = lat["p99"]
        ok = lat["p99"] < LATE_P99_MS and p["stream"]["missed"] == 0
        notes = f"p50 {lat['p50']:.2f}, max {lat['max']:.1f} ms, missed {p['stream']['missed']}"
        if a is not None:
            alat = a["late_ms"]
            notes += (
                f" (APScheduler p50 {alat['p50']:.2f}, max {alat['max']:.1f} ms, missed "
                f"{a['missed'] + a['never_ran']})"
            )
        ctx.add(
            Row(
                "lateness",
                f"spread: {p['stream']['jobs']:,} due over {p['stream']['over_s']:g} s, "
                f"{_label(n)} pending",
                lat["p99"],
                "ms",
                reference=None if a is None else a["late_ms"]["p99"],
                reference_name="" if a is None else "APScheduler",
                ratio=(a["late_ms"]["p99"] and lat["p99"] / a["late_ms"]["p99"]) if a else None,
                target=f"p99 < {LATE_P99_MS:g} ms, none missed",
                passed=ok,
                ahead=None if a is None else lat["p99"] < a["late_ms"]["p99"],
                notes=notes,
            )
        )
    if len(sizes) > 1:
        lo, hi = min(sizes), max(sizes)
        growth = p99s[hi] / p99s[lo] if p99s[lo] else None
        ctx.add(
            Row(
                "lateness",
                f"p99 flat from {_label(lo)} to {_label(hi)} pending",
                growth,
                "x",
                target=f"≤ {FLAT_RATIO:g}x ",
                passed=None if growth is None else growth <= FLAT_RATIO,
                notes=f"p99 {p99s[lo]:.2f} ms → {p99s[hi]:.2f} ms",
            )
        )
    for n in sizes:
        if n < 100_000 and not ctx.quick:
            continue
        p, a = pin[n], aps.get(n)
        mb = p["rss_settled"] / 1e6
        per_job = (p["rss_settled"] - base_rss) / n
        aps_mb = None if a is None else a["rss_settled"] / 1e6
        target, passed = "", None
        if n >= 1_000_000:
            target, passed = f"< {RSS_1M_MB:g} MB", mb < RSS_1M_MB
        notes = f"{per_job:,.0f} B/job over a {base_rss / 1e6:.0f} MB baseline"
        if a is not None:
            notes += f" (APScheduler {(a['rss_settled'] - aps_base) / n:,.0f} B/job)"
        ctx.add(
            Row(
                "memory",
                f"daemon RSS, {_label(n)} pending",
                mb,
                "MB",
                reference=aps_mb,
                reference_name="" if aps_mb is None else "APScheduler",
                ratio=None if aps_mb is None else mb / aps_mb,
                target=target,
                passed=passed,
                ahead=None if aps_mb is None else mb < aps_mb,
                notes=f"{notes}; RSS right at ready {p['rss_ready'] / 1e6:.0f} MB",
            )
        )
    for n in sizes:
        p, a = pin[n], aps.get(n)
        target, passed = "", None
        if n >= 1_000_000:
            target, passed = f"< {READY_1M_S:g} s", p["ready_s"] < READY_1M_S
        ctx.add(
            Row(
                "recovery",
                f"restart → ready, {_label(n)} pending",
                p["ready_s"],
                "s",
                reference=None if a is None else a["ready_s"],
                reference_name="" if a is None else "APScheduler",
                ratio=p["ready_s"] / a["ready_s"] if a and a["ready_s"] else None,
                target=target,
                passed=passed,
                ahead=None if a is None else p["ready_s"] < a["ready_s"],
                notes=(
                    f"first start {p['first_start_s']:.2f} s; empty DB "
                    f"{pin[0]['ready_s']:.2f} s (APScheduler {aps[0]['ready_s']:.2f} s); "
                    f"seeding took {p['seed']['seconds']:.0f} s"
                ),
            )
        )
