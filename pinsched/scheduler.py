"""The due-heap scheduler: heap ↔ store ↔ clock.

Sleeps until the next due job *or* an earlier arrival (racing `clock.sleep` against a wake-up
event), moves due jobs PENDING/RETRYING → QUEUED in one group-committed batch and hands them to
their account's dispatcher. Jobs of an account that cannot publish (paused, needs re-auth) are
held — left PENDING, not attempted — until `release(account_id)`.

The heap is a window, not the whole backlog: it holds the jobs due up to its *edge*, a
`(due_us, job_id)` key at most `window_s` ahead (and at most about `window_max` jobs). Every
PENDING or RETRYING job whose key is at or before the edge is on the heap (or held); the ones
after it are only in the store, whose partial index on due time (`Store.due_window`) brings them
in, in due order, as time moves the edge forward. A job tracked while its key is past the edge is
left to that index; one tracked while a read of the index is under way is kept if the read's
range covers it, and the read does not overwrite it (it may have read the job's previous time).

At start-up the heap is filled from the store's window (the store is the truth): QUEUED,
SUBMITTED and CANCELLING jobs go straight to their dispatcher (which reconciles SUBMITTED ones
before anything is retried).

With several daemons on one database (`ownership` given, `pinsched.cluster`), the heap holds the
jobs of the accounts this daemon owns only: the window is read for those accounts, an account
taken over is loaded up to the edge (`adopt`), one given up is dropped (`drop`; its entries left
on the heap are skipped when they come due), the QUEUED commit is fenced by the account's lease,
and while other daemons are live, every `sync_s` the window up to the edge is read again for the
owned accounts (a job another daemon committed for one of them arrives that way until its event
does).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

import structlog

from pinsched.clock import Activity, Clock, sleep_or_wake
from pinsched.core.heap import DueHeap
from pinsched.core.jobs import Job, JobState, transition
from pinsched.core.membership import Ownership
from pinsched.store import Fence, LeaseLost, Store, codec

log = structlog.get_logger("pinsched.scheduler")

BATCH = 2000
#: Jobs are moved to QUEUED this far ahead of their planned time, so that the QUEUED commit is
#: off the critical path: the dispatcher then waits for the planned instant and sends.
LEAD_US = 50_000
#: How far ahead the heap holds jobs, and about how many at most (a burst larger than that is
#: read from the store a slice at a time as the heap drains).
WINDOW_S = 600.0
WINDOW_MAX = 20_000
#: The key after every job id (ids are base32, ASCII): an edge at `(t, LAST_ID)` covers all of t.
LAST_ID = "\U0010ffff"
_FIRST_KEY = (-(2**62), "")
#: With several daemons: how often the window up to the edge is read again (owned accounts).
SYNC_S = 1.0


class Scheduler:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        dispatch: Callable[[Job], None],
        can_publish: Callable[[str], bool],
        activity: Activity | None = None,
        window_s: float = WINDOW_S,
        window_max: int = WINDOW_MAX,
        ownership: Ownership | None = None,
        fence: Callable[[str], Fence] | None = None,
        sync_s: float = SYNC_S,
    ) -> None:
        self._store = store
        self._clock = clock
        self._dispatch = dispatch
        self._can_publish = can_publish
        self.heap = DueHeap()
        self.held: dict[str, set[str]] = {}
        self._wake = asyncio.Event()
        self._deadline_us: int | None = None
        self.activity = activity or Activity()
        self._window_us = int(window_s * 1e6)
        self._max = window_max
        #: Every tracked job with a key `(due_us, id)` at or before the edge is on the heap.
        self.edge: tuple[int, str] = _FIRST_KEY
        self._filling: int | None = None  # the end of the index range being read, if one is
        self._touched: set[str] = set()  # jobs tracked or untracked during that read
        self._ownership = ownership
        self._fence = fence
        self._sync_s = sync_s
        self._synced = clock.monotonic()

    async def recover(self) -> dict[str, int]:
        """Fill the heap with the store's window; hand in-flight jobs to their dispatchers."""
        self.edge = _FIRST_KEY
        read = await self._fill(codec.to_us(self._clock.now()))
        counts: dict[str, int] = {"PENDING+RETRYING in window": read}
        for job in await self._store.in_flight_jobs():
            if self._ownership is not None and not self._ownership.owns(job.account_id):
                continue  # another daemon's, or loaded when its lease is taken (`adopt`)
            counts[job.state.value] = counts.get(job.state.value, 0) + 1
            self._dispatch(job)
        self._wake.set()
        return counts

    def track(self, job: Job) -> None:
        """(Re)index *job* by its due time if that falls in the window (a later one is left to
        the store's index); wakes the loop if it is due earlier than planned."""
        due = job.due_at
        if self._filling is not None:
            self._touched.add(job.id)
        if due is None:
            self.heap.discard(job.id)
            return
        due_us = codec.to_us(due)
        if (due_us, job.id) > self.edge and (self._filling is None or due_us > self._filling):
            self.heap.discard(job.id)  # past the edge: the index brings it in when its time nears
            if self.edge[0] - self._window_us // 2 <= codec.to_us(self._clock.now()) + LEAD_US:
                self._wake.set()  # the edge is overdue for a refill (the loop is late): now
            return
        self.heap.push(job.id, due_us)
        if (
            self._deadline_us is None
            or due_us < self._deadline_us
            or len(self.heap) > 2 * self._max
        ):
            self._wake.set()

    def untrack(self, job_id: str) -> None:
        self.heap.discard(job_id)
        if self._filling is not None:
            self._touched.add(job_id)
        for ids in self.held.values():
            ids.discard(job_id)

    def hold(self, job: Job) -> None:
        self.held.setdefault(job.account_id, set()).add(job.id)

    async def release(self, account_id: str) -> int:
        """Put an account's held jobs back on the heap (after resume or new credentials)."""
        ids = self.held.pop(account_id, set())
        jobs = await self._store.get_jobs(ids)
        for job in jobs.values():
            if job.state in (JobState.PENDING, JobState.RETRYING):
                self.track(job)
        return len(jobs)

    async def adopt(self, account_id: str) -> int:
        """Put *account_id*'s PENDING and RETRYING jobs up to the edge on the heap (its lease
        was just taken; later ones come with the window). Returns how many."""
        return await self._read_owned([account_id])

    def nudge(self) -> None:
        """Look at the clock again now (other daemons appeared: the owned window is read every
        `sync_s` from now on)."""
        self._wake.set()

    def drop(self, account_id: str) -> None:
        """Forget *account_id*'s held jobs (its lease went to another daemon); its heap entries
        are skipped when they come due."""
        self.held.pop(account_id, None)

    async def _read_owned(self, account_ids: list[str]) -> int:
        """Read the due jobs of *account_ids* up to the edge onto the heap (a job tracked
        meanwhile keeps its newer time)."""
        if not account_ids:
            return 0
        edge = self.edge
        self._filling, self._touched = edge[0], set()
        try:
            rows = await self._store.owned_due_window(_FIRST_KEY, edge[0], self._max, account_ids)
        finally:
            touched, self._filling, self._touched = self._touched, None, set()
        held = {i for ids in self.held.values() for i in ids}
        for job_id, due_us in rows:
            if job_id not in touched and job_id not in held and (due_us, job_id) <= edge:
                self.heap.push(job_id, due_us)
        if rows:
            self._wake.set()
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        """Loop until *stop* is set."""
        self.activity.enter()
        try:
            await self._loop(stop)
        finally:
            self.activity.leave()

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            now_us = codec.to_us(self._clock.now())
            if self._ownership is not None and (
                self._clock.monotonic() - self._synced >= self._sync_s
            ):
                self._synced = self._clock.monotonic()
                if not self._ownership.shared():
                    continue  # alone: every job change came through this daemon's router
                try:
                    await self._read_owned(self._ownership.owned())
                except Exception:
                    log.exception("owned_window_read_failed")
                continue
            if len(self.heap) > 2 * self._max:
                self.edge = min(self.edge, self.heap.trim(self._max))
            if self._needs_fill(now_us):
                try:
                    await self._fill(now_us)
                except Exception:
                    log.exception("due_window_read_failed")
                    await self._wait(stop, 1.0)
                continue  # time moved while reading: look at the clock again
            due = self.heap.pop_due(now_us + LEAD_US, limit=BATCH)
            if due:
                try:
                    await self._queue_due(due)
                except Exception:
                    log.exception("queue_due_failed", jobs=len(due))
                    for job_id in due:  # keep them: the store still says PENDING/RETRYING
                        self.heap.push(job_id, now_us)
                    await self._wait(stop, 1.0)
                continue
            nxt = self.heap.peek_due()
            refill = self.edge[0] - (self._window_us // 2 if len(self.heap) < self._max else 0)
            self._deadline_us = refill if nxt is None else min(nxt, refill)
            delay = max(0.0, (self._deadline_us - LEAD_US - now_us) / 1e6)
            if self._ownership is not None and self._ownership.shared():
                delay = min(delay, max(0.0, self._synced + self._sync_s - self._clock.monotonic()))
            await self._wait(stop, delay)
            self._deadline_us = None

    def _needs_fill(self, now_us: int) -> bool:
        """Whether to read the next slice of the index: the edge is less than half a window
        ahead, and the heap has room (or nothing on it is due yet)."""
        if self.edge[0] - self._window_us // 2 > now_us + LEAD_US:
            return False
        if len(self.heap) < self._max:
            return True
        # Full: read more only if the edge is due and nothing on the heap is (jobs due after the
        # edge would wait otherwise); else the heap drains first.
        nxt = self.heap.peek_due()
        return self.edge[0] <= now_us + LEAD_US and (nxt is None or nxt > now_us + LEAD_US)

    async def _fill(self, now_us: int) -> int:
        """Read the jobs after the edge and due within the window (at most about the room left
        on the heap) onto the heap, and move the edge past them. Returns how many were read."""
        target = now_us + self._window_us
        limit = max(self._max // 4, 1, self._max - len(self.heap))
        self._filling, self._touched = target, set()
        try:
            if self._ownership is None:
                rows = await self._store.due_window(self.edge, target, limit)
            else:
                owned = self._ownership.owned()
                rows = await self._store.owned_due_window(self.edge, target, limit, owned)
        finally:
            touched, self._filling, self._touched = self._touched, None, set()
        for job_id, due_us in rows:
            if job_id not in touched:  # a job tracked meanwhile keeps its newer time
                self.heap.push(job_id, due_us)
        self.edge = (rows[-1][1], rows[-1][0]) if len(rows) == limit else (target, LAST_ID)
        return len(rows)

    async def _wait(self, stop: asyncio.Event, delay: float | None) -> None:
        self.activity.leave()
        try:
            await sleep_or_wake(self._clock, delay, self._wake, stop)
        finally:
            self.activity.enter()
            self._wake.clear()

    async def _queue_due(self, job_ids: Iterable[str]) -> None:
        order = list(job_ids)  # due order (the heap's): dispatched in that order
        jobs = await self._store.get_jobs(order)
        now = self._clock.now()
        changes = []
        for job_id in order:
            job = jobs.get(job_id)
            if job is None:
                continue
            if job.state not in (JobState.PENDING, JobState.RETRYING):
                continue
            if job.due_at is not None and codec.to_us(job.due_at) > codec.to_us(now) + LEAD_US:
                # re-planned later meanwhile
                self.track(job)
                continue
            if self._ownership is not None and not self._ownership.owns(job.account_id):
                continue  # its account went to another daemon (which loaded it)
            if not self._can_publish(job.account_id):
                self.hold(job)
                continue
            reason = "due" if job.state is JobState.PENDING else "retry due"
            new, entry = transition(job, JobState.QUEUED, now=now, reason=reason)
            changes.append((job, new, entry))
        if not changes:
            return
        fences = None
        if self._fence is not None:
            fences = {}
            for old, _, _ in changes:
                # A lease gone is not in the map: the store refuses its change (None below).
                with contextlib.suppress(LeaseLost):
                    fences[old.account_id] = self._fence(old.account_id)
        results = await self._store.commit_each(changes, fences=fences)
        for (old, _, _), result in zip(changes, results, strict=True):
            if result is None:  # changed under us (cancel, update), or the lease went
                fresh = await self._store.get_job(old.id)
                owned = self._ownership is None or self._ownership.owns(old.account_id)
                if owned and fresh.state in (JobState.PENDING, JobState.RETRYING):
                    self.track(fresh)
                continue
            self._dispatch(result[0])
