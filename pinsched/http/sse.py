"""`GET /v1/jobs:watch`: WatchJobs as Server-Sent Events.

The stream is the gRPC servicer's own `WatchJobs` generator (bounded per-watcher buffer, replay
from the durable log after `since_sequence`, no gap and no duplicate); its batched messages are
written as one SSE message per `JobEvent`: `id: <sequence>`, `event: <webhook type>`
(`job.delivered`, …), `data: <the JobEvent JSON on one line>`. `Last-Event-ID` (sent by a
reconnecting `EventSource`) resumes exactly like `since_sequence`. A comment line every
`heartbeat_s` keeps proxies from closing an idle stream; the writer awaits the socket, so a slow
reader only fills its own buffer, then catches up from the log. When the daemon stops, an
`event: error` message carries the JSON error, then the stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from pinsched.api import convert as cv
from pinsched.api.watch import watch_args
from pinsched.api.watch_wire import WatchMessage
from pinsched.core import errors
from pinsched.core.jobs import Transition
from pinsched.http import fastjson
from pinsched.http.errors import Aborted, ServicerContext, error_body
from pinsched.v1 import job_pb2, scheduler_pb2
from pinsched.webhooks.messages import event_type

__all__ = ["EventFormatter", "watch"]

CACHE: Final = 4096
_ANY_TIME: Final = datetime(1970, 1, 1, tzinfo=UTC)
_DUMPS: Final = json.JSONEncoder(separators=(",", ":")).encode


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
        from_state = (
            cv.state_from_proto(event.from_state, field="from_state") if event.from_state else None
        )
        # The reason names the webhook type of an entry that keeps the state (media staging,
        # at risk); the time does not matter to the type.
        entry = Transition(
            from_state=from_state, to_state=to_state, time=_ANY_TIME, reason=event.reason
        )
        kind = event_type(entry)
        data = _DUMPS(fastjson.to_json(event))
        return f"id: {event.sequence}\nevent: {kind}\ndata: {data}\n\n".encode()


def _resume_point(request: web.Request, message: scheduler_pb2.WatchJobsRequest) -> None:
    last = request.headers.get("Last-Event-ID", "").strip()
    if not last:
        return
    if not last.isdigit():
        raise errors.InvalidArgument.one(
            "Last-Event-ID", f"expected a sequence number, got {last!r}"
        )
    message.since_sequence = int(last)


async def watch(
    request: web.Request,
    servicer: Any,
    message: scheduler_pb2.WatchJobsRequest,
    *,
    formatter: EventFormatter,
    heartbeat_s: float,
) -> web.StreamResponse:
    """Answer *request* with the event stream of *message* (its errors before the stream starts
    are raised as `PinschedError`, like any other RPC's)."""
    _resume_point(request, message)
    watch_args(message)  # a bad filter is a plain 400, not a broken stream
    servicer.check_watch_room()  # so is a full house: 429 before the stream starts
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    stream = _Stream(servicer.WatchJobs(message, ServicerContext()), formatter, heartbeat_s)
    try:
        await stream.run(response)
        await response.write_eof()
    except ConnectionError:
        pass  # the reader went away: nothing more to send
    return response


class _Stream:
    """One open event stream: a pump task turns the watch generator's events into frames; the
    handler writes whatever is ready in one write (the events of one commit reach the socket
    together, not one system call each) and waits for the socket when it is full, while the
    pump stops taking events once `MAX_PENDING` events wait (the watch buffer then overflows and
    catches up from the log, as for a slow gRPC watcher)."""

    MAX_PENDING = 1024

    def __init__(
        self,
        events: AsyncIterator[WatchMessage | scheduler_pb2.WatchJobsResponse],
        formatter: EventFormatter,
        heartbeat_s: float,
    ) -> None:
        self.events, self.formatter, self.heartbeat_s = events, formatter, heartbeat_s
        self.frames: list[bytes] = [b": watching\n\n"]
        self.ready = asyncio.Event()
        self.ready.set()
        self.room = asyncio.Event()
        self.room.set()
        self.done = False
        self.pending = 0  # events in `frames`
        self.last_write = 0.0

    def _append(self, message: WatchMessage | scheduler_pb2.WatchJobsResponse) -> int:
        """Queue the frames of *message* (one SSE message per event); the number of events."""
        if not isinstance(message, WatchMessage):
            self.frames.extend(self.formatter(event) for event in message.events)
            return len(message.events)
        n = 0
        for chunk in message.chunks:  # each chunk's frames are built once for every watcher
            frames = chunk.wire.get("sse")
            if frames is None:
                frames = b"".join(self.formatter(e) for e in message.chunk_events(chunk))
                chunk.wire["sse"] = frames
            self.frames.append(frames)
            n += len(chunk.events)
        return n

    def _push(self, frame: bytes) -> None:
        self.frames.append(frame)
        self.ready.set()

    async def _pump(self) -> None:
        try:
            async for message in self.events:
                self.pending += self._append(message)
                self.ready.set()
                if self.pending >= self.MAX_PENDING:
                    self.room.clear()
                    await self.room.wait()
        except Aborted as exc:
            _, body = error_body(exc.code, exc.message, exc.trailers)
            self._push(f"event: error\ndata: {json.dumps(body)}\n\n".encode())
        finally:
            self.done = True
            self.ready.set()

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(0.0, self.last_write + self.heartbeat_s - loop.time()))
            if loop.time() - self.last_write >= self.heartbeat_s and not self.frames:
                self._push(b": heartbeat\n\n")

    async def run(self, response: web.StreamResponse) -> None:
        loop = asyncio.get_running_loop()
        self.last_write = loop.time()
        pump = asyncio.create_task(self._pump(), name="sse-pump")
        beat = asyncio.create_task(self._heartbeat(), name="sse-heartbeat")
        try:
            while True:
                await self.ready.wait()
                self.ready.clear()
                if self.frames:
                    chunk = b"".join(self.frames)
                    self.frames.clear()
                    self.pending = 0
                    self.room.set()
                    self.last_write = loop.time()
                    await response.write(chunk)
                if self.done and not self.frames:
                    return
        finally:
            beat.cancel()
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
            await self.events.aclose()  # type: ignore[attr-defined]
