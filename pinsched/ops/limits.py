"""Every bound a caller can run into, in one place, for every door (gRPC now, HTTP/JSON too).

Sizes are derived from the largest legitimate request, measured with the protobuf encoder:

* a 1,000-item `BatchSchedulePins` of maximal carousel pins (5 items, every text field at its
  limit, ASCII) is 27.4 MiB; of maximal single-image pins, 5.5 MiB;
* a `SchedulePin` with a base64 image at `IMAGE_MAX_BYTES` (10 MiB) is 10 MiB plus its fields.

`MAX_RECEIVE_BYTES` (32 MiB) holds either with headroom; anything larger is refused by the
transport before it is parsed (gRPC: RESOURCE_EXHAUSTED). JSON spells bytes in base64 (4/3) and
repeats the field names, so the HTTP door's body limit is larger (`HTTP_MAX_BODY_BYTES`).

Concurrency: an HTTP/2 connection carries at most `MAX_STREAMS_PER_CONNECTION` calls at once (the
client queues the rest, and none is refused for it); the server runs at most
`MAX_CONCURRENT_RPCS` calls in all and refuses more with RESOURCE_EXHAUSTED before reading
them; open `WatchJobs` streams are capped at
`MAX_WATCH_STREAMS` so that long-lived streams can never take every slot from unary calls.

Text limits (`DISPLAY_NAME_MAX`, `TOKEN_MAX`) and list limits (`MAX_WATCH_JOB_IDS`) are checked by
`pinsched.api.validation`; `MAX_REPORTED_VIOLATIONS` keeps an INVALID_ARGUMENT within the 8 KiB a
gRPC client accepts in trailing metadata by default; `RETRY_AFTER_MAX_S` clamps Pinterest's
rate-limit hints. The table in docs/operations.md ("Limits") lists them all with what a caller
gets past each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pinsched.core import ratehints

MiB: Final = 1024 * 1024

#: Pinterest's limit for an uploaded (base64) image, as validated (`image_base64.data`).
IMAGE_MAX_BYTES: Final = 10 * MiB
#: Items in one BatchSchedulePins.
MAX_BATCH: Final = 1000
#: Largest request message (serialized protobuf) the gRPC door receives.
MAX_RECEIVE_BYTES: Final = 32 * MiB
#: Largest request body the HTTP/JSON door reads (base64 is 4/3 of the bytes, plus field names).
HTTP_MAX_BODY_BYTES: Final = 48 * MiB
#: Concurrent calls (unary and streams) over all connections.
MAX_CONCURRENT_RPCS: Final = 512
#: Concurrent calls on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS).
MAX_STREAMS_PER_CONNECTION: Final = 100
#: Open WatchJobs streams (HTTP: open event streams) over all connections.
MAX_WATCH_STREAMS: Final = 256
#: `job_ids` in one WatchJobs request (far below SQLite's 32,766 bound variables).
MAX_WATCH_JOB_IDS: Final = 1000
#: Characters of an account's `display_name`.
DISPLAY_NAME_MAX: Final = 200
#: Characters of an access or refresh token (Pinterest's are ~100; printable ASCII, no spaces).
TOKEN_MAX: Final = 2048
#: Largest `utc_offset` of a local time, either sign (real offsets are -12 h to +14 h).
UTC_OFFSET_MAX_S: Final = 18 * 3600
#: Field violations listed in one INVALID_ARGUMENT; the rest are summarised in one more entry.
MAX_REPORTED_VIOLATIONS: Final = 20
#: Longest wait a Retry-After / X-RateLimit-Reset hint from Pinterest can impose (one day); kept
#: beside the hint parsing it bounds (`core.ratehints`), listed here with the other limits.
RETRY_AFTER_MAX_S: Final = ratehints.RETRY_AFTER_MAX_S


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLimits:
    """The transport limits of one daemon (tests shrink them; production uses the defaults)."""

    max_receive_bytes: int = MAX_RECEIVE_BYTES
    http_max_body_bytes: int = HTTP_MAX_BODY_BYTES
    max_concurrent_rpcs: int = MAX_CONCURRENT_RPCS
    max_streams_per_connection: int = MAX_STREAMS_PER_CONNECTION
    max_watch_streams: int = MAX_WATCH_STREAMS

    def grpc_options(self) -> list[tuple[str, int]]:
        """Channel arguments for `grpc.aio.server(options=...)`."""
        return [
            ("grpc.max_receive_message_length", self.max_receive_bytes),
            ("grpc.max_concurrent_streams", self.max_streams_per_connection),
            # gRPC's "overload protection" counts a stream until the server frees it, which
            # comes after its answer reached the client; a client that starts a new call as an
            # answer arrives (it counts by HTTP/2 and queues the rest) is then refused
            # REFUSED_STREAM ("UNAVAILABLE: Stream removed"). Count as HTTP/2 does. The cost:
            # streams answered (or reset by the client) but not yet freed no longer hold a
            # connection back; what bounds the server is `max_concurrent_rpcs` (running
            # calls) and the request size limit (docs/operations.md, "Limits").
            ("grpc.http.overload_protection", 0),
        ]


DEFAULT: Final = ServerLimits()
