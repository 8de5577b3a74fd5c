"""The cluster event feed (PostgreSQL only): every daemon's committed events, in sequence order,
to this daemon's watchers, its router and its webhook sender.

Several daemons write one event log. Commit order is sequence order there
(`pinsched.store.postgres`: each write transaction holds a lock from its first statement to its
commit), so the log read by position never skips an event: the feed keeps `position`, the last
sequence it handed on, and reads what follows it:

* when woken: a `NOTIFY` from any daemon's committing transaction (`store.listen.Listener`), or
  this daemon's own commit (`poke`); and at the latest every `POLL_S` (the notification is a
  hint; a lost LISTEN connection is opened again meanwhile). That poll runs on real time, not
  on the daemon's clock: it makes up for a lost notification, which happens in real time, and
  a test that drives the daemon's clock across days would otherwise read the log once for
  every second of them;
* it hands each page, in order, to `publish` (the `EventBus`: WatchJobs and SSE on any daemon
  stream every daemon's events, no gap, no duplicate); the events committed by other daemons,
  with their jobs as they are now, to `observe_remote` (the router: the owner of an account
  schedules a job another daemon committed) and wakes `wake` (the webhook sender: the rows those
  transactions wrote to the outbox are due).

This daemon's own events are marked before their commit (`local`): they reach the bus from here,
in the global order, with the job as committed; the router already had them from the store.
SQLite (one daemon) does not use the feed: its events go from the store to the bus directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Final, Protocol

import structlog

from pinsched.clock import SystemClock, sleep_or_wake
from pinsched.core.jobs import Job
from pinsched.events import EventBus
from pinsched.store import Event, Store

if TYPE_CHECKING:
    from pinsched.dispatch.router import Router
    from pinsched.media.staging import Stager
    from pinsched.webhooks.sender import WebhookSender

log = structlog.get_logger("pinsched.feed")

#: The longest the feed waits without a wake-up before it reads the log anyway.
POLL_S: Final = 1.0
#: The poll's clock (see the module docstring): real time whatever clock the daemon runs on.
_REAL_TIME: Final = SystemClock()
PAGE: Final = 1000


class Log(Protocol):
    """The store, as the feed uses it."""

    async def events_after(self, sequence: int, *, limit: int = 1000) -> list[Event]: ...

    async def get_jobs(self, job_ids: Iterable[str]) -> dict[str, Job]: ...


class Notices(Protocol):
    """A LISTEN connection (`store.listen.Listener`)."""

    @property
    def alive(self) -> bool: ...

    async def close(self) -> None: ...


class ClusterFeed:
    """Follows the shared event log from *position* (the highest sequence already committed
    when this daemon started)."""

    def __init__(
        self,
        log_: Log,
        position: int,
        *,
        publish: Callable[[Sequence[Event]], None],
        observe_remote: Callable[[Sequence[Event]], None],
        wake: Callable[[], None],
        listen: Callable[[Callable[[], None]], Awaitable[Notices]] | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self._log = log_
        self.position = position
        self.publish, self.observe_remote, self.wake = publish, observe_remote, wake
        self._listen = listen
        self._notices: Notices | None = None
        self.poll_s = poll_s
        self._local: dict[int, Event] = {}
        self._woken = asyncio.Event()
        self.remote = 0  # events of other daemons handed on (metrics, tests)

    def local(self, events: Sequence[Event]) -> None:
        """This daemon's events, just before their transaction commits."""
        for event in events:
            self._local[event.sequence] = event

    def poke(self) -> None:
        """Read the log now (a notification, or this daemon's own commit)."""
        self._woken.set()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                self._woken.clear()
                await self._keep_listening()
                try:
                    await self.catch_up()
                except Exception:  # storage trouble: the next wake-up or poll tries again
                    log.exception("feed_read_failed", position=self.position)
                await self._wait(stop)
        finally:
            if self._notices is not None:
                await self._notices.close()

    async def _keep_listening(self) -> None:
        if self._listen is None or (self._notices is not None and self._notices.alive):
            return
        if self._notices is not None:
            await self._notices.close()
            self._notices = None
            log.warning("feed_listen_lost", poll_s=self.poll_s)
        try:
            self._notices = await self._listen(self.poke)
        except Exception as exc:  # polled meanwhile; tried again on the next round
            log.warning("feed_listen_failed", error=str(exc))

    async def _wait(self, stop: asyncio.Event) -> None:
        if self._woken.is_set():
            return
        await sleep_or_wake(_REAL_TIME, self.poll_s, self._woken, stop)

    async def catch_up(self) -> int:
        """Hand on everything committed after `position`; how many events."""
        total = 0
        while True:
            page = await self._log.events_after(self.position, limit=PAGE)
            if not page:
                return total
            theirs = {e.job_id for e in page if e.sequence not in self._local}
            jobs = await self._log.get_jobs(theirs) if theirs else {}
            out: list[Event] = []
            remote: list[Event] = []
            for event in page:
                mine = self._local.pop(event.sequence, None)
                if mine is None:
                    mine = Event(
                        event.sequence,
                        event.job_id,
                        event.account_id,
                        event.transition,
                        jobs.get(event.job_id),
                    )
                    remote.append(mine)
                out.append(mine)
            self.position = page[-1].sequence
            if self._local:  # sequences of transactions that never committed
                for seq in [s for s in self._local if s <= self.position]:
                    del self._local[seq]
            total += len(out)
            self.publish(out)
            if remote:
                self.remote += len(remote)
                self.observe_remote(remote)
                self.wake()


class Parts(Protocol):
    """What the feed hands other daemons' events to (the daemon's router, video stager and
    webhook sender, once they exist)."""

    @property
    def router(self) -> Router | None: ...

    @property
    def stager(self) -> Stager | None: ...

    @property
    def webhooks(self) -> WebhookSender | None: ...


async def cluster_feed(store: Store, bus: EventBus, url: str, parts: Parts) -> ClusterFeed:
    """The feed of *store* (on the PostgreSQL database at *url*) from its last committed
    sequence, marking this store's events before their commit: to *bus*, and to *parts*."""
    from pinsched.store.listen import Listener  # asyncpg only when it is used

    def publish(events: Sequence[Event]) -> None:
        bus.publish(events)
        store.saw_sequence(events[-1].sequence)

    def observe_remote(events: Sequence[Event]) -> None:
        if parts.stager is not None:  # a video job committed elsewhere, staged by its owner
            parts.stager.observe(events)
        if parts.router is not None:
            parts.router.observe(events)

    def wake() -> None:
        if parts.webhooks is not None:
            parts.webhooks.wake()

    feed = ClusterFeed(
        store,
        await store.last_sequence(),
        publish=publish,
        observe_remote=observe_remote,
        wake=wake,
        listen=lambda poke: Listener.open(url, poke),
    )
    store.before_commit(feed.local)
    return feed
