"""The two watch-lag targets, repeated on one daemon, with medians and a per-stage CPU profile.

    python -m bench --only watchrows     (BENCH_WATCH_REPEATS=3 by default)

Rows: 100 `WatchJobs` watchers at 2,000 events/s (target: every event, p99 < 100 ms) and 50 SSE
watchers at 1,000 events/s (target: p99 < 100 ms), each run `repeats` times alternately on the
same daemon; the row is the median run (by p99 lag), the notes give every run. A shared machine
makes single runs noisy: the medians are the figures to compare.

Then one more run of each with `py-spy record --gil` attached to the daemon: the GIL samples
are sorted into the stages of the watch path (`STAGES`: the innermost matching frame wins) and
the daemon's measured CPU of that run is shared out by those shares: CPU µs per event delivered
(one event reaching one watcher), per stage, so the next bottleneck is visible. Profiled runs
are perturbed and not in the lag figures.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench import flame, http_door, procs, watch
from bench.context import FREE, Ctx
from bench.report import Row
from pinsched.v1 import account_pb2
from pinsched_client import AsyncClient

GRPC_WATCHERS, GRPC_RATE = 100, 2000
SSE_WATCHERS, SSE_RATE = 50, 1000
PROFILE_RATE = 250  # py-spy samples per second

#: Stage of a stack: the first rule (in this order) whose needle is in a frame, innermost frame
#: first. Needles are `function (file` prefixes as py-spy prints them.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("encode: proto", ("_event_proto", "_batch_proto", "stored_event_to_proto", "encoded.py")),
    ("encode: SSE/JSON", ("EventFormatter", "fastjson", "sse_frames")),
    ("bus publish (fan-out to queues)", ("publish (pinsched/events", "offer (pinsched/events")),
    ("watch loop (queue → batch)", ("watch_batches", "_pump (pinsched/http", "(pinsched/events")),
    ("replay from the store", ("_replay",)),
    ("write: gRPC stream", ("_handle_stream", "send_message", "_finish_handler", "cygrpc")),
    ("write: HTTP", ("aiohttp/http_writer", "run (pinsched/http/sse", "aiohttp/web_response")),
    ("commit + schedule RPCs (producer)", ("pinsched/store", "BatchSchedulePins", "service.py")),
)


def stage_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for stage, needles in STAGES:
            if any(n in frame for n in needles):
                return stage
    return "other (event loop, runtime)"


def stage_profile(path: Path, delivered: int, cpu_s: float) -> dict[str, float]:
    """CPU µs per event delivered, per stage: the daemon's measured CPU seconds of the profiled
    run (*cpu_s*) shared out by the stages' shares of the py-spy samples (GIL samples measure
    wall time with the GIL held, which a busy machine inflates; the shares stay meaningful)."""
    per: Counter[str] = Counter()
    for frames, count in flame.load(path):
        per[stage_of(frames)] += count
    total = sum(per.values()) or 1
    scale = cpu_s * 1e6 / total / max(1, delivered)
    return {stage: round(c * scale, 2) for stage, c in per.most_common()}


def _spawn_spy(spy_bin: str, pid: int, out: Path) -> subprocess.Popen[bytes]:
    """`py-spy record` attached to *pid* until SIGINT."""
    return subprocess.Popen(
        [
            spy_bin,
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


async def _profiled(ctx: Ctx, daemon: procs.Proc, name: str, run: Any) -> dict[str, Any]:
    spy_bin = shutil.which("py-spy") or shutil.which(
        "py-spy", path=str(Path(sys.executable).parent)
    )
    if spy_bin is None:
        return {"skipped": "py-spy is not installed (pip install -e '.[bench]')"}
    out = ctx.workdir / f"watch-profile-{name}.txt"
    spy = _spawn_spy(spy_bin, daemon.pid, out)
    try:
        await asyncio.sleep(1.0)  # py-spy attached
        got = await run()
    finally:
        spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
        await asyncio.to_thread(spy.wait, 30)
    if not out.exists():
        return {"skipped": "py-spy wrote no profile (ptrace not permitted?)"}
    delivered = got["watchers"]["events_total"]
    return {
        "stages_us_per_event": stage_profile(out, delivered, got["daemon_cpu_s"]),
        "daemon_cpu_us_per_event": round(got["daemon_cpu_s"] * 1e6 / max(1, delivered), 2),
    }


def _median_row(group: str, name: str, runs: list[dict[str, Any]], profile: dict[str, Any]) -> Row:
    by_p99 = sorted(runs, key=lambda r: r["watchers"]["lag_ms"]["p99"])
    mid = by_p99[len(by_p99) // 2]
    lags = [r["watchers"]["lag_ms"]["p99"] for r in runs]
    complete = all(r["watchers"]["min_per_watcher"] >= r["producer"]["created"] for r in runs)
    us = [r["daemon_cpu_s"] / max(1, r["watchers"]["events_total"]) * 1e6 for r in runs]
    stages = profile.get("stages_us_per_event")
    prof = (
        "; profile µs/event delivered: "
        + ", ".join(f"{k} {v:g}" for k, v in stages.items() if v >= 0.05)
        if stages
        else f"; profile: {profile.get('skipped', '-')}"
    )
    return Row(
        group,
        f"{name} (median of {len(runs)})",
        statistics.median(lags),
        "ms",
        target="all events, p99 < 100 ms",
        passed=complete and mid["watchers"]["lag_ms"]["p99"] < 100,
        notes=(
            f"p99 of each run {', '.join(f'{x:.0f}' for x in lags)} ms; every watcher got every "
            f"event in every run: {'yes' if complete else 'NO'}; median lag p50 "
            f"{mid['watchers']['lag_ms']['p50']:.0f} ms; daemon CPU "
            f"{statistics.median(us):.0f} µs/event delivered{prof}"
        ),
        extra={"runs": runs, "profile": profile},
    )


async def run(ctx: Ctx) -> None:
    repeats = int(os.environ.get("BENCH_WATCH_REPEATS", "1" if ctx.quick else "3"))
    g_n, g_rate = (10, 500) if ctx.quick else (GRPC_WATCHERS, GRPC_RATE)
    s_n, s_rate = (10, 500) if ctx.quick else (SSE_WATCHERS, SSE_RATE)
    db = ctx.db("watchrows")
    daemon, port = await procs.start_daemon(ctx.workdir, db, ctx.sandbox_url, name="daemon-wr")
    http_port = int(daemon.info["http_port"])
    grpc_runs: list[dict[str, Any]] = []
    sse_runs: list[dict[str, Any]] = []
    try:
        async with AsyncClient(f"127.0.0.1:{port}") as client:
            await client.create_account(
                "bench", account_pb2.Account(access_token=procs.SANDBOX_TOKEN, pacing=FREE)
            )
        for i in range(repeats):
            grpc_runs.append(await watch.once(ctx, port, daemon, g_rate, g_n))
            sse_runs.append(await http_door.sse_once(ctx, daemon, port, http_port, s_n, s_rate))
            print(
                f"    run {i + 1}: gRPC p99 {grpc_runs[-1]['watchers']['lag_ms']['p99']:.0f} ms,"
                f" SSE p99 {sse_runs[-1]['watchers']['lag_ms']['p99']:.0f} ms",
                flush=True,
            )
        g_prof = await _profiled(
            ctx, daemon, "grpc", lambda: watch.once(ctx, port, daemon, g_rate, g_n)
        )
        s_prof = await _profiled(
            ctx,
            daemon,
            "sse",
            lambda: http_door.sse_once(ctx, daemon, port, http_port, s_n, s_rate),
        )
    finally:
        await daemon.stop()
    ctx.add(_median_row("watch", f"{g_n} WatchJobs watchers x {g_rate:,}/s", grpc_runs, g_prof))
    ctx.add(_median_row("http", f"{s_n} SSE watchers x {s_rate:,}/s", sse_runs, s_prof))
