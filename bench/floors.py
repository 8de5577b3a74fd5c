"""Floors: what the parts pinsched is built on cost per unit on this machine, with none of
pinsched's own work, and what the CPU targets leave for that work.

* gRPC: the echo (`bench.echo`) served as the daemon serves its calls (`--daemon-setup`: its
  options, RPC limit and interceptors) beside the bare echo, 16 calls in flight: CPU µs per call.
  SchedulePin ≥ 0.6x the echo's calls/s lets the daemon spend at most echo CPU / 0.6 per call
  (each process is held to one core by its GIL); the setup's own cost comes off that.
* HTTP client: `POST /v5/pins` to the sandbox from a bare aiohttp session set up like pinsched's
  Pinterest client (`bench.client_floor`), 256 in flight: CPU µs per request, the client's and
  the sandbox's. 2,500 pins/s gives each pin 400 µs of the daemon's one GIL; the client's own
  cost comes off that.
* Store: 1,000 new jobs per transaction with `Store.create_jobs`, with SQLite alone, and with
  SQLite without the jobs table's secondary indexes and triggers (`bench.store_floor`): CPU µs
  per job. BatchSchedulePins ≥ 10x APScheduler's add_job gives each pin 1 / (10 x its rate).

    python -m bench --only floors
"""

from __future__ import annotations

from typing import Any

from bench import procs
from bench.context import Ctx
from bench.report import Row

SCHEDULE_SHARE = 0.60  # SchedulePin's target: this share of the echo's calls/s
BURST_RATE = 2500.0  # the burst's target, pins/s
BATCH_TIMES = 10.0  # BatchSchedulePins' target: this many times APScheduler's add_job rate


async def _echo_cpu(ctx: Ctx, *extra: str) -> dict[str, Any]:
    echo, port = await procs.start_echo(ctx.workdir, *extra)
    try:
        cpu0 = echo.cpu_seconds()
        got = await procs.run_child(
            [
                "bench.loadgen",
                "--target",
                f"127.0.0.1:{port}",
                "--concurrency",
                "16",
                "--duration",
                str(ctx.sizes.throughput_s),
                "--warmup",
                "0.3",
            ],
            "loadgen",
            ctx.workdir,
        )
        cpu = echo.cpu_seconds() - cpu0
    finally:
        await echo.stop()
    calls = max(1, int(got["calls_all"]))
    return {"calls_per_s": got["calls_per_s"], "cpu_us_per_call": cpu * 1e6 / calls}


async def _grpc(ctx: Ctx) -> None:
    bare = await _echo_cpu(ctx)
    setup = await _echo_cpu(ctx, "--daemon-setup")
    budget = bare["cpu_us_per_call"] / SCHEDULE_SHARE
    own = budget - setup["cpu_us_per_call"]
    ctx.details["floor_grpc"] = {"bare": bare, "daemon_setup": setup, "budget_us": budget}
    ctx.add(
        Row(
            "floors",
            "gRPC unary call, the daemon's server setup (echo handler, 16 in flight)",
            setup["cpu_us_per_call"],
            "µs/call",
            reference=bare["cpu_us_per_call"],
            reference_name="bare echo",
            ratio=setup["cpu_us_per_call"] / bare["cpu_us_per_call"],
            notes=(
                f"calls/s {setup['calls_per_s']:,.0f} (bare {bare['calls_per_s']:,.0f}); "
                f"SchedulePin at {SCHEDULE_SHARE:.0%} of the echo may cost {budget:.0f} µs "
                f"per call, leaving {own:.0f} µs for validation, the durable insert and "
                "the answer"
            ),
            extra={"budget_us": budget, "own_us": own},
        )
    )


async def _client(ctx: Ctx) -> None:
    sandbox, url = await procs.start_sandbox(ctx.workdir)
    try:
        cpu0 = sandbox.cpu_seconds()
        got = await procs.run_child(
            [
                "bench.client_floor",
                "--url",
                url,
                "--token",
                procs.SANDBOX_TOKEN,
                "--board",
                procs.SANDBOX_BOARD,
                "--requests",
                "1000" if ctx.quick else "5000",
            ],
            "client-floor",
            ctx.workdir,
        )
        sandbox_us = (sandbox.cpu_seconds() - cpu0) * 1e6 / max(1, got["requests"])
    finally:
        await sandbox.stop()
    own = 1e6 / BURST_RATE - got["cpu_us_per_request"]
    got["sandbox_cpu_us_per_request"] = sandbox_us
    ctx.details["floor_client"] = got
    ctx.add(
        Row(
            "floors",
            "POST /v5/pins from a bare aiohttp session to the sandbox (256 in flight)",
            got["cpu_us_per_request"],
            "µs/request",
            notes=(
                f"{got['per_s']:,.0f} requests/s, {got['errors']} errors; sandbox "
                f"{sandbox_us:.0f} µs/request; a burst at {BURST_RATE:,.0f} pins/s leaves "
                f"{own:.0f} µs per pin for the rest (three durable state changes, pacing, "
                "events, logs)"
            ),
            extra={"own_us": own},
        )
    )


async def _store(ctx: Ctx) -> None:
    got = await procs.run_child(
        [
            "bench.store_floor",
            "--dir",
            str(ctx.workdir / "floors"),
            "--jobs",
            "5000" if ctx.quick else "20000",
        ],
        "store-floor",
        ctx.workdir,
    )
    ctx.details["floor_store"] = got
    store, sqlite, bare = (got[k]["cpu_us_per_job"] for k in ("store", "sqlite", "sqlite_bare"))
    add = ctx.details.get("apscheduler_add", {}).get("add_per_s")
    budget = f"; BatchSchedulePins at {BATCH_TIMES:g}x APScheduler's add_job" + (
        f" ({add:,.0f}/s) may cost {1e6 / (BATCH_TIMES * add):.0f} µs per pin in all"
        if add
        else " (run with `alternative` for its rate)"
    )
    ctx.add(
        Row(
            "floors",
            "insert 1,000 new jobs per transaction: the store",
            store,
            "µs/job",
            reference=sqlite,
            reference_name="SQLite alone",
            ratio=store / sqlite,
            notes=(
                f"SQLite alone {sqlite:.0f} µs/job (the same rows, executemany), of which "
                f"the jobs table's indexes and triggers {sqlite - bare:.0f}{budget}"
            ),
        )
    )


async def run(ctx: Ctx) -> None:
    await _grpc(ctx)
    await _client(ctx)
    await _store(ctx)
