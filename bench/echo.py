"""The RPC layer's ceiling: a bare grpc.aio server answering `pinsched.v1.PinScheduler` calls by
echoing the request back as a `Job`, with no validation, no store and no scheduler.

Same runtime as the daemon (uvloop, grpc.aio, the same generated messages and server options),
so `SchedulePin on the daemon / SchedulePin on the echo` is the share of the RPC ceiling that
pinsched's own work leaves. Run: `python -m bench.echo --port 0` (prints `echo listening on N`).

`--daemon-setup` serves the echo the way the daemon serves its calls: its channel options, its
limit on concurrent RPCs and its two interceptors (the guard, the RPC metrics). Set beside the
bare echo (`bench.floors`), it shows what that setup costs per call.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import grpc
import uvloop

from pinsched.v1 import job_pb2, scheduler_pb2

SERVICE = "pinsched.v1.PinScheduler"


def _job(req: scheduler_pb2.SchedulePinRequest, n: int) -> job_pb2.Job:
    job = job_pb2.Job(
        id=f"01JECHO{n:019d}",
        account_id=req.account_id,
        pin=req.pin,
        state=job_pb2.Job.STATE_PENDING,
        request_id=req.request_id,
        version=1,
    )
    job.scheduled_at.CopyFrom(req.scheduled_at)
    job.planned_at.CopyFrom(req.scheduled_at)
    job.window_end.CopyFrom(req.scheduled_at)
    job.create_time.CopyFrom(req.scheduled_at)
    job.update_time.CopyFrom(req.scheduled_at)
    return job


def _daemon_setup() -> dict[str, Any]:
    """The daemon's `grpc.aio.server` arguments (`pinsched.daemon.grpc_server.build`)."""
    from pinsched.api.guard import Guard
    from pinsched.ops.limits import DEFAULT
    from pinsched.ops.metrics import Metrics

    return {
        "interceptors": [Guard(None), Metrics().interceptor()],
        "maximum_concurrent_rpcs": DEFAULT.max_concurrent_rpcs,
        "options": [("grpc.so_reuseport", 0), *DEFAULT.grpc_options()],
    }


async def serve(port: int, *, daemon_setup: bool = False) -> None:
    counter = [0]

    async def schedule_pin(req: scheduler_pb2.SchedulePinRequest, ctx: Any) -> job_pb2.Job:
        counter[0] += 1
        return _job(req, counter[0])

    async def batch(
        req: scheduler_pb2.BatchSchedulePinsRequest,
        ctx: Any,
    ) -> scheduler_pb2.BatchSchedulePinsResponse:
        out = scheduler_pb2.BatchSchedulePinsResponse()
        for r in req.requests:
            counter[0] += 1
            out.jobs.append(_job(r, counter[0]))
        return out

    handlers = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "SchedulePin": grpc.unary_unary_rpc_method_handler(
                schedule_pin,
                request_deserializer=scheduler_pb2.SchedulePinRequest.FromString,
                response_serializer=job_pb2.Job.SerializeToString,
            ),
            "BatchSchedulePins": grpc.unary_unary_rpc_method_handler(
                batch,
                request_deserializer=scheduler_pb2.BatchSchedulePinsRequest.FromString,
                response_serializer=scheduler_pb2.BatchSchedulePinsResponse.SerializeToString,
            ),
        },
    )
    server = grpc.aio.server(
        **(
            _daemon_setup()
            if daemon_setup
            else {
                "options": [
                    ("grpc.so_reuseport", 0),
                    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ]
            }
        )
    )
    server.add_generic_rpc_handlers((handlers,))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"echo listening on {bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.echo")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--daemon-setup",
        action="store_true",
        help="the daemon's server options, RPC limit and interceptors",
    )
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.port, daemon_setup=args.daemon_setup))


if __name__ == "__main__":
    main()
