"""A load-generating client process: SchedulePin or BatchSchedulePins at a fixed number of calls
in flight for a fixed time, against the daemon or the echo server (same stub, same messages).

    python -m bench.loadgen --target 127.0.0.1:PORT --account A --concurrency 64 --duration 3
    python -m bench.loadgen ... --batch 1000 --concurrency 2

Prints one JSON line: calls, items (pins), errors, elapsed_s, calls_per_s, items_per_s and the
latency percentiles of the calls (ms). Calls made during `--warmup` seconds are not counted.
Uses the generated stub directly (one channel, the AsyncClient's options) to keep the client's
own CPU cost low: it shares the machine with the server it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import uvloop

from bench.stats import summarize
from pinsched.v1 import job_pb2, scheduler_pb2, scheduler_pb2_grpc

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def request_template(
    account: str,
    when: datetime,
    board: str = "1001",
) -> scheduler_pb2.SchedulePinRequest:
    req = scheduler_pb2.SchedulePinRequest(
        account_id=account,
        pin=job_pb2.Pin(
            board_id=board,
            title="Benchmark pin",
            description="A pin a bench made.",
            link="https://example.com/bench",
            alt_text="bench",
        ),
    )
    req.pin.media_source.image_url.url = "https://example.com/bench.jpg"
    req.scheduled_at.FromDatetime(when)
    return req


async def run(args: argparse.Namespace) -> dict[str, object]:
    channel = grpc.aio.insecure_channel(
        args.target,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    stub = scheduler_pb2_grpc.PinSchedulerStub(channel)
    await channel.channel_ready()
    when = datetime.now(UTC) + timedelta(days=args.days_ahead)
    latencies: list[float] = []
    counted = {"calls": 0, "items": 0, "errors": 0}
    total = {"calls": 0, "items": 0}  # warm-up and tail included (for CPU per call)
    t0 = time.perf_counter()
    measure_from = t0 + args.warmup
    stop_at = measure_from + args.duration
    first_error: list[str] = []

    async def worker(w: int) -> None:
        if args.batch:
            batch = scheduler_pb2.BatchSchedulePinsRequest()
            for _ in range(args.batch):
                batch.requests.append(request_template(args.account, when))
        else:
            one = request_template(args.account, when)
        while True:
            start = time.perf_counter()
            if start >= stop_at:
                return
            try:
                if args.batch:
                    for r in batch.requests:
                        r.request_id = uuid.uuid4().hex
                    await stub.BatchSchedulePins(batch, timeout=60)
                    n = args.batch
                else:
                    one.request_id = uuid.uuid4().hex
                    await stub.SchedulePin(one, timeout=30)
                    n = 1
                ok = True
            except grpc.aio.AioRpcError as exc:
                ok, n = False, 0
                if not first_error:
                    first_error.append(f"{exc.code().name}: {exc.details()}")
            end = time.perf_counter()
            total["calls"] += 1
            total["items"] += n
            if start >= measure_from and end <= stop_at:
                if ok:
                    latencies.append(end - start)
                    counted["calls"] += 1
                    counted["items"] += n
                else:
                    counted["errors"] += 1

    await asyncio.gather(*(worker(w) for w in range(args.concurrency)))
    await channel.close(None)
    elapsed = args.duration
    return {
        "target": args.target,
        "concurrency": args.concurrency,
        "batch": args.batch,
        **counted,
        "calls_all": total["calls"],
        "items_all": total["items"],
        "elapsed_s": elapsed,
        "calls_per_s": counted["calls"] / elapsed,
        "items_per_s": counted["items"] / elapsed,
        "latency_ms": summarize([x * 1000 for x in latencies]),
        "first_error": first_error[0] if first_error else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.loadgen")
    p.add_argument("--target", required=True)
    p.add_argument("--account", default="bench")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--batch", type=int, default=0, help="BatchSchedulePins of this size (0: unary)")
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--days-ahead", type=float, default=30.0)
    args = p.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        print(json.dumps(runner.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
