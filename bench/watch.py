"""Watch fan-out: N live watchers (one client process) while a producer process creates jobs at
R events/s for a few seconds. Keeping up = every watcher got every event, with the p99 lag
(receive - event time) under 50 ms. Measured at the target rate and at a lower one, so the
figure shows where the line is on this machine.
"""

from __future__ import annotations

import json
from typing import Any

from bench import procs
from bench.context import FREE, Ctx
from bench.report import Row
from pinsched.v1 import account_pb2
from pinsched_client import AsyncClient

LAG_P99_MS = 100.0
TARGET_RATE = 2000


async def once(
    ctx: Ctx, port: int, daemon: procs.Proc, rate: int, n: int | None = None
) -> dict[str, Any]:
    """*n* (default: the run's size) WatchJobs streams while jobs are created at *rate*/s."""
    target = f"127.0.0.1:{port}"
    watchers = procs.spawn(
        [
            "bench.watchers",
            "watch",
            "--target",
            target,
            "--n",
            str(n or ctx.sizes.watchers),
            "--max-s",
            str(ctx.sizes.watch_s + 120),
        ],
        "watchers",
        ctx.workdir,
    )
    try:
        await watchers.wait_line("watchers ready", timeout_s=60)
    except BaseException:
        await watchers.stop()
        raise
    cpu0, wcpu0 = daemon.cpu_seconds(), watchers.cpu_seconds()
    try:
        produced = await procs.run_child(
            [
                "bench.watchers",
                "produce",
                "--target",
                target,
                "--rate",
                str(rate),
                "--duration",
                str(ctx.sizes.watch_s),
            ],
            "producer",
            ctx.workdir,
        )
    except BaseException:
        await watchers.stop()
        raise
    cpu_during = daemon.cpu_seconds() - cpu0
    wcpu = 0.0
    while not await watchers.wait_exit(0.5):
        wcpu = watchers.cpu_seconds() - wcpu0
    cpu = daemon.cpu_seconds() - cpu0
    seen = [ln for ln in watchers.lines() if ln.startswith("{")]
    if watchers.popen.returncode != 0 or not seen:
        raise RuntimeError(f"watchers failed:\n{watchers.tail()}")
    got = json.loads(seen[-1])
    return {
        "rate": rate,
        "producer": produced,
        "watchers": got,
        "daemon_cpu_s": cpu,
        "daemon_cpu_during_production_s": cpu_during,
        "watchers_cpu_s": wcpu,
    }


async def run(ctx: Ctx) -> None:
    db = ctx.db("watch")
    for suffix in ("", "-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    daemon, port = await procs.start_daemon(ctx.workdir, db, ctx.sandbox_url, name="daemon-watch")
    results = []
    try:
        async with AsyncClient(f"127.0.0.1:{port}") as client:
            await client.create_account(
                "bench", account_pb2.Account(access_token=procs.SANDBOX_TOKEN, pacing=FREE)
            )
        for rate in ctx.sizes.watch_rates:
            results.append(await once(ctx, port, daemon, rate))
    finally:
        await daemon.stop()
    ctx.details["watch"] = results
    n = ctx.sizes.watchers
    for r in results:
        made = r["producer"]["created"]
        w = r["watchers"]
        secs = r["producer"]["seconds"]
        lag = w["lag_ms"]
        kept_up = w["min_per_watcher"] >= made
        span = max(secs, w["last_rx"] - r["producer"]["started"])  # until the last receipt
        aggregate = w["events_total"] / span
        per_watcher = w["min_per_watcher"] / span
        is_target = r["rate"] >= TARGET_RATE or ctx.quick
        ctx.add(
            Row(
                "watch",
                f"{n} watchers, {r['producer']['rate_achieved']:,.0f} events/s offered: p99 lag",
                lag["p99"],
                "ms",
                target=f"all events, p99 < {LAG_P99_MS:g} ms" if is_target else "",
                passed=(kept_up and lag["p99"] < LAG_P99_MS) if is_target else None,
                notes=(
                    f"slowest watcher got {w['min_per_watcher']:,}/{made:,} events, the last "
                    f"{span:.1f} s after production began ({per_watcher:,.0f} events/s per "
                    f"watcher sustained, {aggregate:,.0f}/s in all); lag p50 {lag['p50']:.0f}, "
                    f"max {lag['max']:.0f} ms; CPU s daemon {r['daemon_cpu_s']:.1f} "
                    f"({r['daemon_cpu_s'] / max(1, w['events_total']) * 1e6:.0f} µs/event "
                    f"delivered), watcher client {r['watchers_cpu_s']:.1f}; "
                    f"{w['events_total'] / max(1, w.get('messages_total', 0)):.1f} events per "
                    "message"
                ),
            )
        )
