"""The job operations behind the API, in domain terms: validated input in, jobs out (accounts are
`pinsched.accounts.admin.AccountAdmin`).

Every operation commits before it returns. What a request does to a job is decided by
`core.requests` and committed with `store.changes.change`; where the committed job goes next
(heap, dispatcher) is the router's business (`dispatch.router`), fed by the store's events. The
gRPC servicers in `api/` only convert.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Final

from pinsched.accounts.registry import AccountRegistry
from pinsched.clock import Clock
from pinsched.core import boards, notes, planning, requests, slots
from pinsched.core import times as timing
from pinsched.core.accounts import Account
from pinsched.core.decision import Decision, apply
from pinsched.core.errors import FailedPrecondition, VersionMismatch
from pinsched.core.jobs import (
    ErrorCategory,
    Job,
    JobState,
    PinSpec,
    ScheduleSpec,
    Transition,
    touch,
)
from pinsched.core.requests import REMOTE_PATHS, Update, plan
from pinsched.dispatch.dispatcher import Dispatchers
from pinsched.events import EventLog
from pinsched.store import JobFilter, SlotAsk, StaleJob, Store
from pinsched.store.changes import Lost, change, retrying

S = JobState
__all__ = ["REMOTE_PATHS", "PinService", "new_job_id", "plan"]
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


_FROM_RFC4648: Final = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD.encode())


def new_job_id(now: datetime) -> str:
    """A time-ordered id (ULID layout: 48-bit milliseconds + 80 random bits, base32)."""
    value = (int(now.timestamp() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    # 26 base32 digits = 130 bits: two zero bits, then the 128; b32encode (C) does the digits.
    return base64.b32encode((value << 6).to_bytes(17, "big"))[:26].translate(_FROM_RFC4648).decode()


GroupKey = tuple[str, datetime, timedelta]


class PinService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        dispatchers: Dispatchers,
        accounts: AccountRegistry,
        *,
        plan_seed: int = 0,
        horizon: timedelta = timing.DEFAULT_HORIZON,
    ) -> None:
        self.store, self.clock = store, clock
        self.dispatchers, self.accounts = dispatchers, accounts
        self.plan_seed = plan_seed
        self.horizon = horizon  # how far ahead a free posting slot is looked for
        self._plan_lock = asyncio.Lock()

    @property
    def events(self) -> EventLog:
        """The event log watch streams replay from (the API reads it through this, not the
        store)."""
        return self.store

    async def schedule(self, specs: Sequence[ScheduleSpec]) -> list[Job]:
        """Persist *specs* as PENDING jobs atomically (idempotent on request_id); the first job
        of each request (see `schedule_results`)."""
        return [job for job, _ in await self.schedule_results(specs)]

    async def schedule_results(self, requests: Sequence[ScheduleSpec]) -> list[tuple[Job, bool]]:
        """Persist *requests* as PENDING jobs atomically (idempotent on request_id); for each
        request its first job and whether this call created it.

        Exact-time jobs are planned at their instant. Jobs with a window are planned with the
        account's other jobs sharing that window (which are re-planned in the same transaction)
        and against everything else the account has planned. `next_free_slot` jobs get their
        slot inside the inserting transaction. A request with `also_boards` is one job per board
        (`pinsched.core.boards`).
        """
        members = boards.expand(requests)
        specs = [m.spec for m in members]
        if not any(spec.window for spec in specs):
            results = await self._create(members, {}, [])
        else:

            async def attempt() -> list[tuple[Job, bool]]:
                planned, replans, notes = await self._plan_windows(specs)
                # A job of the group queued or changed meanwhile: plan again.
                return await self._create(members, planned, replans, notes)

            async with self._plan_lock:  # one planner at a time: plans read, then write
                results = await retrying(attempt, "the delivery window", conflict=StaleJob)
        return [r for m, r in zip(members, results, strict=True) if m.position == 0]

    async def preview(self, spec: ScheduleSpec) -> datetime:
        """The planned time *spec* would get now (nothing persisted)."""
        if spec.next_free_slot is not None:
            return (await self.preview_slot(spec)).planned_at
        if not spec.window:
            return spec.scheduled_at
        async with self._plan_lock:
            planned, _, _ = await self._plan_windows([spec])
        return planned[0]

    async def preview_slot(self, spec: ScheduleSpec) -> slots.Placement:
        """The slot a `next_free_slot` *spec* would get now (nothing persisted)."""
        assert spec.next_free_slot is not None
        found = await self.free_slots(spec.account_id, spec.next_free_slot, 1)
        if not found:
            raise FailedPrecondition(
                f"account {spec.account_id!r} has no free posting slot before the horizon "
                f"({format(self.clock.now() + self.horizon, '%Y-%m-%d')})"
            )
        return found[0]

    async def free_slots(
        self, account_id: str, not_before: datetime, count: int
    ) -> list[slots.Placement]:
        """ListFreeSlots: the next *count* places `next_free_slot` would fill."""
        return await self.store.free_slots(
            account_id,
            not_before=not_before,
            horizon_end=self.clock.now() + self.horizon,
            count=count,
        )

    async def _create(
        self,
        members: Sequence[boards.Member],
        planned: dict[int, datetime],
        replans: Sequence[tuple[Job, Job, Transition]],
        notes: dict[int, str] | None = None,
    ) -> list[tuple[Job, bool]]:
        now = self.clock.now()
        jobs, entries = [], []
        asks: dict[int, SlotAsk] = {}
        group_id = ""
        for i, member in enumerate(members):
            spec = member.spec
            at = planned.get(i, spec.scheduled_at)
            job_id = new_job_id(now)
            if member.position == 0:
                group_id = job_id if member.grouped else ""
            job = Job(
                id=job_id,
                account_id=spec.account_id,
                pin=spec.pin,
                state=S.PENDING,
                scheduled_at=spec.scheduled_at,
                planned_at=at,
                window=spec.window,
                local_time=spec.local_time,
                request_id=spec.request_id,
                request_hash=spec.request_hash,
                created_at=now,
                updated_at=now,
                retry_for=spec.retry_for,
                group_id=group_id,
            )
            if spec.next_free_slot is not None:
                asks[i] = SlotAsk(
                    not_before=spec.next_free_slot,
                    horizon_end=now + self.horizon,
                    interval=member.interval,
                )
            jobs.append(job)
            note = (notes or {}).get(i, "")
            if member.grouped:
                note = f"board {member.position + 1} of a group{'; ' + note if note else ''}"
            entries.append(
                Transition(
                    from_state=None,
                    to_state=S.PENDING,
                    time=now,
                    reason=f"scheduled; {note}" if note else "scheduled",
                )
            )
        return await self.store.create_jobs(
            jobs, entries, replans, slot_asks=asks, request_index=[m.request for m in members]
        )

    async def _plan_windows(
        self, specs: Sequence[ScheduleSpec]
    ) -> tuple[dict[int, datetime], list[tuple[Job, Job, Transition]], dict[int, str]]:
        groups: dict[GroupKey, list[int]] = {}
        for i, spec in enumerate(specs):
            if spec.window:
                groups.setdefault((spec.account_id, spec.scheduled_at, spec.window), []).append(i)
        planned: dict[int, datetime] = {}
        notes: dict[int, str] = {}
        replans: list[tuple[Job, Job, Transition]] = []
        now = self.clock.now()
        for (account_id, start, window), idxs in groups.items():
            account = await self.accounts.get(account_id)
            pacing = account.pacing
            end = start + window
            margin = max(
                pacing.min_spacing,
                timedelta(days=1)
                if pacing.max_per_day
                else timedelta(hours=1)
                if pacing.max_per_hour
                else timedelta(0),
            )
            nearby = await self.store.account_planned(account_id, start - margin, end + margin)
            group = sorted(
                (
                    j
                    for j in nearby
                    if j.state is S.PENDING and j.scheduled_at == start and j.window == window
                ),
                key=lambda j: j.id,
            )
            members = {j.id for j in group}
            fixed = [j.planned_at for j in nearby if j.id not in members]
            result = planning.spread(
                len(group) + len(idxs),
                start,
                end,
                pacing=pacing,
                fixed=fixed,
                rng=random.Random(planning.seed_for(account_id, start, end, self.plan_seed)),
            )
            times = list(result.times)
            for job, at in zip(group, times, strict=False):
                if at != job.planned_at:
                    why = f"re-planned: {result.note}" if result.note else "re-planned"
                    replans.append((job, *touch(job, now=now, reason=why, planned_at=at)))
            for i, at in zip(idxs, times[len(group) :], strict=True):
                planned[i] = at
                notes[i] = result.note
        return planned, replans, notes

    async def get(self, job_id: str, *, with_media: bool = False) -> Job:
        """The job with its history (*with_media*: inline image bytes loaded too)."""
        job = await self.store.get_job(job_id, with_history=True)
        return await self.store.load_job(job) if with_media else job

    async def account(self, account_id: str) -> Account:
        """The stored account (AccountNotFound)."""
        return await self.store.get_account(account_id)

    async def list(self, flt: JobFilter, *, before_id: str, limit: int) -> list[Job]:
        return await self.store.list_jobs(flt, before_id=before_id, limit=limit)

    async def _change(
        self, job_id: str, expected_version: int, decide: Callable[[Job], Decision]
    ) -> Job:
        """Decide about the job and commit (`store.changes.change`): with *expected_version*
        a lost race is ABORTED, else decided again on the fresh row. The answer is the version
        this call committed, or the job as it is when there was nothing to change."""
        done = await change(
            self.store, job_id, decide, now=self.clock.now, expected_version=expected_version
        )
        assert done is not None  # (no `expect`: never dropped)
        if not done.committed:
            return await self.get(job_id)
        return await self._answer(done.job)

    async def _answer(self, new: Job) -> Job:
        """*new*, the version this call committed, with its history: changes the scheduler or a
        dispatcher made a moment later (QUEUED → SUBMITTED) are not this call's answer; notes
        (job.at_risk) written after it, about that version, are."""
        stored = await self.store.get_job(new.id, with_history=True)
        return dataclasses.replace(new, history=notes.history_at(stored.history, new.version))

    async def cancel(self, job_id: str, expected_version: int = 0) -> Job:
        """Cancel in any state where it means something (see the PinScheduler.CancelJob doc)."""
        return await self._change(job_id, expected_version, requests.cancel)

    async def retry(self, job_id: str) -> Job:
        """Send a FAILED or PERMANENTLY_FAILED job round again with a fresh attempt budget."""
        return await self._change(job_id, 0, lambda job: requests.retry(job, now=self.clock.now()))

    async def update(self, job_id: str, request: Update, *, expected_version: int) -> Job:
        """Apply an UpdateJob (already validated) according to the job's state
        (`core.requests.update`)."""
        return await self._change(
            job_id, expected_version, lambda job: requests.update(job, request)
        )

    async def update_merged(
        self,
        job_id: str,
        expected_version: int,
        merge: Callable[[Job, PinSpec, int], Awaitable[Job]],
    ) -> Job:
        """An UpdateJob whose mask is merged into the job as read: *merge* gets the job, its pin
        (inline image bytes loaded) and the version to expect, and applies the update; when
        another change lands in between, read again and merge again (a given
        *expected_version* is the client's own check and is reported instead)."""

        async def attempt() -> Job:
            current = await self.store.get_job(job_id)
            try:
                return await merge(
                    current,
                    await self.store.load_pin(current.pin),
                    expected_version or current.version,
                )
            except VersionMismatch:
                if expected_version:
                    raise
                raise Lost() from None

        return await retrying(attempt, f"job {job_id!r}")

    def update_decision(self, request: Update) -> Callable[[Job, datetime], tuple[Job, Transition]]:
        """The change an UpdateJob makes to the job as read (for `validate_only`)."""

        def decide(job: Job, now: datetime) -> tuple[Job, Transition]:
            ((_, new, entry),) = apply(job, requests.update(job, request), now=now)
            return new, entry

        return decide

    async def reslot(self, job_id: str, *, expected_version: int, not_before: datetime) -> Job:
        """UpdateJob to `next_free_slot`: the job takes the next free slot, decided in the
        transaction that moves it."""
        new = await self.store.reslot_job(
            job_id,
            expected_version=expected_version,
            not_before=not_before,
            horizon_end=self.clock.now() + self.horizon,
            now=self.clock.now(),
        )
        return await self._answer(new)

    async def requeue_auth_failed(self, account_id: str) -> int:
        """After new credentials: auth-FAILED jobs of the account go back to PENDING."""
        count = 0
        before = ""
        while True:
            page = await self.store.list_jobs(
                JobFilter(account_id=account_id, states=frozenset({S.FAILED})),
                before_id=before,
                limit=500,
            )
            if not page:
                return count
            before = page[-1].id
            for job in page:
                if job.last_error is None or job.last_error.category is not ErrorCategory.AUTH:
                    continue
                done = await change(
                    self.store,
                    job,
                    lambda j: requests.reauthorised(j, now=self.clock.now()),
                    now=self.clock.now,
                    expect=frozenset(),  # changed meanwhile: it is no longer ours to requeue
                )
                count += done is not None
