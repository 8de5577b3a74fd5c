"""SSE watch client process: N `GET /v1/jobs:watch` streams over HTTP (one connection each).

    python -m bench.sse_watchers --url http://127.0.0.1:PORT --n 50 --max-s 30

Counts the events of each stream and the lag of every event (receive wall time - the event's
`time`, which the daemon stamps just before the commit), prints `watchers ready` once every stream
is open, stops 2 s after the events dry up, and prints one JSON line with the same keys as
`bench.watchers watch`. Each stream is read in whatever pieces the socket gives and cut into
messages with `bytes.split`: ≈ 4 µs of this process's CPU per event received, where aiohttp's
per-line reader took ≈ 13 µs (50 watchers at 1,000 events/s kept the client itself busier than
the daemon, so it added to the lag it measured).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import datetime

import aiohttp
import uvloop

from bench.stats import summarize


def _epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


async def watch(args: argparse.Namespace) -> dict[str, object]:
    counts = [0] * args.n
    lags: list[float] = []
    last_rx = [0.0]
    first_rx = [0.0]
    opened = [0]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int) -> None:
            async with session.get(f"{args.url}/v1/jobs:watch") as resp:
                resp.raise_for_status()
                opened[0] += 1
                rest = b""
                async for piece in resp.content.iter_any():
                    *messages, rest = (rest + piece).split(b"\n\n")
                    now = time.time()
                    n = 0
                    for message in messages:
                        at = message.find(b"\ndata: ")
                        if at < 0:
                            continue  # a comment (heartbeat)
                        # The event's own `time` (the first one: the job's times come after
                        # it); found without parsing the whole line, to keep this client cheap.
                        at = message.index(b'"time":"', at) + 8
                        lags.append(now - _epoch(message[at : message.index(b'"', at)].decode()))
                        n += 1
                    if n:
                        counts[i] += n
                        last_rx[0] = now
                        if not first_rx[0]:
                            first_rx[0] = now

        tasks = [asyncio.create_task(one(i)) for i in range(args.n)]
        while opened[0] < args.n:
            await asyncio.sleep(0.05)
            for t in tasks:
                if t.done() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        await asyncio.sleep(0.5)
        print("watchers ready", flush=True)
        started = time.time()
        while time.time() - started < args.max_s:
            await asyncio.sleep(0.2)
            if last_rx[0] and time.time() - last_rx[0] > 2.0:
                break
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    ms = [x * 1000 for x in lags]
    return {
        "watchers": args.n,
        "events_total": sum(counts),
        "min_per_watcher": min(counts),
        "max_per_watcher": max(counts),
        "first_rx": first_rx[0],
        "last_rx": last_rx[0],
        "lag_ms": summarize(ms),
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sse_watchers")
    p.add_argument("--url", required=True)
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--max-s", type=float, default=60.0)
    args = p.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        print(json.dumps(runner.run(watch(args))), flush=True)


if __name__ == "__main__":
    main()
