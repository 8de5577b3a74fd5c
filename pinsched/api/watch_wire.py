"""The wire form of WatchJobs messages, built once per chunk of events and shared by watchers.

`WatchJobs` yields `WatchMessage`s (the chunks of `pinsched.events` a watcher gets next) instead
of `WatchJobsResponse` protos; `serialize` — the method's response serializer, installed by
`register` — turns one into bytes by joining each chunk's cached `WatchJobsResponse` encoding
(a repeated field's encodings concatenate into the encoding of the merged message, so a watcher
that is behind still gets its pending chunks as one message). A commit's events are thus encoded
once, whether 1 or 1,000 watchers get them. `WatchMessage.events` gives the JobEvent protos for
in-process readers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc

from pinsched.events import Chunk
from pinsched.store import Event
from pinsched.v1 import job_pb2, scheduler_pb2

__all__ = ["WatchMessage", "register", "serialize"]

EventEncoder = Callable[[Event], job_pb2.JobEvent]


class WatchMessage:
    """One WatchJobs message: *chunks* of events, each encoded (once) by *encode*."""

    __slots__ = ("chunks", "encode")

    def __init__(self, chunks: Sequence[Chunk], encode: EventEncoder) -> None:
        self.chunks, self.encode = chunks, encode

    @property
    def events(self) -> list[job_pb2.JobEvent]:
        return [self.encode(event) for chunk in self.chunks for event in chunk.events]

    def chunk_events(self, chunk: Chunk) -> list[job_pb2.JobEvent]:
        return [self.encode(event) for event in chunk.events]

    def SerializeToString(self) -> bytes:
        parts = []
        for chunk in self.chunks:
            wire = chunk.wire.get("grpc")
            if wire is None:
                wire = scheduler_pb2.WatchJobsResponse(
                    events=self.chunk_events(chunk)
                ).SerializeToString()
                chunk.wire["grpc"] = wire
            parts.append(wire)
        return parts[0] if len(parts) == 1 else b"".join(parts)


def serialize(message: WatchMessage | scheduler_pb2.WatchJobsResponse) -> bytes:
    """WatchJobs' response serializer: a `WatchMessage` from its chunks' cached bytes."""
    return message.SerializeToString()


def register(servicer: Any, server: grpc.aio.Server) -> None:
    """Serve *servicer*'s `WatchJobs` with `serialize` (replaces the generated handler, whose
    serializer only takes `WatchJobsResponse`; call after `add_PinSchedulerServicer_to_server`)."""
    server.add_registered_method_handlers(  # type: ignore[attr-defined]  # not in grpc-stubs
        "pinsched.v1.PinScheduler",
        {
            "WatchJobs": grpc.unary_stream_rpc_method_handler(
                servicer.WatchJobs,
                request_deserializer=scheduler_pb2.WatchJobsRequest.FromString,
                response_serializer=serialize,
            )
        },
    )
