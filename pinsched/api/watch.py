"""The WatchJobs stream of the PinScheduler service: the cap on open streams (gRPC and HTTP event
streams share it), each event's wire form built once for every watcher, and the request's filter
and resume point (`watch_args`, checked by the HTTP door too before it opens a stream)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from pinsched.api import convert as cv
from pinsched.api.status import streaming
from pinsched.api.watch_wire import WatchMessage
from pinsched.core import errors
from pinsched.events import EventBus, WatchFilter, watch_chunks
from pinsched.ops import limits
from pinsched.service import PinService
from pinsched.store import Event
from pinsched.v1 import job_pb2, scheduler_pb2, scheduler_pb2_grpc

EVENT_CACHE = 4096  # recent events' wire form, shared by watchers
Ctx = grpc.aio.ServicerContext[Any, Any]


class WatchJobsServicer(scheduler_pb2_grpc.PinSchedulerServicer):
    """WatchJobs, the base of `pinsched.api.servicers.PinSchedulerServicer` (which sets the
    attributes below in its constructor)."""

    service: PinService
    bus: EventBus
    max_watchers: int
    watching: int
    _event_cache: dict[tuple[int, int], job_pb2.JobEvent]

    def _event_proto(self, event: Event) -> job_pb2.JobEvent:
        """The wire form of *event*, built once and shared by every watcher (fan-out)."""
        # The job's version tells a live event (job as of the event) from a replayed one (job
        # as it is now): same version, same content.
        key = (event.sequence, event.job.version if event.job is not None else -1)
        msg = self._event_cache.get(key)
        if msg is None:
            msg = cv.stored_event_to_proto(event)
            self._event_cache[key] = msg
            if len(self._event_cache) > EVENT_CACHE:
                for old in list(self._event_cache)[: EVENT_CACHE // 4]:
                    del self._event_cache[old]
        return msg

    def check_watch_room(self) -> None:
        """`ResourceExhausted` when every watch stream (gRPC and HTTP event streams share the
        cap) is taken."""
        if self.watching >= self.max_watchers:
            raise errors.ResourceExhausted(
                f"{self.watching} WatchJobs streams are open, the most this daemon serves;"
                " close one or retry later"
            )

    @streaming  # yields WatchMessage, not WatchJobsResponse: watch_wire serializes it
    async def WatchJobs(  # type: ignore[override]
        self, request: scheduler_pb2.WatchJobsRequest, context: Ctx
    ) -> AsyncIterator[WatchMessage]:
        flt, since = watch_args(request)
        self.check_watch_room()
        self.watching += 1  # before any await: concurrent arrivals cannot overshoot the cap
        try:
            await context.send_initial_metadata(())  # tells the client the stream is open
            # Each message carries what is pending once the previous one is written: one commit's
            # events while the watcher keeps up, more (up to events.MAX_BATCH) when it is behind;
            # each chunk is encoded once for every watcher (watch_wire, its serializer).
            async for chunks in watch_chunks(self.service.events, self.bus, flt, since):
                yield WatchMessage(chunks, self._event_proto)
        finally:
            self.watching -= 1
        if self.bus.closed.is_set():
            raise errors.ShuttingDown()


def watch_args(request: scheduler_pb2.WatchJobsRequest) -> tuple[WatchFilter, int | None]:
    """The filter and resume point of a WatchJobs request (`InvalidArgument` when bad); the HTTP
    door checks them before it commits to a `text/event-stream` answer."""
    since = request.since_sequence if request.HasField("since_sequence") else None
    if since is not None and since < 0:
        raise errors.InvalidArgument.one("since_sequence", "must not be negative")
    if len(request.job_ids) > limits.MAX_WATCH_JOB_IDS:
        raise errors.InvalidArgument.one(
            "job_ids",
            f"at most {limits.MAX_WATCH_JOB_IDS} job ids, got "
            f"{len(request.job_ids)}: watch by account_id, or open several streams",
        )
    flt = WatchFilter(
        account_id=request.account_id,
        job_ids=frozenset(request.job_ids),
        to_states=frozenset(
            cv.state_from_proto(s, field=f"states[{i}]") for i, s in enumerate(request.states)
        ),
    )
    return flt, since
