"""The HTTP/JSON door: SchedulePin over HTTP beside the bare aiohttp JSON echo (the HTTP layer's
ceiling, `bench.http_echo`) and beside SchedulePin over gRPC, in the same run with the same
daemon; then SSE watchers (`bench.sse_watchers`) while `bench.watchers produce` creates jobs at a
fixed rate.

Targets: SchedulePin over HTTP ≥ 70 % of the echo at 16-64 connections; 50 SSE watchers at
1,000 events/s with every event delivered and p99 lag < 100 ms.
"""

from __future__ import annotations

import json
from typing import Any

from bench import procs
from bench.context import FREE, Ctx
from bench.report import Row
from pinsched.v1 import account_pb2
from pinsched_client import AsyncClient

HTTP_TARGET = 0.70  # share of the aiohttp echo
LAG_P99_MS = 100.0
CONCURRENCY = (16, 64)
WATCHERS, RATE = 50, 1000
QUICK_WATCHERS, QUICK_RATE = 10, 500


async def _http_load(ctx: Ctx, port: int, n: int) -> dict[str, Any]:
    return await procs.run_child(
        [
            "bench.http_loadgen",
            "--url",
            f"http://127.0.0.1:{port}",
            "--concurrency",
            str(n),
            "--duration",
            str(ctx.sizes.throughput_s),
            "--warmup",
            "0.3" if ctx.quick else "0.5",
        ],
        "http-loadgen",
        ctx.workdir,
    )


async def _grpc_load(ctx: Ctx, port: int, n: int) -> dict[str, Any]:
    return await procs.run_child(
        [
            "bench.loadgen",
            "--target",
            f"127.0.0.1:{port}",
            "--concurrency",
            str(n),
            "--duration",
            str(ctx.sizes.throughput_s),
            "--warmup",
            "0.3" if ctx.quick else "0.5",
        ],
        "loadgen",
        ctx.workdir,
    )


