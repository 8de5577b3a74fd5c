"""`GET /v1/jobs:watch`: WatchJobs as Server-Sent Events.

The stream is the gRPC servicer's own `WatchJobs` generator (bounded per-watcher buffer, replay
from the durable log after `since_sequence`, no gap and no duplicate), written as one SSE message
per `JobEvent`: `id: <sequence>`, `event: <webhook type>` (`job.delivered`, …), `data: <the JobEvent
JSON on one line>`. `Last-Event-ID` (sent by a reconnecting `EventSource`) resumes exactly like
`since_sequence`. A comment line every `heartbeat_s` keeps proxies from closing an idle stream;
the writer awaits the socket, so a slow reader only fills its own buffer, then catches up from
the log. When the daemon stops, an `event: error` message carries the JSON error, then the stream
ends.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

from aiohttp import web

from pinsched import errors
from pinsched.api import convert as cv
from pinsched.api.servicers import watch_args
from pinsched.http import fastjson
from pinsched.http.errors import Aborted, ServicerContext, error_body
from pinsched.jobs import Transition
from pinsched.v1 import job_pb2, scheduler_pb2
from pinsched.webhook_format import event_type

__all__ = ["EventFormatter", "watch"]

CACHE: Final = 4096


class EventFormatter:
    """The SSE message of a JobEvent, built once per event and shared by every watcher."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int], bytes] = {}

    def __call__(self, event: job_pb2.JobEvent) -> bytes:
        key = (event.sequence, event.job.version)
        frame = self._cache.get(key)
        if frame is None:
            frame = self._build(event)
            self._cache[key] = frame
            if len(self._cache) > CACHE:
                for old in list(self._cache)[: CACHE // 4]:
                    del self._cache[old]
        return frame

    @staticmethod
    def _build(event: job_pb2.JobEvent) -> bytes:
        to_state = cv.state_from_proto(event.to_state, field="to_state")
        from_state = (cv.state_from_proto(event.from_state, field="from_state")
                      if event.from_state else None)
        kind = event_type(Transition(from_state=from_state, to_state=to_state,
                                     time=event.time.ToDatetime(), reason=""))
        data = json.dumps(fastjson.to_json(event), separators=(",", ":"))
        return f"id: {event.sequence}\nevent: {kind}\ndata: {data}\n\n".encode()


def _resume_point(request: web.Request, message: scheduler_pb2.WatchJobsRequest) -> None:
    last = request.headers.get("Last-Event-ID", "").strip()
    if not last:
        return
    if not last.isdigit():
        raise errors.InvalidArgument.one("Last-Event-ID",
                                         f"expected a sequence number, got {last!r}")
    message.since_sequence = int(last)


async def watch(request: web.Request, servicer: Any, message: scheduler_pb2.WatchJobsRequest,
                *, formatter: EventFormatter, heartbeat_s: float) -> web.StreamResponse:
    """Answer *request* with the event stream of *message* (its errors before the stream starts
    are raised as `PinschedError`, like any other RPC's)."""
    _resume_point(request, message)
    watch_args(message)  # a bad filter is a plain 400, not a broken stream
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    events = servicer.WatchJobs(message, ServicerContext())
    loop = asyncio.get_running_loop()
    handler = asyncio.current_task()
    last_write = [loop.time()]

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(max(0.0, last_write[0] + heartbeat_s - loop.time()))
            if loop.time() - last_write[0] < heartbeat_s:
                continue
            last_write[0] = loop.time()
            try:
                await response.write(b": heartbeat\n\n")
            except ConnectionError:  # the reader went away while the stream was idle
                if handler is not None:
                    handler.cancel()
                return

    beat = asyncio.create_task(heartbeat(), name="sse-heartbeat")
    try:
        await response.write(b": watching\n\n")
        try:
            async for event in events:
                last_write[0] = loop.time()
                await response.write(formatter(event))
        except Aborted as exc:
            _, body = error_body(exc.code, exc.message, exc.trailers)
            await response.write(f"event: error\ndata: {json.dumps(body)}\n\n".encode())
        beat.cancel()
        await response.write_eof()
    except ConnectionError:
        pass  # the reader went away: nothing more to send
    finally:
        beat.cancel()
        await events.aclose()
    return response
