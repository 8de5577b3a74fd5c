"""The event bus fans a commit out as shared chunks: watchers with the same filter get the same
chunk objects (so each chunk is encoded once), buffers stay bounded, pending chunks merge into
one bounded batch, and a merged WatchJobs message is byte-for-byte the merged proto."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pinsched.api.watch_wire import WatchMessage, serialize
from pinsched.core.jobs import JobState, Transition
from pinsched.events import MAX_BATCH, Chunk, EventBus, Subscription, WatchFilter
from pinsched.store import Event
from pinsched.v1 import job_pb2, scheduler_pb2

AT = datetime(2026, 1, 1, tzinfo=UTC)


def events(first: int, n: int, account: str = "a") -> list[Event]:
    return [
        Event(
            seq,
            f"j{seq}",
            account,
            Transition(from_state=None, to_state=JobState.PENDING, time=AT, reason=""),
        )
        for seq in range(first, first + n)
    ]


def encoder(calls: list[int]) -> Callable[[Event], job_pb2.JobEvent]:
    def encode(event: Event) -> job_pb2.JobEvent:
        calls.append(event.sequence)
        return job_pb2.JobEvent(sequence=event.sequence, job_id=event.job_id)

    return encode


def test_watchers_with_one_filter_share_the_chunks_of_a_commit() -> None:
    """300 events published at once reach two unfiltered watchers as the same two chunk objects
    (256 + 44), and a watcher of one account only as that account's events."""
    bus = EventBus()
    one, two = bus.subscribe(WatchFilter()), bus.subscribe(WatchFilter())
    mine = bus.subscribe(WatchFilter(account_id="b"))
    bus.publish([*events(1, 290), *events(291, 10, account="b")])
    assert [len(c.events) for c in one.buffer] == [MAX_BATCH, 300 - MAX_BATCH]
    assert all(a is b for a, b in zip(one.buffer, two.buffer, strict=True))
    assert [e.sequence for c in mine.buffer for e in c.events] == list(range(291, 301))


def test_a_full_buffer_is_dropped_not_grown() -> None:
    """A watcher whose buffer would exceed its capacity is marked overflowed and holds nothing
    (it catches up from the log), while another watcher is unaffected."""
    bus = EventBus(buffer=5)
    slow = bus.subscribe(WatchFilter())
    bus.publish(events(1, 3))
    bus.publish(events(4, 3))
    assert slow.overflowed
    assert not slow.buffer
    assert slow.size == 0
    fresh = bus.subscribe(WatchFilter())
    bus.publish(events(7, 2))
    assert not fresh.overflowed
    assert fresh.size == 2


def test_pending_chunks_merge_up_to_the_bound_and_a_big_one_is_split() -> None:
    """`take` hands over whole pending chunks in order up to the bound, and splits a first chunk
    bigger than the bound, keeping the rest first in line."""
    sub = Subscription(WatchFilter(), capacity=10_000)
    for first in (1, 101, 201):
        sub.offer(Chunk(tuple(events(first, 100))))
    taken = sub.take(256)
    assert [c.events[0].sequence for c in taken] == [1, 101]
    assert sub.size == 100
    sub.offer(Chunk(tuple(events(301, 300))))
    assert [len(c.events) for c in sub.take(150)] == [100]
    split = sub.take(150)
    assert [(c.events[0].sequence, len(c.events)) for c in split] == [(301, 150)]
    assert sub.buffer[0].events[0].sequence == 451
    assert sub.size == 150


def test_a_merged_message_is_the_merged_proto_and_each_chunk_is_encoded_once() -> None:
    """Two chunks sent as one WatchJobs message parse as one message with both chunks' events in
    order; sending the same chunks to another watcher encodes no event again."""
    calls: list[int] = []
    encode = encoder(calls)
    chunks = [Chunk(tuple(events(1, 3))), Chunk(tuple(events(4, 2)))]
    wire = serialize(WatchMessage(chunks, encode))
    parsed = scheduler_pb2.WatchJobsResponse.FromString(wire)
    assert [e.sequence for e in parsed.events] == [1, 2, 3, 4, 5]
    assert calls == [1, 2, 3, 4, 5]
    assert serialize(WatchMessage(chunks[1:], encode)) == (
        scheduler_pb2.WatchJobsResponse(
            events=[job_pb2.JobEvent(sequence=s, job_id=f"j{s}") for s in (4, 5)]
        ).SerializeToString()
    )
    assert calls == [1, 2, 3, 4, 5]
