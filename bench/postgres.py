"""SchedulePin throughput with the store on PostgreSQL (one daemon) beside SQLite, measured the
same way as `bench.throughput` (a separate client process, calls in flight), on a throwaway local
cluster (`tests.backends.Cluster`) with fsync on, as SQLite's `synchronous=FULL`.

Skipped with a note when PostgreSQL (initdb, pg_ctl) is not installed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench import procs
from bench.context import FREE, Ctx
from bench.report import Row
from bench.throughput import _load
from pinsched.v1 import account_pb2
from pinsched_client import AsyncClient


async def _rates(ctx: Ctx, db: str, name: str) -> dict[int, dict[str, Any]]:
    daemon, port = await procs.start_daemon(ctx.workdir, db, ctx.sandbox_url, name=name)
    try:
        async with AsyncClient(f"127.0.0.1:{port}") as client:
            await client.create_account(
                "bench", account_pb2.Account(access_token=procs.SANDBOX_TOKEN, pacing=FREE)
            )
        out = {}
        for n in ctx.sizes.concurrency[:3]:
            cpu0 = daemon.cpu_seconds()
            got = await _load(ctx, port, n)
            got["daemon_cpu_s"] = daemon.cpu_seconds() - cpu0
            out[n] = got
        return out
    finally:
        await daemon.stop()


async def run(ctx: Ctx) -> None:
    from tests.backends import Cluster, pg_bin

    bindir = pg_bin()
    if bindir is None:
        ctx.notes.append("postgres: skipped (initdb/pg_ctl not installed)")
        return
    cluster = Cluster(bindir, durable=True)
    await asyncio.to_thread(cluster.start)
    try:
        name = await asyncio.to_thread(cluster.create_database)
        lite = await _rates(ctx, str(ctx.db("pg-reference")), "daemon-sqlite")
        post = await _rates(ctx, cluster.url(name), "daemon-postgres")
    finally:
        await asyncio.to_thread(cluster.stop)
    ctx.details["postgres"] = {"sqlite": lite, "postgresql": post}
    for n, got in post.items():
        rate, ref = float(got["calls_per_s"]), float(lite[n]["calls_per_s"])
        lat, ref_lat = got["latency_ms"], lite[n]["latency_ms"]
        per_call_us = got["daemon_cpu_s"] / max(1, int(got["calls_all"])) * 1e6
        ctx.add(
            Row(
                "postgres",
                f"SchedulePin on PostgreSQL, {n} in flight (one daemon)",
                rate,
                "calls/s",
                reference=ref,
                reference_name="SQLite",
                ratio=rate / ref if ref else None,
                notes=(
                    f"ack p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms (SQLite "
                    f"{ref_lat['p50']:.2f}/{ref_lat['p99']:.2f}); daemon CPU {per_call_us:.0f} "
                    "µs/call; local cluster, fsync on"
                    + (f"; errors {got['errors']}: {got['first_error']}" if got["errors"] else "")
                ),
            )
        )
