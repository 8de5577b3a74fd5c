"""Event fan-out: committed events → live watchers, and the resumable watch algorithm.

The store hands every committed batch to `EventBus.publish` (in sequence order). The bus cuts it
into `Chunk`s (at most `MAX_BATCH` events) once per distinct watch filter, and hands the same
chunk objects to every watcher with that filter: per commit, the fan-out costs one append per
watcher, not one per event per watcher, and a chunk's encodings (`Chunk.wire`: the WatchJobs
bytes, the SSE frames) are built once for all of them. Each watcher has a bounded buffer; a
watcher that falls behind is never waited for: its buffer is dropped and it catches up from the
durable log, so a slow watcher cannot slow the scheduler and still sees every event exactly once.
`watch_chunks` hands a watcher everything pending at once (up to a bound): one commit's events
per batch while it keeps up, bigger batches when it falls behind. It reads the log through an
`EventLog` (the store, handed on by `PinService.events`), so a watcher holds no `Store`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pinsched.core.jobs import Job, JobState
from pinsched.store import Event

DEFAULT_BUFFER = 10_000
#: The most events in one batch of `watch_chunks` (one WatchJobs message).
MAX_BATCH = 256


class EventLog(Protocol):
    """The durable event log a watch replays from (`Store` is one)."""

    async def last_sequence(self) -> int: ...

    async def events_after(
        self,
        sequence: int,
        *,
        account_id: str = "",
        job_ids: Sequence[str] = (),
        to_states: Iterable[JobState] = (),
        limit: int = 1000,
    ) -> list[Event]: ...

    async def get_jobs(self, job_ids: Iterable[str]) -> dict[str, Job]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchFilter:
    account_id: str = ""
    job_ids: frozenset[str] = frozenset()
    to_states: frozenset[JobState] = frozenset()

    @property
    def is_everything(self) -> bool:
        return not (self.account_id or self.job_ids or self.to_states)

    def matches(self, event: Event) -> bool:
        return (
            (not self.account_id or event.account_id == self.account_id)
            and (not self.job_ids or event.job_id in self.job_ids)
            and (not self.to_states or event.transition.to_state in self.to_states)
        )


class Chunk:
    """Consecutive matching events of one commit (or one replayed page), at most `MAX_BATCH`,
    shared by every watcher that gets them; `wire` caches their encodings by kind."""

    __slots__ = ("events", "wire")

    def __init__(self, events: tuple[Event, ...]) -> None:
        self.events = events
        self.wire: dict[str, bytes] = {}

    @property
    def last(self) -> int:
        return self.events[-1].sequence


def _chunks(events: Sequence[Event], size: int) -> list[Chunk]:
    return [Chunk(tuple(events[i : i + size])) for i in range(0, len(events), size)]


class Subscription:
    """One watcher's bounded buffer of live chunks (at most *capacity* events in all)."""

    def __init__(self, flt: WatchFilter, capacity: int) -> None:
        self.filter = flt
        self.capacity = capacity
        self.buffer: deque[Chunk] = deque()
        self.size = 0  # events in `buffer`
        self.overflowed = False
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, chunk: Chunk) -> None:
        if self.overflowed:
            return
        if self.size + len(chunk.events) > self.capacity:
            self.overflowed = True
            self.drop()
        else:
            self.buffer.append(chunk)
            self.size += len(chunk.events)
        self.wake()

    def drop(self) -> None:
        self.buffer.clear()
        self.size = 0

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until the next `offer` or `wake` (one future, no task per wait)."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def take(self, max_batch: int) -> list[Chunk]:
        """The buffered chunks, oldest first, up to *max_batch* events (a bigger first chunk is
        split)."""
        out: list[Chunk] = []
        n = 0
        buffer = self.buffer
        while buffer:
            size = len(buffer[0].events)
            if n + size > max_batch:
                if not out:  # split it: the rest stays first in line
                    head = buffer.popleft()
                    buffer.appendleft(Chunk(head.events[max_batch:]))
                    out.append(Chunk(head.events[:max_batch]))
                    n = max_batch
                break
            out.append(buffer.popleft())
            n += size
        self.size -= n
        return out


