"""A load-generating HTTP client process: `POST /v1/jobs` (SchedulePin over the HTTP door) with N
connections, one call in flight on each, for a fixed time, against the daemon or the HTTP echo.

    python -m bench.http_loadgen --url http://127.0.0.1:PORT --concurrency 64 --duration 3

Prints one JSON line with the same keys as `bench.loadgen` (calls, errors, calls_per_s, latency
percentiles in ms). Calls made during `--warmup` seconds are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import uvloop

from bench.stats import summarize


def body_template(account: str, when: datetime, board: str = "1001") -> dict[str, object]:
    """The JSON of `bench.loadgen.request_template`, as an HTTP client sends it."""
    return {
        "account_id": account,
        "scheduled_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pin": {
            "board_id": board,
            "title": "Benchmark pin",
            "description": "A pin a bench made.",
            "link": "https://example.com/bench",
            "alt_text": "bench",
            "media_source": {"image_url": {"url": "https://example.com/bench.jpg"}},
        },
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    when = datetime.now(UTC) + timedelta(days=args.days_ahead)
    template = body_template(args.account, when)
    latencies: list[float] = []
    counted = {"calls": 0, "errors": 0}
    total = {"calls": 0}
    first_error: list[str] = []
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    cpu0 = time.process_time()
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        measure_from = t0 + args.warmup
        stop_at = measure_from + args.duration
        url = f"{args.url}/v1/jobs"

        async def worker() -> None:
            while True:
                start = time.perf_counter()
                if start >= stop_at:
                    return
                data = json.dumps({**template, "request_id": uuid.uuid4().hex})
                async with session.post(
                    url, data=data, headers={"Content-Type": "application/json"}
                ) as resp:
                    await resp.read()
                    ok = resp.status == 200
                    if not ok and not first_error:
                        first_error.append(f"{resp.status}: {(await resp.text())[:200]}")
                end = time.perf_counter()
                total["calls"] += 1
                if start >= measure_from and end <= stop_at:
                    if ok:
                        latencies.append(end - start)
                        counted["calls"] += 1
                    else:
                        counted["errors"] += 1

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    cpu = time.process_time() - cpu0
    return {
        "url": args.url,
        "concurrency": args.concurrency,
        **counted,
        "calls_all": total["calls"],
        "elapsed_s": args.duration,
        "calls_per_s": counted["calls"] / args.duration,
        "latency_ms": summarize([x * 1000 for x in latencies]),
        "first_error": first_error[0] if first_error else None,
        # the load generator's own CPU per call: it must stay well below the server's
        "client_cpu_us_per_call": cpu * 1e6 / max(1, total["calls"]),
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.http_loadgen")
    p.add_argument("--url", required=True)
    p.add_argument("--account", default="bench")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--days-ahead", type=float, default=30.0)
    args = p.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        print(json.dumps(runner.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
