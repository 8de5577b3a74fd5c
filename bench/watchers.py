"""Watch fan-out client processes.

    python -m bench.watchers watch   --target T --n 100 --max-s 30   (prints `watchers ready`)
    python -m bench.watchers produce --target T --rate 2000 --duration 5

`watch` opens N live `WatchJobs` streams (spread over 4 channels), counts the events of each and
the lag of every event (receive wall time - the event's `time`, which the daemon stamps just
before the commit), and stops 2 s after the events dry up. `produce` creates jobs due in 30
days with BatchSchedulePins of 100 at a fixed rate (open loop, at most 8 calls in flight):
each job creation is one event. Both print one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import uvloop

from bench.loadgen import request_template
from bench.stats import summarize
from pinsched.v1 import scheduler_pb2, scheduler_pb2_grpc

CHANNELS = 4


async def watch(args: argparse.Namespace) -> dict[str, Any]:
    channels = [grpc.aio.insecure_channel(args.target) for _ in range(CHANNELS)]
    for ch in channels:
        await ch.channel_ready()
    stubs = [scheduler_pb2_grpc.PinSchedulerStub(ch) for ch in channels]
    counts = [0] * args.n
    messages = [0] * args.n  # WatchJobs messages: each a batch of events
    lags: list[float] = []
    last_rx = [0.0]
    first_rx = [0.0]
    calls = []

    async def one(i: int) -> None:
        call = stubs[i % CHANNELS].WatchJobs(scheduler_pb2.WatchJobsRequest())
        calls.append(call)
        append = lags.append
        try:
            async for message in call:  # a batch: everything pending when it was sent
                now = time.time()
                for ev in message.events:
                    append(now - ev.time.seconds - ev.time.nanos / 1e9)
                counts[i] += len(message.events)
                messages[i] += 1
                last_rx[0] = now
                if not first_rx[0]:
                    first_rx[0] = now
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                raise

    tasks = [asyncio.create_task(one(i)) for i in range(args.n)]
    await asyncio.sleep(1.0)
    print("watchers ready", flush=True)
    started = time.time()
    while time.time() - started < args.max_s:
        await asyncio.sleep(0.2)
        if last_rx[0] and time.time() - last_rx[0] > 2.0:
            break
    for call in calls:
        call.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for ch in channels:
        await ch.close(None)
    ms = [x * 1000 for x in lags]
    return {
        "watchers": args.n,
        "events_total": sum(counts),
        "min_per_watcher": min(counts),
        "max_per_watcher": max(counts),
        "first_rx": first_rx[0],
        "last_rx": last_rx[0],
        "messages_total": sum(messages),
        "lag_ms": summarize(ms),
    }


async def produce(args: argparse.Namespace) -> dict[str, Any]:
    channel = grpc.aio.insecure_channel(args.target)
    await channel.channel_ready()
    stub = scheduler_pb2_grpc.PinSchedulerStub(channel)
    when = datetime.now(UTC) + timedelta(days=30)
    per_call = 100
    interval = per_call / args.rate
    sem = asyncio.Semaphore(8)
    created = [0]
    late_ticks = [0]

    async def send() -> None:
        batch = scheduler_pb2.BatchSchedulePinsRequest()
        for _ in range(per_call):
            r = batch.requests.add()
            r.CopyFrom(request_template(args.account, when))
            r.request_id = uuid.uuid4().hex
        try:
            resp = await stub.BatchSchedulePins(batch, timeout=30)
            created[0] += len(resp.jobs)
        finally:
            sem.release()

    started = time.time()
    t0 = time.perf_counter()
    tasks = []
    tick = 0
    while (now := time.perf_counter()) - t0 < args.duration:
        target = t0 + tick * interval
        if now < target:
            await asyncio.sleep(target - now)
        if sem.locked():
            late_ticks[0] += 1
        await sem.acquire()
        tasks.append(asyncio.create_task(send()))
        tick += 1
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    await channel.close(None)
    return {
        "rate_asked": args.rate,
        "created": created[0],
        "seconds": elapsed,
        "started": started,
        "rate_achieved": created[0] / elapsed,
        "ticks_behind": late_ticks[0],
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.watchers")
    p.add_argument("mode", choices=["watch", "produce"])
    p.add_argument("--target", required=True)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--max-s", type=float, default=60.0)
    p.add_argument("--rate", type=float, default=2000.0)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--account", default="bench")
    args = p.parse_args()
    fn = watch if args.mode == "watch" else produce
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        print(json.dumps(runner.run(fn(args))), flush=True)


if __name__ == "__main__":
    main()
