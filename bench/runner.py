"""`python -m bench`: run the scenarios, print the table, write the JSON and `latest.md`.

    python -m bench                 full run (about 32 min on 2 cores, 5M pending included)
    python -m bench --quick         CI smoke run (< 60 s): every scenario, small sizes
    python -m bench --only burst,watch [--profile]
    python -m bench --only lateness --pending 10000,5000000   (APScheduler only up to 1M)

`--profile` attaches py-spy (`record --nonblocking`, collapsed stacks) to every daemon the
scenarios start and prints the hottest pinsched functions of each; timings taken while profiling
are flagged in the results and are not for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import (
    alternative,
    burst,
    cluster,
    cpustages,
    event_order,
    floors,
    http_door,
    importrun,
    lateness,
    postgres,
    procs,
    report,
    retention,
    shutdown,
    soakrun,
    throughput,
    videos,
    watch,
    watchrows,
)
from bench.context import Ctx, Sizes
from bench.report import Row

Scenario = Callable[[Ctx], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {
    "alternative": alternative.run,  # first: its add rate is the throughput rows' reference
    "throughput": throughput.run,
    "burst": burst.run,
    "watch": watch.run,
    "http": http_door.run,  # SchedulePin over HTTP vs aiohttp echo vs gRPC; SSE watchers
    "lateness": lateness.run,  # pending 10k/100k/1M: lateness, memory, recovery
    "import": importrun.run,  # pinsched import: rows/s and its memory
    "soak": soakrun.run,
    "retention": retention.scenario,  # FakeClock hours: database size under retention
    "shutdown": shutdown.run,  # SIGTERM → exit under load (terminationGracePeriodSeconds)
    "videos": videos.run,  # image lateness while 200 videos are staged across 20 accounts
    # the two watch-lag targets (gRPC, SSE), repeated: medians and a per-stage CPU profile
    "watchrows": watchrows.run,
    "postgres": postgres.run,  # SchedulePin on PostgreSQL (one daemon) beside SQLite
    "event_order": event_order.run,  # commits/s on PostgreSQL with the cluster event order
    # SchedulePin on 1/2/3 daemons sharing one PostgreSQL beside SQLite; failover time
    "cluster": cluster.run,
    # CPU µs per SchedulePin (gRPC, HTTP) and per burst pin, by stage (py-spy --gil)
    "stages": cpustages.run,
    "floors": floors.run,  # the runtime's and libraries' own costs; what the targets leave
}


async def main_async(args: argparse.Namespace) -> int:
    started = time.monotonic()
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.pending:
        sizes = dataclasses.replace(
            sizes,
            pending=args.pending,
            aps_pending=tuple(n for n in args.pending if n <= APS_PENDING_MAX),
        )
    workdir = Path(tempfile.mkdtemp(prefix="pinsched-bench-", dir=args.workdir))
    ctx = Ctx(quick=args.quick, sizes=sizes, workdir=workdir)
    only = [s.strip() for s in args.only.split(",")] if args.only else list(SCENARIOS)
    if not sizes.soak and "soak" in only and not args.only:
        only.remove("soak")
    if ("throughput" in only or "floors" in only) and "alternative" not in only:
        only.insert(0, "alternative")
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        raise SystemExit(
            f"unknown scenario(s): {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}"
        )
    if args.profile:
        os.environ["BENCH_PROFILE_DIR"] = str(workdir / "profiles")
        (workdir / "profiles").mkdir()
    print(
        f"pinsched bench ({'quick' if args.quick else 'full'}): {', '.join(only)}; "
        f"work dir {workdir}",
        flush=True,
    )
    procs.compile_sources()
    sandbox, ctx.sandbox_url = await procs.start_sandbox(workdir)
    ctx.shared["sandbox"] = sandbox
    timings: dict[str, float] = {}
    load: dict[str, dict[str, float]] = {}
    ok = True
    try:
        for name in only:
            t0 = time.monotonic()
            meter = procs.LoadMeter()
            print(f"  {name} …", flush=True)
            try:
                await SCENARIOS[name](ctx)
            except Exception as exc:
                ok = False
                traceback.print_exc()
                ctx.add(
                    Row(
                        name,
                        f"{name}: ERROR",
                        None,
                        "",
                        passed=False,
                        notes=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                    )
                )
            timings[name] = time.monotonic() - t0
            load[name] = meter.read()
            print(
                f"  {name} done in {timings[name]:.1f} s (other processes used "
                f"{load[name]['others_cores']:.2f} of {load[name]['cores']} cores)",
                flush=True,
            )
    finally:
        await sandbox.stop()
        await procs.stop_all()
    meta = {
        "mode": "quick" if args.quick else "full",
        "scenarios": only,
        "profiled": args.profile,
        "machine": report.machine_info(),
        "seconds": time.monotonic() - started,
        "scenario_seconds": timings,
        "sizes": vars(sizes),
        "notes": ctx.notes,
        "machine_load": load,
    }
    busy = {k: v["others_cores"] for k, v in load.items() if v["others_cores"] >= 0.2}
    if busy:
        meta["notes"] = [
            *meta["notes"],
            "Machine not idle: processes outside this benchmark used "
            + ", ".join(f"{v:.2f} cores during {k}" for k, v in busy.items())
            + " (figures are noisier than on an idle machine).",
        ]
    if args.profile:
        from bench import flame

        ctx.details["profiles"] = flame.summarize_dir(workdir / "profiles")
        meta["notes"] = [*ctx.notes, "PROFILED RUN: py-spy was attached; timings are perturbed."]
    json_path, md_path = report.write(ctx.rows, meta, ctx.details)
    print()
    print("\n".join(report.table_lines(ctx.rows, markdown=False)))
    print()
    print(
        f"{report.summary_line(ctx.rows)} {meta['seconds']:.0f} s. "
        f"Results: {json_path} and {md_path}"
    )
    if args.profile:
        print(f"Profiles (collapsed stacks): {workdir / 'profiles'}")
    if args.keep or args.profile or not ok:
        print(f"Work dir kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


#: The largest backlog APScheduler is measured with (seeding it takes minutes per million).
APS_PENDING_MAX = 1_000_000


def _pending_sizes(text: str) -> tuple[int, ...]:
    """`--pending`: positive job counts, comma-separated, in increasing order."""
    try:
        sizes = tuple(int(part.replace("_", "")) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of job counts"
        ) from None
    if not sizes or any(n <= 0 for n in sizes) or list(sizes) != sorted(set(sizes)):
        raise argparse.ArgumentTypeError(f"{text!r}: job counts must be positive and increasing")
    return sizes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="CI smoke run, under a minute")
    p.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(SCENARIOS)}")
    p.add_argument("--profile", action="store_true", help="attach py-spy to the daemons")
    p.add_argument("--keep", action="store_true", help="keep the work dir (DBs, logs)")
    p.add_argument("--workdir", default=None, help="parent of the work dir (default: system tmp)")
    p.add_argument(
        "--pending",
        type=_pending_sizes,
        default=None,
        help="comma-separated backlog sizes of the lateness scenario, e.g. 10000,5000000 "
        f"(APScheduler runs the sizes up to {APS_PENDING_MAX:,})",
    )
    args = p.parse_args(argv)
    return asyncio.run(main_async(args))
