"""Bulk import: `pinsched import FILE` in its own process against a daemon in another,
for a CSV of N rows (exact times spread over the next days, one account). The same file is then
imported again, when every row is `existing`. Rows/s is rows ÷ the command's wall time; the
importer's peak RSS (sampled every 50 ms) shows whether memory stays flat as N grows; CPU per row
of the importer and of the daemon shows which side bounds the rate.
"""

from __future__ import annotations

import asyncio
import csv
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import procs
from bench.context import FREE, Ctx
from bench.report import Row
from pinsched.v1 import account_pb2
from pinsched_client import AsyncClient

TARGET_ROWS_S = 100_000 / 60  # the issue: 100,000 rows in under a minute


def _write_csv(path: Path, n: int) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account", "board", "title", "image_url", "scheduled_at"])
        for i in range(n):
            w.writerow(
                [
                    "bench",
                    "1001",
                    f"pin {i}",
                    f"https://example.com/{i}.jpg",
                    (start + timedelta(seconds=7 * i)).isoformat(),
                ]
            )


async def _import_once(ctx: Ctx, port: int, path: Path) -> tuple[float, int, int, float]:
    started = time.monotonic()
    proc = procs.spawn(
        [
            "pinsched",
            "import",
            str(path),
            "--target",
            f"127.0.0.1:{port}",
            "--json",
            "--timeout",
            "60",
        ],
        "import",
        ctx.workdir,
    )
    peak, cpu = 0, 0.0
    while proc.popen.poll() is None:
        try:
            peak = max(peak, proc.rss_bytes())
            cpu = proc.cpu_seconds()  # the last reading before exit (within 50 ms)
        except Exception:  # the process may end between poll and read
            break
        await asyncio.sleep(0.05)
    await proc.wait_exit()
    return time.monotonic() - started, peak, int(proc.popen.returncode or 0), cpu


async def run(ctx: Ctx) -> None:
    for n in ctx.sizes.import_rows:
        daemon, port = await procs.start_daemon(ctx.workdir, ctx.db(f"import-{n}"), ctx.sandbox_url)
        try:
            async with AsyncClient(f"127.0.0.1:{port}") as client:
                await client.create_account(
                    "bench", account_pb2.Account(access_token=procs.SANDBOX_TOKEN, pacing=FREE)
                )
            path = ctx.workdir / f"import-{n}.csv"
            await asyncio.to_thread(_write_csv, path, n)
            for label in ("new rows", "again: all existing"):
                daemon_cpu = daemon.cpu_seconds()
                elapsed, peak, code, cpu = await _import_once(ctx, port, path)
                daemon_cpu = daemon.cpu_seconds() - daemon_cpu
                rate = n / elapsed
                ctx.add(
                    Row(
                        "import",
                        f"pinsched import, {n:,} rows, {label}",
                        rate,
                        "rows/s",
                        target=f"≥ {TARGET_ROWS_S:,.0f} rows/s (100k in < 60 s)",
                        passed=rate >= TARGET_ROWS_S and code == 0,
                        notes=f"{elapsed:.1f} s; importer peak RSS {peak / 2**20:.0f} MiB; "
                        f"CPU µs per row: importer {cpu / n * 1e6:.0f}, daemon "
                        f"{daemon_cpu / n * 1e6:.0f}; exit {code}",
                        extra={
                            "rows": n,
                            "seconds": elapsed,
                            "peak_rss": peak,
                            "exit": code,
                            "importer_cpu_s": cpu,
                            "daemon_cpu_s": daemon_cpu,
                        },
                    )
                )
        finally:
            await daemon.stop()
