"""The due-heap scheduler: heap ↔ store ↔ clock.

Sleeps until the next due job *or* an earlier arrival (racing `clock.sleep` against a wake-up
event), moves due jobs PENDING/RETRYING → QUEUED in one group-committed batch and hands them to
their account's dispatcher. Jobs of an account that cannot publish (paused, needs re-auth) are
held — left PENDING, not attempted — until `release(account_id)`.

At start-up the heap is rebuilt from the store (the store is the truth): PENDING and RETRYING
jobs go back on the heap; QUEUED, SUBMITTED and CANCELLING jobs go straight to their dispatcher
(which reconciles SUBMITTED ones before anything is retried).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from pinsched import codec
from pinsched.clock import Activity, Clock
from pinsched.heap import DueHeap
from pinsched.jobs import Job, JobState, transition
from pinsched.store import Store

log = structlog.get_logger("pinsched.scheduler")

BATCH = 2000
#: Jobs are moved to QUEUED this far ahead of their planned time, so that the QUEUED commit is
#: off the critical path: the dispatcher then waits for the planned instant and sends.
LEAD_US = 50_000


class Scheduler:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        dispatch: Callable[[Job], None],
        can_publish: Callable[[str], bool],
        activity: Activity | None = None,
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

    async def recover(self) -> dict[str, int]:
        """Rebuild the heap from the store; hand in-flight jobs to their dispatchers."""
        index = await self._store.due_index()
        self.heap.load(index)
        counts: dict[str, int] = {"PENDING+RETRYING": len(index)}
        for job in await self._store.in_flight_jobs():
            counts[job.state.value] = counts.get(job.state.value, 0) + 1
            self._dispatch(job)
        self._wake.set()
        return counts

    def track(self, job: Job) -> None:
        """(Re)index *job* by its due time; wakes the loop if it is due earlier than planned."""
        due = job.due_at
        if due is None:
            self.heap.discard(job.id)
            return
        due_us = codec.to_us(due)
        self.heap.push(job.id, due_us)
        if self._deadline_us is None or due_us < self._deadline_us:
            self._wake.set()

    def untrack(self, job_id: str) -> None:
        self.heap.discard(job_id)
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
            self._deadline_us = nxt
            delay = None if nxt is None else max(0.0, (nxt - LEAD_US - now_us) / 1e6)
            await self._wait(stop, delay)
            self._deadline_us = None

    async def _wait(self, stop: asyncio.Event, delay: float | None) -> None:
        waiters: set[asyncio.Future[Any]] = {
            asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
        if delay is not None:
            waiters.add(asyncio.ensure_future(self._clock.sleep(delay)))
        self.activity.leave()
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.activity.enter()
            for w in waiters:
                w.cancel()
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
            if not self._can_publish(job.account_id):
                self.hold(job)
                continue
            reason = "due" if job.state is JobState.PENDING else "retry due"
            new, entry = transition(job, JobState.QUEUED, now=now, reason=reason)
            changes.append((job, new, entry))
        if not changes:
            return
        results = await self._store.commit_each(changes)
        for (old, _, _), result in zip(changes, results, strict=True):
            if result is None:  # changed under us (cancel, update): look again
                fresh = await self._store.get_job(old.id)
                if fresh.state in (JobState.PENDING, JobState.RETRYING):
                    self.track(fresh)
                continue
            self._dispatch(result[0])