class EventBus:
    """Publishes committed events to every live subscription without ever blocking."""

    def __init__(self, *, buffer: int = DEFAULT_BUFFER) -> None:
        self._subs: set[Subscription] = set()
        self._buffer = buffer
        self.closed = asyncio.Event()
        self.published = 0

    @property
    def watchers(self) -> int:
        return len(self._subs)

    def publish(self, events: Sequence[Event]) -> None:
        self.published += len(events)
        if not events or not self._subs:
            return
        by_filter: dict[WatchFilter, list[Chunk]] = {}
        for sub in self._subs:
            chunks = by_filter.get(sub.filter)
            if chunks is None:
                flt = sub.filter
                matching = events if flt.is_everything else [e for e in events if flt.matches(e)]
                chunks = by_filter[flt] = _chunks(matching, MAX_BATCH)
            for chunk in chunks:
                sub.offer(chunk)

    def subscribe(self, flt: WatchFilter) -> Subscription:
        sub = Subscription(flt, self._buffer)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def close(self) -> None:
        """End every watch (shutdown)."""
        self.closed.set()
        for sub in self._subs:
            sub.wake()


async def watch(
    store: EventLog, bus: EventBus, flt: WatchFilter, since_sequence: int | None
) -> AsyncIterator[Event]:
    """Yield matching events one by one (see `watch_chunks`)."""
    async for chunks in watch_chunks(store, bus, flt, since_sequence):
        for chunk in chunks:
            for event in chunk.events:
                yield event


async def watch_batches(
    store: EventLog,
    bus: EventBus,
    flt: WatchFilter,
    since_sequence: int | None,
    *,
    max_batch: int = MAX_BATCH,
) -> AsyncIterator[list[Event]]:
    """`watch_chunks` as flat lists of events."""
    async for chunks in watch_chunks(store, bus, flt, since_sequence, max_batch=max_batch):
        yield [event for chunk in chunks for event in chunk.events]


async def watch_chunks(
    store: EventLog,
    bus: EventBus,
    flt: WatchFilter,
    since_sequence: int | None,
    *,
    max_batch: int = MAX_BATCH,
) -> AsyncIterator[list[Chunk]]:
    """Yield matching events as batches of chunks holding everything pending (at most
    *max_batch* events): those after *since_sequence* from the log first (if given), then live
    ones; no gap, no duplicate. Ends when the bus closes."""
    sub = bus.subscribe(flt)
    try:
        last = since_sequence if since_sequence is not None else await store.last_sequence()
        if since_sequence is not None:
            async for chunk in _replay(store, flt, last, max_batch):
                last = chunk.last
                yield [chunk]
        while not bus.closed.is_set():
            if sub.overflowed:
                sub.overflowed = False
                sub.drop()
                async for chunk in _replay(store, flt, last, max_batch):
                    last = chunk.last
                    yield [chunk]
                continue
            if not sub.buffer:
                await sub.wait()
                continue
            out: list[Chunk] = []
            for chunk in sub.take(max_batch):
                if chunk.events[0].sequence <= last:  # overlaps what the log already gave
                    fresh = tuple(e for e in chunk.events if e.sequence > last)
                    if not fresh:
                        continue
                    chunk = Chunk(fresh)
                out.append(chunk)
                last = chunk.last
            if out:
                yield out
    finally:
        bus.unsubscribe(sub)


async def _replay(
    store: EventLog, flt: WatchFilter, after: int, max_batch: int
) -> AsyncIterator[Chunk]:
    while True:
        page = await store.events_after(
            after,
            account_id=flt.account_id,
            job_ids=sorted(flt.job_ids),
            to_states=flt.to_states,
            limit=500,
        )
        if not page:
            return
        jobs = await store.get_jobs({e.job_id for e in page})
        events = [
            Event(
                event.sequence,
                event.job_id,
                event.account_id,
                event.transition,
                jobs.get(event.job_id),
            )
            for event in page
        ]
        for chunk in _chunks(events, max_batch):
            yield chunk
        after = page[-1].sequence
