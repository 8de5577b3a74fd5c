"""The HTTP layer's ceiling: a bare aiohttp server answering `POST /v1/jobs` by parsing the JSON
body and echoing it back inside a Job-shaped JSON object, with no proto conversion, no validation,
no store and no scheduler.

Same runtime as the daemon's HTTP door (uvloop, aiohttp, one process), so `SchedulePin over HTTP /
this echo` is the share of the HTTP ceiling that pinsched's own work leaves. Run:
`python -m bench.http_echo --port 0` (prints `http echo listening on N`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

import uvloop
from aiohttp import web


async def serve(port: int) -> None:
    counter = [0]

    async def schedule_pin(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        counter[0] += 1
        job = {
            "id": f"01JECHO{counter[0]:019d}",
            "account_id": body.get("account_id", ""),
            "pin": body.get("pin", {}),
            "state": "STATE_PENDING",
            "request_id": body.get("request_id", ""),
            "version": "1",
            "scheduled_at": body.get("scheduled_at"),
            "planned_at": body.get("scheduled_at"),
            "window_end": body.get("scheduled_at"),
            "create_time": body.get("scheduled_at"),
            "update_time": body.get("scheduled_at"),
            "history": [],
        }
        return web.Response(
            text=json.dumps(job, separators=(",", ":")), content_type="application/json"
        )

    app = web.Application()
    app.router.add_post("/v1/jobs", schedule_pin)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"http echo listening on {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.http_echo")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.port))


if __name__ == "__main__":
    main()
