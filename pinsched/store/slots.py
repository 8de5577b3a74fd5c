"""Posting-slot allocation inside the store's transactions.

Runs inside the writing transaction (`driver.Tx`): the slot a job gets is decided in the very
transaction that inserts (or moves) it, from the occupancy read in that transaction, and the
single writer serialises those transactions, so concurrent requests never put more than
`max_per_slot` pins in a slot. The arithmetic is `pinsched.slots` (pure); this module reads what
it needs, asks it, and applies the answer. It does not decide which state changes are legal.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from pinsched.core import slots
from pinsched.core.accounts import Account, Pacing
from pinsched.core.errors import AccountNotFound, FailedPrecondition, JobNotFound, VersionMismatch
from pinsched.core.jobs import UNSENT_STATES, Job, JobState, SlotRef, Transition, touch, transition
from pinsched.store import codec
from pinsched.store.driver import Tx
from pinsched.store.rows import _JOB_COLUMNS, Event, _cas, _job_from_row, schedule_from_json

T = TypeVar("T")
#: A job in one of these states holds its slot (a cancelled or permanently failed one frees it).
OCCUPYING: Final = ("PENDING", "QUEUED", "SUBMITTED", "RETRYING", "DELIVERED", "FAILED")
#: Planned times that count for pacing (as in window planning).
PLANNED: Final = ("PENDING", "QUEUED", "SUBMITTED", "RETRYING", "DELIVERED")
_CHUNK: Final = timedelta(days=35)


@dataclass(frozen=True, slots=True)
class SlotAsk:
    """A job to place in the next free slot at or after `not_before` (and at least `interval`
    after the previous job of its group), searching up to `horizon_end`."""

    not_before: datetime
    horizon_end: datetime
    interval: timedelta = timedelta(0)


def schedule_json(account: Account) -> str | None:
    s = account.posting_schedule
    return None if s is None else json.dumps(s.to_dict(), separators=(",", ":"))


def no_schedule(account_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"account {account_id!r} has no posting schedule: set one with UpdateAccount "
        "(update_mask posting_schedule, CLI `pinsched accounts update --posting-schedule`), or "
        "give scheduled_at or local_time instead of next_free_slot"
    )


def describe(slot: SlotRef) -> str:
    return f"{slot.local:%a %Y-%m-%d %H:%M} {slot.time_zone}"


class Book:
    """One transaction's view of an account's slots: schedule, pacing, occupancy and planned
    times, read by range as the search needs them and kept up to date as jobs are placed."""

    def __init__(self, db: Tx, account_id: str, row: Any, exclude: Iterable[str] = ()) -> None:
        self.db, self.account_id = db, account_id
        self.pacing = Pacing.from_dict(json.loads(row[0]))
        self.schedule = schedule_from_json(row[1])
        self.exclude = set(exclude)
        self.occupancy: dict[datetime, int] = {}
        self.taken: list[datetime] = []
        self.lo: datetime | None = None
        self.hi: datetime | None = None
        # Within one transaction places only fill up, so the first free slot for a given
        # not_before never moves back: remember it (a batch of slotted jobs is then linear).
        self._cursor: dict[datetime, datetime] = {}
        if self.schedule is not None:
            cap = max(1, self.schedule.max_per_slot)
            self.margin = timedelta(days=1) + self.pacing.min_spacing * cap

    @classmethod
    async def open(cls, db: Tx, account_id: str, exclude: Iterable[str] = ()) -> Book:
        """The book of *account_id* (AccountNotFound when it does not exist)."""
        row = await db.fetchone(
            "SELECT pacing, posting_schedule FROM accounts WHERE id=?", (account_id,)
        )
        if row is None:
            raise AccountNotFound(account_id)
        return cls(db, account_id, row, exclude)

    async def _load(self, lo: datetime, hi: datetime) -> None:
        """Extend the loaded range of slot instants to cover [*lo*, *hi*)."""
        m = self.margin
        if self.lo is None or self.hi is None:
            await self._read(lo, hi, lo - m, hi + m)
            self.lo, self.hi = lo, hi
            return
        if lo < self.lo:
            await self._read(lo, self.lo, lo - m, self.lo - m)
            self.lo = lo
        if hi > self.hi:
            await self._read(self.hi, hi, self.hi + m, hi + m)
            self.hi = hi

    async def _read(
        self, slot_lo: datetime, slot_hi: datetime, plan_lo: datetime, plan_hi: datetime
    ) -> None:
        states = ",".join(f"'{s}'" for s in OCCUPYING)
        for job_id, slot_at in await self.db.fetchall(
            f"SELECT id, slot_at FROM jobs WHERE account_id=? AND slot_at >= ? "
            f"AND slot_at < ? AND state IN ({states})",
            (self.account_id, codec.to_us(slot_lo), codec.to_us(slot_hi)),
        ):
            if job_id not in self.exclude:
                at = codec.from_us(slot_at)
                self.occupancy[at] = self.occupancy.get(at, 0) + 1
        planned = ",".join(f"'{s}'" for s in PLANNED)
        for job_id, planned_at in await self.db.fetchall(
            f"SELECT id, planned_at FROM jobs WHERE account_id=? AND planned_at >= ? "
            f"AND planned_at < ? AND state IN ({planned})",
            (self.account_id, codec.to_us(plan_lo), codec.to_us(plan_hi)),
        ):
            if job_id not in self.exclude:
                bisect.insort(self.taken, codec.from_us(planned_at))

    def add(self, job: Job) -> None:
        """Count *job* (inserted or moved in this transaction) from now on."""
        if self.lo is None or self.hi is None:
            return  # nothing loaded yet: the next read sees it in the table
        if job.slot is not None and self.lo <= job.slot.at < self.hi:
            self.occupancy[job.slot.at] = self.occupancy.get(job.slot.at, 0) + 1
        if self.lo - self.margin <= job.planned_at < self.hi + self.margin:
            bisect.insort(self.taken, job.planned_at)

    async def place(
        self,
        job: Job,
        not_before: datetime,
        horizon_end: datetime,
        interval: timedelta = timedelta(0),
    ) -> Job:
        """*job* moved into the first free slot at or after *not_before* (not yet counted)."""
        if self.schedule is None:
            raise no_schedule(self.account_id)
        start = self._cursor.get(not_before, not_before)
        while start < horizon_end:
            end = min(start + _CHUNK, horizon_end)
            await self._load(not_before, end)
            found = slots.find_free(
                self.schedule,
                pacing=self.pacing,
                not_before=start,
                until=end,
                occupancy=self.occupancy,
                taken=self.taken,
            )
            if found is not None:
                self._cursor[not_before] = found.slot.at
                ref = SlotRef(
                    at=found.slot.at,
                    local=found.slot.local,
                    time_zone=found.slot.time_zone,
                    not_before=not_before,
                    interval=interval,
                )
                return dataclasses.replace(
                    job,
                    slot=ref,
                    scheduled_at=found.slot.at,
                    planned_at=found.planned_at,
                    window=timedelta(0),
                    local_time=None,
                )
            start = end
        raise FailedPrecondition(
            f"account {self.account_id!r} has no free posting slot between "
            f"{not_before:%Y-%m-%d %H:%M}Z and the horizon ({horizon_end:%Y-%m-%d}): raise "
            "max_per_slot, add slots, or relax the pacing"
        )


async def place_new(
    db: Tx,
    books: dict[str, Book],
    job: Job,
    entry: Transition,
    ask: SlotAsk,
    previous: Job | None,
) -> tuple[Job, Transition]:
    """Place a new *job* (and say where in its creation event); *previous* is the job before it
    in its board group, if any."""
    book = books.get(job.account_id)
    if book is None:
        book = books[job.account_id] = await Book.open(db, job.account_id)
    not_before = ask.not_before
    if previous is not None and ask.interval:
        not_before = max(not_before, previous.planned_at + ask.interval)
    placed = await book.place(job, not_before, ask.horizon_end, ask.interval)
    assert placed.slot is not None
    where = f"{entry.reason}; slot {describe(placed.slot)}"
    return placed, dataclasses.replace(entry, reason=where)


def count_new(books: dict[str, Book], job: Job) -> None:
    book = books.get(job.account_id)
    if book is not None:
        book.add(job)


async def replan_account(
    db: Tx, account: Account, *, now: datetime, horizon_end: datetime
) -> list[tuple[Job, Job, Transition]]:
    """Re-plan the PENDING slotted jobs of *account* into its (new) schedule, in their order
    (slot time, then id): each gets the first free slot at or after max(now, what it asked for,
    the previous job of its group + the group's interval). QUEUED or later jobs stay."""
    rows = await db.fetchall(
        f"SELECT {_JOB_COLUMNS} FROM jobs WHERE account_id=? AND state='PENDING' "
        "AND slot_at IS NOT NULL ORDER BY slot_at, id",
        (account.id,),
    )
    jobs = [_job_from_row(tuple(r)) for r in rows]
    if not jobs or account.posting_schedule is None:
        return []
    book = await Book.open(db, account.id, exclude=[j.id for j in jobs])
    changes = []
    last_of_group: dict[str, Job] = {}
    for job in jobs:
        assert job.slot is not None
        not_before = max(now, job.slot.not_before)
        prev = last_of_group.get(job.group_id) if job.group_id else None
        if prev is not None and job.slot.interval:
            not_before = max(not_before, prev.planned_at + job.slot.interval)
        placed = await book.place(job, not_before, horizon_end, job.slot.interval)
        placed = dataclasses.replace(
            placed,
            slot=dataclasses.replace(placed.slot, not_before=job.slot.not_before)
            if placed.slot
            else None,
        )
        book.add(placed)
        if job.group_id:
            last_of_group[job.group_id] = placed
        assert placed.slot is not None
        if placed.planned_at == job.planned_at and placed.slot.at == job.slot.at:
            continue
        new, entry = touch(
            job,
            now=now,
            reason=f"re-planned: posting schedule changed; slot {describe(job.slot)}"
            f" → {describe(placed.slot)}",
            slot=placed.slot,
            scheduled_at=placed.scheduled_at,
            planned_at=placed.planned_at,
        )
        changes.append((job, new, entry))
    for old, new, _ in changes:
        await _cas(db, old, new)
    return changes


async def reslot_decision(
    db: Tx,
    job_id: str,
    expected_version: int,
    not_before: datetime,
    horizon_end: datetime,
    now: datetime,
) -> tuple[Job, Job, Transition]:
    """UpdateJob to `next_free_slot`: the job moved into the first free slot at or after
    *not_before* (its own place not counted). PENDING stays PENDING; QUEUED, RETRYING go back to
    PENDING; FAILED stays FAILED with its new time."""
    row = await db.fetchone(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id=?", (job_id,))
    if row is None:
        raise JobNotFound(job_id)
    job = _job_from_row(tuple(row))
    if expected_version and job.version != expected_version:
        raise VersionMismatch(job_id, expected_version, job.version)
    if job.state not in UNSENT_STATES:
        raise FailedPrecondition(
            f"job {job_id!r} is {job.state.value}: only PENDING, QUEUED, RETRYING or FAILED jobs "
            "can move to another slot"
        )
    book = await Book.open(db, job.account_id, exclude=[job.id])
    placed = await book.place(job, not_before, horizon_end)
    assert placed.slot is not None
    reason = f"updated: next_free_slot; slot {describe(placed.slot)}"
    changes: dict[str, Any] = {
        "slot": placed.slot,
        "scheduled_at": placed.scheduled_at,
        "planned_at": placed.planned_at,
        "window": timedelta(0),
        "local_time": None,
    }
    if job.state in (JobState.QUEUED, JobState.RETRYING):
        return (
            job,
            *transition(
                job, JobState.PENDING, now=now, reason=reason, next_attempt_at=None, **changes
            ),
        )
    return (job, *touch(job, now=now, reason=reason, **changes))


class SlotsMixin:
    """Slot reads and moves that need the writing transaction; mixed into `Store`."""

    async def _write(self, fn: Callable[[Tx, list[Event]], Awaitable[T]]) -> T:
        raise NotImplementedError

    async def _append_event(self, db: Tx, job: Job, entry: Transition) -> Event:
        raise NotImplementedError

    async def free_slots(
        self, account_id: str, *, not_before: datetime, horizon_end: datetime, count: int
    ) -> list[slots.Placement]:
        """The next *count* free places (ListFreeSlots), read in one transaction so that the
        answer is consistent with concurrent schedules."""

        async def op(db: Tx, _: list[Event]) -> list[slots.Placement]:
            book = await Book.open(db, account_id)
            if book.schedule is None:
                raise no_schedule(account_id)
            out: list[slots.Placement] = []
            end = not_before
            while len(out) < count and end < horizon_end:
                end = min(end + _CHUNK, horizon_end)
                await book._load(not_before, end)
                out = slots.free_slots(
                    book.schedule,
                    pacing=book.pacing,
                    not_before=not_before,
                    until=end,
                    occupancy=book.occupancy,
                    taken=book.taken,
                    count=count,
                )
            return out

        return await self._write(op)

    async def reslot_job(
        self,
        job_id: str,
        *,
        expected_version: int,
        not_before: datetime,
        horizon_end: datetime,
        now: datetime,
    ) -> Job:
        """Move a job into the next free slot (see `reslot_decision`), atomically."""

        async def op(db: Tx, events: list[Event]) -> Job:
            old, new, entry = await reslot_decision(
                db, job_id, expected_version, not_before, horizon_end, now
            )
            await _cas(db, old, new)
            events.append(await self._append_event(db, new, entry))
            return new

        return await self._write(op)
