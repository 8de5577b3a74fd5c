"""Event fan-out: committed events → live watchers, and the resumable watch algorithm.

The store hands every committed batch to `EventBus.publish` (in sequence order). Each watcher has
a bounded buffer; a watcher that falls behind is never waited for: its buffer is dropped and it
catches up from the durable log, so a slow watcher cannot slow the scheduler and still sees every
event exactly once. `watch_batches` hands a watcher everything pending at once (up to a bound):
one event per batch while it keeps up, bigger batches when it falls behind.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from pinsched.jobs import JobState
from pinsched.store import Event, Store

DEFAULT_BUFFER = 10_000
#: The most events in one batch of `watch_batches` (one WatchJobs message).
MAX_BATCH = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchFilter:
    account_id: str = ""
    job_ids: frozenset[str] = frozenset()
    to_states: frozenset[JobState] = frozenset()

    def matches(self, event: Event) -> bool:
        return (
            (not self.account_id or event.account_id == self.account_id)
            and (not self.job_ids or event.job_id in self.job_ids)
            and (not self.to_states or event.transition.to_state in self.to_states)
        )


class Subscription:
    """One watcher's bounded buffer of live events."""

    def __init__(self, flt: WatchFilter, capacity: int) -> None:
        self.filter = flt
        self.capacity = capacity
        self.buffer: deque[Event] = deque()
        self.overflowed = False
        self.ready = asyncio.Event()

    def offer(self, events: Sequence[Event]) -> None:
        if self.overflowed:
            return
        for event in events:
            if self.filter.matches(event):
                if len(self.buffer) >= self.capacity:
                    self.overflowed = True
                    self.buffer.clear()
                    break
                self.buffer.append(event)
        self.ready.set()


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
        for sub in list(self._subs):
            sub.offer(events)

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
            sub.ready.set()


async def watch(
    store: Store, bus: EventBus, flt: WatchFilter, since_sequence: int | None
) -> AsyncIterator[Event]:
    """Yield matching events one by one (see `watch_batches`)."""
    async for batch in watch_batches(store, bus, flt, since_sequence):
        for event in batch:
            yield event


async def watch_batches(
    store: Store,
    bus: EventBus,
    flt: WatchFilter,
    since_sequence: int | None,
    *,
    max_batch: int = MAX_BATCH,
) -> AsyncIterator[list[Event]]:
    """Yield matching events in batches of everything pending (at most *max_batch*): those after
    *since_sequence* from the log first (if given), then live ones; no gap, no duplicate. Ends
    when the bus closes."""
    sub = bus.subscribe(flt)
    try:
        last = since_sequence if since_sequence is not None else await store.last_sequence()
        if since_sequence is not None:
            async for batch in _replay(store, flt, last, max_batch):
                last = batch[-1].sequence
                yield batch
        while not bus.closed.is_set():
            if sub.overflowed:
                sub.overflowed = False
                sub.buffer.clear()
                async for batch in _replay(store, flt, last, max_batch):
                    last = batch[-1].sequence
                    yield batch
                continue
            if not sub.buffer:
                sub.ready.clear()
                closed = asyncio.ensure_future(bus.closed.wait())
                ready = asyncio.ensure_future(sub.ready.wait())
                try:
                    await asyncio.wait({closed, ready}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    closed.cancel()
                    ready.cancel()
                continue
            buffer, out = sub.buffer, list[Event]()
            while buffer and len(out) < max_batch:
                event = buffer.popleft()
                if event.sequence > last:
                    last = event.sequence
                    out.append(event)
            if out:
                yield out
    finally:
        bus.unsubscribe(sub)


async def _replay(
    store: Store, flt: WatchFilter, after: int, max_batch: int
) -> AsyncIterator[list[Event]]:
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
        for start in range(0, len(events), max_batch):
            yield events[start : start + max_batch]
        after = page[-1].sequence
