"""The HTTP client's floor: `POST /v5/pins` to the sandbox from one bare aiohttp session.

The session is set up as pinsched's Pinterest client sets up its own (one `ClientSession`, a
connector of 256 connections, the same timeout and headers) and every request carries the body
pinsched sends for a pin (`core.answers.pin_body`). Nothing else happens per request: no state
change, no commit, no log line. Its CPU per request is what aiohttp alone costs the daemon for
each pin of a burst.

    python -m bench.client_floor --url http://127.0.0.1:PORT/v5 --token T --requests 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp
import uvloop

from pinsched.core.answers import pin_body
from pinsched.core.jobs import ImageUrl, PinSpec


async def run(args: argparse.Namespace) -> dict[str, Any]:
    body = pin_body(
        PinSpec(
            board_id=args.board,
            media=ImageUrl(url="https://example.com/bench.jpg"),
            title="Benchmark pin",
            description="A pin a bench made.",
            link="https://example.com/bench",
            alt_text="bench",
        )
    )
    url = args.url.rstrip("/") + "/pins"
    headers = {"authorization": f"Bearer {args.token}"}
    ok = errors = 0
    latencies: list[float] = []

    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=30.0, sock_connect=10.0),
        connector=aiohttp.TCPConnector(limit=256, limit_per_host=0),
        headers={"user-agent": "pinsched/0.1"},
    ) as session:

        async def worker(todo: list[int], record: bool) -> None:
            nonlocal ok, errors
            while todo:
                todo.pop()
                started = time.perf_counter()
                async with session.post(url, json=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status < 300:
                        ok += 1
                    else:
                        errors += 1
                if record:
                    latencies.append(time.perf_counter() - started)

        warm = list(range(min(500, args.requests)))
        await asyncio.gather(*(worker(warm, False) for _ in range(args.concurrency)))
        ok = errors = 0
        todo = list(range(args.requests))
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(todo, True) for _ in range(args.concurrency)))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    latencies.sort()
    return {
        "requests": args.requests,
        "ok": ok,
        "errors": errors,
        "concurrency": args.concurrency,
        "seconds": seconds,
        "per_s": args.requests / seconds,
        "cpu_s": cpu,
        "cpu_us_per_request": cpu * 1e6 / args.requests,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.client_floor")
    p.add_argument("--url", required=True, help="the sandbox's API base (…/v5)")
    p.add_argument("--token", required=True)
    p.add_argument("--board", default="1001")
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=256)
    args = p.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        print(json.dumps(runner.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