async def _throughput(
    ctx: Ctx, daemon: procs.Proc, port: int, http_port: int, details: dict[str, Any]
) -> None:
    echo, echo_port = await procs.start_http_echo(ctx.workdir)
    try:
        for n in CONCURRENCY:
            ceiling = await _http_load(ctx, echo_port, n)
            cpu0 = daemon.cpu_seconds()
            got = await _http_load(ctx, http_port, n)
            cpu = daemon.cpu_seconds() - cpu0
            grpc_got = await _grpc_load(ctx, port, n)
            details[f"schedule_pin_http_{n}"] = {
                "daemon": got,
                "echo": ceiling,
                "grpc": grpc_got,
                "daemon_cpu_s": cpu,
            }
            rate, ref = float(got["calls_per_s"]), float(ceiling["calls_per_s"])
            ratio = rate / ref if ref else None
            lat, ref_lat = got["latency_ms"], ceiling["latency_ms"]
            ctx.add(
                Row(
                    "http",
                    f"SchedulePin over HTTP, {n} connections",
                    rate,
                    "calls/s",
                    reference=ref,
                    reference_name="aiohttp echo",
                    ratio=ratio,
                    target=f"≥ {HTTP_TARGET:.0%} of echo",
                    passed=None if ratio is None else ratio >= HTTP_TARGET,
                    notes=(
                        f"ack p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms (echo "
                        f"{ref_lat['p50']:.2f}/{ref_lat['p99']:.2f}); same daemon over gRPC: "
                        f"{float(grpc_got['calls_per_s']):,.0f} calls/s; daemon CPU per HTTP "
                        f"call {cpu / max(1, int(got['calls_all'])) * 1e6:.0f} µs; load "
                        f"generator CPU per call {got['client_cpu_us_per_call']:.0f} µs "
                        f"(against the echo {ceiling['client_cpu_us_per_call']:.0f} µs)"
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


async def sse_once(
    ctx: Ctx, daemon: procs.Proc, port: int, http_port: int, n: int, rate: int
) -> dict[str, Any]:
    """*n* SSE watchers while `bench.watchers produce` creates jobs at *rate* events/s: the
    producer's and the watchers' JSON figures and the CPU seconds of the daemon and watchers."""
    watchers = procs.spawn(
        [
            "bench.sse_watchers",
            "--url",
            f"http://127.0.0.1:{http_port}",
            "--n",
            str(n),
            "--max-s",
            str(ctx.sizes.watch_s + 120),
        ],
        "sse-watchers",
        ctx.workdir,
    )
    try:
        await watchers.wait_line("watchers ready", timeout_s=60)
        cpu0, wcpu0 = daemon.cpu_seconds(), watchers.cpu_seconds()
        produced = await procs.run_child(
            [
                "bench.watchers",
                "produce",
                "--target",
                f"127.0.0.1:{port}",
                "--rate",
                str(rate),
                "--duration",
                str(ctx.sizes.watch_s),
            ],
            "producer",
            ctx.workdir,
        )
        wcpu = 0.0
        while not await watchers.wait_exit(0.5):
            wcpu = watchers.cpu_seconds() - wcpu0
        cpu = daemon.cpu_seconds() - cpu0
    except BaseException:
        await watchers.stop()
        raise
    seen = [ln for ln in watchers.lines() if ln.startswith("{")]
    if watchers.popen.returncode != 0 or not seen:
        raise RuntimeError(f"SSE watchers failed:\n{watchers.tail()}")
    return {
        "producer": produced,
        "watchers": json.loads(seen[-1]),
        "daemon_cpu_s": cpu,
        "watchers_cpu_s": wcpu,
    }


def sse_row(n: int, got: dict[str, Any], *, label: str = "") -> Row:
    """The SSE lag row of one `sse_once` result."""
    produced, w, cpu = got["producer"], got["watchers"], got["daemon_cpu_s"]
    made, lag = produced["created"], w["lag_ms"]
    kept_up = w["min_per_watcher"] >= made
    return Row(
        "http",
        f"{n} SSE watchers, {produced['rate_achieved']:,.0f} events/s offered: p99 lag{label}",
        lag["p99"],
        "ms",
        target=f"all events, p99 < {LAG_P99_MS:g} ms",
        passed=kept_up and lag["p99"] < LAG_P99_MS,
        notes=(
            f"slowest watcher got {w['min_per_watcher']:,}/{made:,} events; lag p50 "
            f"{lag['p50']:.0f}, max {lag['max']:.0f} ms; CPU s daemon {cpu:.1f} "
            f"({cpu / max(1, w['events_total']) * 1e6:.0f} µs/event delivered), watcher "
            f"client {got['watchers_cpu_s']:.1f}"
        ),
    )


async def _watch(
    ctx: Ctx, daemon: procs.Proc, port: int, http_port: int, details: dict[str, Any]
) -> None:
    n, rate = (QUICK_WATCHERS, QUICK_RATE) if ctx.quick else (WATCHERS, RATE)
    got = await sse_once(ctx, daemon, port, http_port, n, rate)
    details["sse_watch"] = got
    ctx.add(sse_row(n, got))


async def run(ctx: Ctx) -> None:
    daemon, port = await procs.start_daemon(
        ctx.workdir, ctx.db("http"), ctx.sandbox_url, name="daemon-http"
    )
    http_port = int(daemon.info["http_port"])
    details: dict[str, Any] = {}
    try:
        async with AsyncClient(f"127.0.0.1:{port}") as client:
            await client.create_account(
                "bench", account_pb2.Account(access_token=procs.SANDBOX_TOKEN, pacing=FREE)
            )
        await _throughput(ctx, daemon, port, http_port, details)
        await _watch(ctx, daemon, port, http_port, details)
    finally:
        await daemon.stop()
    ctx.details["http"] = details
