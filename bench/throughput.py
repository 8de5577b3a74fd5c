"""Schedule throughput: SchedulePin acknowledged after a durable commit, measured from a separate
client process at 1, 16, 64 and 256 calls in flight, beside the bare grpc.aio echo server (the
RPC layer's ceiling) measured with the same client in the same run; BatchSchedulePins in batches
of 100 and 1,000, beside APScheduler's add rate.
"""

from __future__ import annotations

from typing import Any

from bench import procs
from bench.context import FREE, Ctx
from bench.report import Row
from pinsched.v1 import account_pb2
from pinsched_client import AsyncClient

SCHEDULE_TARGET = 0.60  # share of the echo ceiling, at the in-flight counts below
TARGET_IN_FLIGHT = (16, 64)
BATCH_TARGET = 10.0  # x APScheduler's add rate


async def _load(ctx: Ctx, port: int, concurrency: int, batch: int = 0) -> dict[str, Any]:
    return await procs.run_child(
        [
            "bench.loadgen",
            "--target",
            f"127.0.0.1:{port}",
            "--account",
            "bench",
            "--concurrency",
            str(concurrency),
            "--batch",
            str(batch),
            "--duration",
            str(ctx.sizes.throughput_s),
            "--warmup",
            "0.3" if ctx.quick else "0.5",
        ],
        "loadgen",
        ctx.workdir,
    )


async def run(ctx: Ctx) -> None:
    daemon, port = await procs.start_daemon(ctx.workdir, ctx.db("throughput"), ctx.sandbox_url)
    echo, echo_port = await procs.start_echo(ctx.workdir)
    details: dict[str, Any] = {}
    try:
        async with AsyncClient(f"127.0.0.1:{port}") as client:
            await client.create_account(
                "bench", account_pb2.Account(access_token=procs.SANDBOX_TOKEN, pacing=FREE)
            )
        for n in ctx.sizes.concurrency:
            ecpu0 = echo.cpu_seconds()
            ceiling = await _load(ctx, echo_port, n)
            echo_us = (echo.cpu_seconds() - ecpu0) / max(1, int(ceiling["calls_all"])) * 1e6
            cpu0 = daemon.cpu_seconds()
            got = await _load(ctx, port, n)
            cpu = daemon.cpu_seconds() - cpu0
            details[f"schedule_pin_{n}"] = {
                "daemon": got,
                "echo": ceiling,
                "daemon_cpu_s": cpu,
                "echo_cpu_us_per_call": echo_us,
            }
            rate, ref = float(got["calls_per_s"]), float(ceiling["calls_per_s"])
            lat, ref_lat = got["latency_ms"], ceiling["latency_ms"]
            ratio = rate / ref if ref else None
            targeted = n in TARGET_IN_FLIGHT
            per_call_us = cpu / max(1, int(got["calls_all"])) * 1e6
            ctx.add(
                Row(
                    "throughput",
                    f"SchedulePin, {n} in flight",
                    rate,
                    "calls/s",
                    reference=ref,
                    reference_name="echo",
                    ratio=ratio,
                    target=f"≥ {SCHEDULE_TARGET:.0%} of echo" if targeted else "",
                    passed=None if ratio is None or not targeted else ratio >= SCHEDULE_TARGET,
                    notes=(
                        f"ack p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms "
                        f"(echo {ref_lat['p50']:.2f}/{ref_lat['p99']:.2f}); "
                        f"CPU per call: daemon {per_call_us:.0f} µs, echo {echo_us:.0f} µs"
                        + (
                            f"; errors {got['errors']}: {got['first_error']}"
                            if got["errors"]
                            else ""
                        )
                    ),
                )
            )
        aps_rate = ctx.shared.get("aps_add_rate")
        if aps_rate and "schedule_pin_1" in details:
            one = details["schedule_pin_1"]["daemon"]
            rate = float(one["calls_per_s"])
            ctx.add(
                Row(
                    "throughput",
                    "SchedulePin one at a time vs APScheduler add_job",
                    rate,
                    "jobs/s",
                    reference=aps_rate,
                    reference_name="APScheduler add_job",
                    ratio=rate / aps_rate,
                    ahead=rate > aps_rate,
                    notes="both durable (fsync) per job; pinsched's figure includes the RPC from "
                    "another process, APScheduler's is an in-process call",
                )
            )
        for size, in_flight in ctx.sizes.batches:
            ceiling = await _load(ctx, echo_port, in_flight, batch=size)
            cpu0 = daemon.cpu_seconds()
            got = await _load(ctx, port, in_flight, batch=size)
            cpu = daemon.cpu_seconds() - cpu0
            details[f"batch_{size}"] = {"daemon": got, "echo": ceiling, "daemon_cpu_s": cpu}
            rate = float(got["items_per_s"])
            lat = got["latency_ms"]
            ratio = rate / aps_rate if aps_rate else None
            per_pin_us = cpu / max(1, int(got["items_all"])) * 1e6
            ctx.add(
                Row(
                    "throughput",
                    f"BatchSchedulePins x{size}, {in_flight} in flight",
                    rate,
                    "pins/s",
                    reference=aps_rate,
                    reference_name="APScheduler add_job",
                    ratio=ratio,
                    target=f"≥ {BATCH_TARGET:.0f}x APScheduler",
                    passed=None if ratio is None else ratio >= BATCH_TARGET,
                    ahead=None if ratio is None else ratio > 1,
                    notes=(
                        f"call p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms; echo ceiling "
                        f"{float(ceiling['items_per_s']):,.0f} pins/s; "
                        f"daemon CPU {per_pin_us:.0f} µs/pin"
                        + (
                            f"; errors {got['errors']}: {got['first_error']}"
                            if got["errors"]
                            else ""
                        )
                    ),
                )
            )
    finally:
        await echo.stop()
        await daemon.stop()
    ctx.details["throughput"] = details
