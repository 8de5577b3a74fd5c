"""The job operations behind the API, in domain terms: validated input in, jobs out (accounts are
`account_admin.AccountAdmin`).

Every operation commits before it returns and then tells the scheduler; which state change is
allowed is asked of `jobs.py`. The gRPC servicers in `api/` only convert.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from pinsched import boards, notes, planning, slots, timing
from pinsched.auth import AccountRegistry
from pinsched.clock import Clock
from pinsched.dispatcher import Dispatchers
from pinsched.errors import (
    FailedPrecondition,
    VersionMismatch,
)
from pinsched.jobs import (
    UNSENT_STATES,
    ErrorCategory,
    Job,
    JobState,
    PinSpec,
    RemoteUpdate,
    ScheduleSpec,
    Transition,
    touch,
    transition,
)
from pinsched.scheduler import Scheduler
from pinsched.store import JobFilter, SlotAsk, StaleJob, Store
from pinsched.video import current

S = JobState
#: Pin fields Pinterest lets us change after publishing (PinUpdate).
REMOTE_PATHS = frozenset(
    {
        "pin.title",
        "pin.description",
        "pin.link",
        "pin.alt_text",
        "pin.board_id",
        "pin.board_section_id",
    }
)
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_job_id(now: datetime) -> str:
    """A time-ordered id (ULID layout: 48-bit milliseconds + 80 random bits, base32)."""
    value = (int(now.timestamp() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def plan(spec: ScheduleSpec) -> datetime:
    """The publish time of *spec* on its own: its instant, or the middle of its window (the
    planner refines windowed jobs against the account's other plans)."""
    return spec.scheduled_at + spec.window / 2


GroupKey = tuple[str, datetime, timedelta]


class PinService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        scheduler: Scheduler,
        dispatchers: Dispatchers,
        accounts: AccountRegistry,
        *,
        plan_seed: int = 0,
        horizon: timedelta = timing.DEFAULT_HORIZON,
    ) -> None:
        self.store, self.clock, self.scheduler = store, clock, scheduler
        self.dispatchers, self.accounts = dispatchers, accounts
        self.plan_seed = plan_seed
        self.horizon = horizon  # how far ahead a free posting slot is looked for
        self._plan_lock = asyncio.Lock()

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
        (`pinsched.boards`).
        """
        members = boards.expand(requests)
        specs = [m.spec for m in members]
        if not any(spec.window for spec in specs):
            results = await self._create(members, {}, [])
        else:
            async with self._plan_lock:  # one planner at a time: plans read, then write
                for _ in range(10):
                    planned, replans, notes = await self._plan_windows(specs)
                    try:
                        results = await self._create(members, planned, replans, notes)
                        break
                    except StaleJob:
                        continue  # a job of the group was queued or changed meanwhile
                else:
                    raise FailedPrecondition("the delivery window keeps changing; try again")
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
        results = await self.store.create_jobs(
            jobs, entries, replans, slot_asks=asks, request_index=[m.request for m in members]
        )
        for job, created in results:
            if created:
                self.scheduler.track(job)
        for _, new, _ in replans:
            self.scheduler.track(new)
        return results

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

    async def get(self, job_id: str) -> Job:
        return await self.store.get_job(job_id, with_history=True)

    async def list(self, flt: JobFilter, *, before_id: str, limit: int) -> list[Job]:
        return await self.store.list_jobs(flt, before_id=before_id, limit=limit)

    async def _change(
        self,
        job_id: str,
        expected_version: int,
        decide: Callable[[Job, datetime], tuple[Job, Transition] | None],
    ) -> Job:
        """Read the job, let *decide* compute its change (or None: leave it as it is; or raise),
        and commit it with compare-and-set, re-reading on a lost race. With *expected_version*
        a lost race is ABORTED instead. Then tell the scheduler and dispatchers."""
        for _ in range(20):
            job = await self.store.get_job(job_id)
            if expected_version and job.version != expected_version:
                raise VersionMismatch(job_id, expected_version, job.version)
            change = decide(job, self.clock.now())
            if change is None:
                return await self.get(job_id)
            try:
                new, _ = await self.store.commit(job, *change)
            except StaleJob:
                if expected_version:
                    current = await self.store.get_job(job_id)
                    raise VersionMismatch(job_id, expected_version, current.version) from None
                continue
            if new.state in (S.PENDING, S.RETRYING):
                self.scheduler.track(new)
            else:
                self.scheduler.untrack(job_id)
            if new.state is S.CANCELLING or (
                new.state is S.DELIVERED and new.remote_update and new.remote_update.pending
            ):
                self.dispatchers.submit(new)
            return await self._answer(new)
        raise FailedPrecondition(f"job {job_id!r} keeps changing; try again")

    async def _answer(self, new: Job) -> Job:
        """*new*, the version this call committed, with its history: changes the scheduler or a
        dispatcher made a moment later (QUEUED → SUBMITTED) are not this call's answer."""
        stored = await self.store.get_job(new.id, with_history=True)
        kept: list[Transition] = []
        changes = 0  # one per version; notes (job.at_risk) are not changes of the job
        for entry in stored.history:
            if changes == new.version:
                break
            kept.append(entry)
            changes += not notes.is_note(entry)
        return dataclasses.replace(new, history=tuple(kept))

    async def cancel(self, job_id: str, expected_version: int = 0) -> Job:
        """Cancel in any state where it means something (see the PinScheduler.CancelJob doc)."""

        def decide(job: Job, now: datetime) -> tuple[Job, Transition] | None:
            if job.state in (S.CANCELLED, S.CANCELLING) or (
                job.state is S.SUBMITTED and job.cancel_requested
            ):
                return None  # cancelling twice is harmless
            if job.state is S.PERMANENTLY_FAILED:
                raise FailedPrecondition(
                    f"job {job_id!r} is PERMANENTLY_FAILED: it was never published and will not "
                    "be retried, so there is nothing to cancel"
                )
            if job.state is S.SUBMITTED:
                return touch(
                    job,
                    now=now,
                    reason="cancel requested: carried out once the "
                    "outcome of the submission is known",
                    cancel_requested=True,
                )
            if job.state is S.DELIVERED:
                return transition(
                    job, S.CANCELLING, now=now, reason="cancel requested: deleting the pin"
                )
            return transition(job, S.CANCELLED, now=now, reason="cancelled before submission")

        return await self._change(job_id, expected_version, decide)

    async def retry(self, job_id: str) -> Job:
        """Send a FAILED or PERMANENTLY_FAILED job round again with a fresh attempt budget."""

        def decide(job: Job, now: datetime) -> tuple[Job, Transition]:
            if job.state not in (S.FAILED, S.PERMANENTLY_FAILED):
                raise FailedPrecondition(
                    f"job {job_id!r} is {job.state.value}; only FAILED or PERMANENTLY_FAILED "
                    "jobs can be retried"
                )
            return transition(
                job,
                S.PENDING,
                now=now,
                reason="retry requested",
                attempts=0,
                planned_at=max(now, job.planned_at),
                next_attempt_at=None,
            )

        return await self._change(job_id, 0, decide)

    async def update(
        self,
        job_id: str,
        *,
        paths: Sequence[str],
        expected_version: int,
        pin: PinSpec,
        timing: ScheduleSpec | None,
        retry_for: timedelta | None = None,
    ) -> Job:
        """Apply an UpdateJob (already validated) according to the job's state.

        Unsent jobs change atomically and are re-planned (a QUEUED or RETRYING job whose time
        moved goes back to PENDING); a delivered pin's mutable fields are PATCHed on Pinterest
        by its dispatcher (`remote_update`); anything else is FAILED_PRECONDITION.
        """
        decide = self.update_decision(
            job_id, paths=paths, pin=pin, timing=timing, retry_for=retry_for
        )
        return await self._change(job_id, expected_version, decide)

    def update_decision(
        self,
        job_id: str,
        *,
        paths: Sequence[str],
        pin: PinSpec,
        timing: ScheduleSpec | None,
        retry_for: timedelta | None,
    ) -> Callable[[Job, datetime], tuple[Job, Transition]]:
        """The change an UpdateJob makes to the job as read (also for `validate_only`)."""
        reason = f"updated: {', '.join(paths)}"

        def decide(job: Job, now: datetime) -> tuple[Job, Transition]:
            if job.state in UNSENT_STATES:
                # The staging record (media id, upload target) of a video the pin no longer
                # has goes with it: an image keeps none, another video is staged anew.
                changes: dict[str, object] = {"pin": pin, "media": current(job.media, pin.media)}
                if "retry_for" in paths:
                    changes["retry_for"] = retry_for
                if timing is not None:
                    changes.update(
                        scheduled_at=timing.scheduled_at,
                        window=timing.window,
                        local_time=timing.local_time,
                        planned_at=plan(timing),
                        slot=None,
                    )
                moved = timing is not None and changes["planned_at"] != job.planned_at
                if moved and job.state in (S.QUEUED, S.RETRYING):
                    return transition(
                        job,
                        S.PENDING,
                        now=now,
                        reason=f"{reason}; re-planned",
                        next_attempt_at=None,
                        **changes,
                    )
                return touch(job, now=now, reason=reason, **changes)
            if job.state is S.SUBMITTED:
                raise FailedPrecondition(
                    f"job {job_id!r} is SUBMITTED: the outcome of its submission is being "
                    "confirmed; update it again once it is DELIVERED or RETRYING"
                )
            if job.state is S.DELIVERED:
                fixed = [p for p in paths if p not in REMOTE_PATHS]
                if fixed:
                    raise FailedPrecondition(
                        f"job {job_id!r} is DELIVERED: {', '.join(fixed)} cannot change on a "
                        "published pin; cancel the job (which deletes the pin) and schedule a "
                        "new one"
                    )
                prior = job.remote_update
                merged = tuple(
                    sorted(set(paths) | (set(prior.paths) if prior and prior.pending else set()))
                )
                remote = RemoteUpdate(paths=merged, revision=(prior.revision + 1) if prior else 1)
                return touch(
                    job,
                    now=now,
                    reason=f"{reason}; applying on Pinterest",
                    pin=pin,
                    remote_update=remote,
                )
            raise FailedPrecondition(
                f"job {job_id!r} is {job.state.value}; it can no longer be updated"
            )

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
        if new.state in (S.PENDING, S.RETRYING):
            self.scheduler.track(new)
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
                now = self.clock.now()
                try:
                    new, _ = await self.store.commit(
                        job,
                        *transition(
                            job,
                            S.PENDING,
                            now=now,
                            reason="account re-authorised",
                            planned_at=max(now, job.planned_at),
                            next_attempt_at=None,
                        ),
                    )
                except StaleJob:
                    continue
                self.scheduler.track(new)
                count += 1
