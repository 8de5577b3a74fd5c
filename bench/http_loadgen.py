"""A load-generating HTTP client process: `POST /v1/jobs` (SchedulePin over the HTTP door) with N
connections, one call in flight on each, for a fixed time, against the daemon or the HTTP echo.

    python -m bench.http_loadgen --url http://127.0.0.1:PORT --concurrency 64 --duration 3

Prints one JSON line with the same keys as `bench.loadgen` (calls, errors, calls_per_s, latency
percentiles in ms) and the generator's own CPU per call. Calls made during `--warmup` seconds are
not counted.

The default client (`--client raw`) speaks HTTP/1.1 keep-alive over a plain asyncio protocol:
one pre-encoded request head, the response read by its `Content-Length`. It costs this process
a fraction of what aiohttp's client does per call (`--client aiohttp`, kept for comparison), so
that the generator, sharing the machine's cores with the server it measures, is not what limits
the echo or the daemon.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

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


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0 or self.waiter is None:
            return
        head = bytes(self.buffer[:head_end]).lower()
        length = -1
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name == b"content-length":
                length = int(value)
        if length < 0:
            self.waiter.set_exception(RuntimeError(f"no Content-Length in {head[:200]!r}"))
            return
        end = head_end + 4 + length
        if len(self.buffer) < end:
            return
        status = int(head[9:12])
        body = bytes(self.buffer[head_end + 4 : end])
        del self.buffer[:end]
        waiter, self.waiter = self.waiter, None
        waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionError("connection closed"))

    async def call(self, request: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


async def run_raw(args: argparse.Namespace) -> dict[str, object]:
    when = datetime.now(UTC) + timedelta(days=args.days_ahead)
    template = body_template(args.account, when)
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    head = (
        f"POST /v1/jobs HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    latencies: list[float] = []
    counted = {"calls": 0, "errors": 0}
    total = {"calls": 0}
    first_error: list[str] = []
    loop = asyncio.get_running_loop()
    cpu0 = time.process_time()
    conns = [(await loop.create_connection(_Conn, host, port))[1] for _ in range(args.concurrency)]
    t0 = time.perf_counter()
    measure_from = t0 + args.warmup
    stop_at = measure_from + args.duration

    async def worker(conn: _Conn) -> None:
        while True:
            start = time.perf_counter()
            if start >= stop_at:
                return
            data = json.dumps({**template, "request_id": uuid.uuid4().hex}).encode()
            status, body = await conn.call(b"%s%d\r\n\r\n%s" % (head, len(data), data))
            ok = status == 200
            if not ok and not first_error:
                first_error.append(f"{status}: {body[:200].decode(errors='replace')}")
            end = time.perf_counter()
            total["calls"] += 1
            if start >= measure_from and end <= stop_at:
                if ok:
                    latencies.append(end - start)
                    counted["calls"] += 1
                else:
                    counted["errors"] += 1

    await asyncio.gather(*(worker(c) for c in conns))
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    cpu = time.process_time() - cpu0
    return {
        "url": args.url,
        "client": "raw",
        "concurrency": args.concurrency,
        **counted,
        "calls_all": total["calls"],
        "elapsed_s": args.duration,
        "calls_per_s": counted["calls"] / args.duration,
        "latency_ms": summarize([x * 1000 for x in latencies]),
        "first_error": first_error[0] if first_error else None,
        "client_cpu_us_per_call": cpu * 1e6 / max(1, total["calls"]),
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
        "client": "aiohttp",
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
    p.add_argument("--client", choices=["raw", "aiohttp"], default="raw")
    args = p.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        fn = run_raw if args.client == "raw" else run
        print(json.dumps(runner.run(fn(args))), flush=True)


if __name__ == "__main__":
    main()
