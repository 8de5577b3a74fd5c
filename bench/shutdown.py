"""SIGTERM → exit under load, measured against a real `pinsched serve` process.

The load while the signal lands: 200 accounts with 2,000 pins due at once (so publish requests
are in flight), 16 SchedulePin calls in flight without pause, and 20 open WatchJobs streams.
Two Pinterest behaviours: the sandbox answering at once, and the sandbox holding every
`POST /v5/pins` for a minute (the worst case: every in-flight request uses the whole grace period
and is then cancelled, its job left SUBMITTED for the next start to reconcile). Each case runs
with the image's grace period (8 s) and a short one (2 s; only these in `--quick`). The figure
is the wall time from `kill(SIGTERM)` to the process having exited (`waitpid`), which is what
Kubernetes' `terminationGracePeriodSeconds` must exceed.

    python -m bench --only shutdown      (or: python -m bench.shutdown)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench import procs
from bench.context import Ctx, Sizes, create_accounts, pin_request, schedule_all
from bench.report import Row
from pinsched_client import AsyncClient

#: (grace period, Pinterest holding requests); 8 s is the image's PINSCHED_SHUTDOWN_GRACE_S.
CASES: tuple[tuple[float, bool], ...] = ((8.0, False), (8.0, True), (2.0, False), (2.0, True))
ACCOUNTS, DUE, IN_FLIGHT, WATCHERS = 200, 2000, 16, 20


async def _hold_pins(sandbox_url: str) -> None:
    root = sandbox_url.rsplit("/v5", 1)[0]
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{root}/_admin/faults", json={"kind": "latency", "latency_ms": 60_000}
        ) as resp,
    ):
        resp.raise_for_status()


async def measure(workdir: Path, grace_s: float, hanging: bool) -> dict[str, Any]:
    """One SIGTERM under load; returns the seconds to exit and what was going on."""
    sandbox, url = await procs.start_sandbox(workdir)
    if hanging:
        await _hold_pins(url)
    db = workdir / f"shutdown-{grace_s:g}-{int(hanging)}.db"
    daemon = procs.spawn(
        [
            "pinsched",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "off",
            "--db",
            str(db),
            "--pinterest-api-base",
            url,
        ],
        "daemon-shutdown",
        workdir,
        env={"PINSCHED_SHUTDOWN_GRACE_S": str(grace_s)},
    )
    line = await procs._started(daemon, '"pinsched_ready"', 60)
    port = int(json.loads(line[line.index("{") :])["port"])
    stop_load = asyncio.Event()
    calls = 0
    try:
        async with AsyncClient(f"127.0.0.1:{port}", timeout_s=60) as client:
            ids = [f"sd{i}" for i in range(ACCOUNTS)]
            await create_accounts(client, ids, procs.SANDBOX_TOKEN)
            now = datetime.now(UTC)
            await schedule_all(client, [pin_request(ids[i % ACCOUNTS], now) for i in range(DUE)])

            async def schedule_forever(n: int) -> None:
                nonlocal calls
                while not stop_load.is_set():
                    try:
                        await client.schedule_pin(pin_request(ids[n % ACCOUNTS], now))
                        calls += 1
                    except Exception:  # the daemon went away: the load is over
                        return

            async def watch_forever() -> None:
                with contextlib.suppress(Exception):
                    async for _ in client.watch(resume=False):
                        if stop_load.is_set():
                            return

            load = [asyncio.create_task(schedule_forever(n)) for n in range(IN_FLIGHT)]
            load += [asyncio.create_task(watch_forever()) for _ in range(WATCHERS)]
            await asyncio.sleep(2.0)  # the load runs; requests are in flight
            in_flight_calls = calls
            t0 = time.monotonic()
            daemon.popen.send_signal(signal.SIGTERM)
            await daemon.wait_exit(grace_s + 60)
            took = time.monotonic() - t0
            stop_load.set()
            for task in load:
                task.cancel()
            await asyncio.gather(*load, return_exceptions=True)
    finally:
        await daemon.stop(signal.SIGKILL)
        await sandbox.stop()
    return {
        "grace_s": grace_s,
        "pinterest_hanging": hanging,
        "exit_s": took,
        "exit_code": daemon.popen.returncode,
        "schedule_calls_before": in_flight_calls,
    }


async def run(ctx: Ctx) -> None:
    """The bench scenario: one row per case."""
    for grace_s, hanging in CASES:
        if ctx.quick and grace_s > 2.0:
            continue
        result = await measure(ctx.workdir, grace_s, hanging)
        ctx.details.setdefault("shutdown", []).append(result)
        pinterest = "Pinterest holding every request" if hanging else "Pinterest answering"
        bound = grace_s + 5.0
        ctx.add(
            Row(
                "shutdown",
                f"SIGTERM → exit, grace {grace_s:g} s, {pinterest}",
                result["exit_s"],
                "s",
                target=f"≤ grace + 5 s ({bound:g} s)",
                passed=result["exit_s"] <= bound and result["exit_code"] == 0,
                extra=result,
            )
        )


async def _main() -> None:
    with tempfile.TemporaryDirectory(prefix="pinsched-shutdown-") as tmp:
        ctx = Ctx(quick=False, sizes=Sizes(), workdir=Path(tmp))
        try:
            await run(ctx)
        finally:
            await procs.stop_all()
        for row in ctx.rows:
            print(
                f"{row.name}: {row.value:.2f} s (exit {row.extra['exit_code']}, "
                f"{row.extra['schedule_calls_before']} SchedulePin calls in the 2 s before)"
            )


if __name__ == "__main__":
    asyncio.run(_main())
