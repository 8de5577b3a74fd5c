"""Posting schedules end to end: next free slot, cancels, schedule changes, board
groups, previews and bad input, on a real daemon, gRPC channel, SQLite file and sandbox."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.type import dayofweek_pb2  # type: ignore[import-untyped, unused-ignore]

from pinsched.app import Daemon
from pinsched.sandbox import Sandbox
from pinsched.testing import FakeClock
from pinsched.v1 import account_pb2, job_pb2, scheduler_pb2
from tests.conftest import ACCESS, Api, start_sandbox

J = job_pb2.Job
WEEKDAYS = [
    dayofweek_pb2.MONDAY,
    dayofweek_pb2.TUESDAY,
    dayofweek_pb2.WEDNESDAY,
    dayofweek_pb2.THURSDAY,
    dayofweek_pb2.FRIDAY,
]


def schedule(
    zone: str, times: list[tuple[int, int]], *, days: list[int] | None = None, per_slot: int = 0
) -> account_pb2.PostingSchedule:
    msg = account_pb2.PostingSchedule(max_per_slot=per_slot)
    msg.time_zone.id = zone
    for h, m in times:
        item = msg.slots.add(days=days or WEEKDAYS)
        item.time.hours, item.time.minutes = h, m
    return msg


async def slotted_account(
    api: Api, sched: account_pb2.PostingSchedule, account_id: str = "acme", **pacing: object
) -> None:
    acct = account_pb2.Account(access_token=ACCESS, posting_schedule=sched)
    if pacing:
        acct.pacing.CopyFrom(account_pb2.Pacing(**pacing))  # type: ignore[arg-type]
    await api.accounts.CreateAccount(
        account_pb2.CreateAccountRequest(account_id=account_id, account=acct)
    )


def slotted(
    api: Api, title: str, not_before: datetime | None = None, **kw: object
) -> scheduler_pb2.SchedulePinRequest:
    req = api.pin_request(at=datetime.now(UTC), title=title, **kw)  # type: ignore[arg-type]
    req.next_free_slot.SetInParent()
    if not_before is not None:
        req.next_free_slot.not_before.FromDatetime(not_before)
    return req


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeClock, Sandbox]]:
    clock = FakeClock()  # Monday 2026-01-05 09:00 UTC (10:00 in Paris)
    sandbox = await start_sandbox(clock)
    try:
        yield clock, sandbox
    finally:
        await sandbox.stop()


@pytest.fixture
async def fapi(
    make_daemon: Callable[..., Daemon], fake: tuple[FakeClock, Sandbox]
) -> AsyncIterator[Api]:
    clock, sandbox = fake
    daemon = make_daemon(clock=clock, base_url=sandbox.base_url)
    api = await Api.open(daemon)
    try:
        yield api
    finally:
        await api.close()


def at(job: job_pb2.Job) -> datetime:
    return job.planned_at.ToDatetime(tzinfo=UTC)


def paris(day: int, h: int, m: int = 0) -> datetime:
    """An instant given as Paris wall time in January 2026 (UTC+1)."""
    return datetime(2026, 1, day, h - 1, m, tzinfo=UTC)


async def test_a_week_of_slots_filled_concurrently_then_cancels_a_schedule_change_and_sends(
    fapi: Api, fake: tuple[FakeClock, Sandbox]
) -> None:
    """Forty concurrent next_free_slot pins fill Paris weekday slots two per slot, 10 min apart;
    a cancel frees its slot without moving others; a new schedule re-plans the pending jobs in
    order (one event each); every pin is sent at its planned time."""
    clock, sandbox = fake
    await slotted_account(
        fapi,
        schedule("Europe/Paris", [(9, 0), (12, 30), (18, 0)], per_slot=2),
        min_spacing={"seconds": 600},
    )
    jobs = await asyncio.gather(*(fapi.jobs.SchedulePin(slotted(fapi, f"p{i}")) for i in range(20)))
    per_slot = Counter(j.slot.start_time.ToDatetime(tzinfo=UTC) for j in jobs)
    assert max(per_slot.values()) == 2
    # Monday 10:00 Paris: the first free slots are Mon 12:30, Mon 18:00, Tue 09:00, ...
    expected = [
        paris(5, 12, 30),
        paris(5, 18),
        paris(6, 9),
        paris(6, 12, 30),
        paris(6, 18),
        paris(7, 9),
        paris(7, 12, 30),
        paris(7, 18),
        paris(8, 9),
        paris(8, 12, 30),
    ]
    assert sorted(per_slot) == expected
    for slot_at in per_slot:
        pair = sorted(at(j) for j in jobs if j.slot.start_time.ToDatetime(tzinfo=UTC) == slot_at)
        assert pair == [slot_at, slot_at + timedelta(minutes=10)]
    assert all(j.slot.time_zone == "Europe/Paris" for j in jobs)
    first = min(jobs, key=at)
    assert (first.slot.local_time.hours, first.slot.local_time.minutes) == (12, 30)

    # Cancel one pin of Tue 09:00: that place is the next free one; nobody else moved.
    victim = next(j for j in jobs if at(j) == paris(6, 9, 10))
    await fapi.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=victim.id))
    free = await fapi.jobs.ListFreeSlots(
        scheduler_pb2.ListFreeSlotsRequest(account_id="acme", count=3)
    )
    assert [s.planned_at.ToDatetime(tzinfo=UTC) for s in free.slots] == [
        paris(6, 9, 10),
        paris(8, 18),
        paris(8, 18, 10),
    ]
    assert free.slots[0].taken == 1
    again = [
        await fapi.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=j.id))
        for j in jobs
        if j.id != victim.id
    ]
    assert sorted(at(j) for j in again) == sorted(at(j) for j in jobs if j.id != victim.id)

    # UpdateJob moves the last pin into the next free place: the one the cancel freed.
    last = max(jobs, key=at)
    moved = await fapi.jobs.UpdateJob(
        scheduler_pb2.UpdateJobRequest(
            job=job_pb2.Job(id=last.id),
            update_mask=field_mask_pb2.FieldMask(paths=["next_free_slot"]),
        )
    )
    assert at(moved) == paris(6, 9, 10)
    assert "updated: next_free_slot" in moved.history[-1].reason

    # A new schedule re-plans the 19 pending jobs.
    watch = fapi.jobs.WatchJobs(scheduler_pb2.WatchJobsRequest(account_id="acme"))
    new = schedule("Europe/Paris", [(10, 0), (16, 0)], per_slot=3)
    await fapi.update_account(
        account_pb2.Account(id="acme", posting_schedule=new), "posting_schedule"
    )
    events = [await asyncio.wait_for(watch.read(), 5) for _ in range(19)]
    watch.cancel()
    assert all(e.reason.startswith("re-planned: posting schedule changed") for e in events)
    replanned = {e.job_id: e.job for e in events}
    assert len(replanned) == 19
    order = sorted(replanned.values(), key=at)
    # 3 per slot from Mon 10:00 Paris (it is 10:00 now) on, 10 minutes apart inside a slot.
    assert [at(j) for j in order[:4]] == [
        paris(5, 10),
        paris(5, 10, 10),
        paris(5, 10, 20),
        paris(5, 16),
    ]
    assert (
        Counter(j.slot.start_time.ToDatetime(tzinfo=UTC) for j in order).most_common(1)[0][1] == 3
    )

    # Run the week, one planned time after the other: every pin is published at its time.
    delivered = fapi.jobs.WatchJobs(
        scheduler_pb2.WatchJobsRequest(
            account_id="acme", states=[J.STATE_DELIVERED], since_sequence=0
        )
    )
    seen: set[str] = set()
    for when in sorted({at(j) for j in order}):
        await clock.set(when)
        due = {j.id for j in order if at(j) <= when}
        while not due <= seen:
            seen.add((await asyncio.wait_for(delivered.read(), 10)).job_id)
    delivered.cancel()
    done = [await fapi.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=j)) for j in replanned]
    assert {j.state for j in done} == {J.STATE_DELIVERED}
    created = {p.id: p.created_at for p in sandbox.state.pins_of()}
    assert len(created) == 19
    for j in done:
        sent = created[j.pinterest_pin_id]
        assert sent is not None
        assert at(j).replace(microsecond=0) <= sent < at(j) + timedelta(seconds=5)


async def test_without_a_schedule_next_free_slot_is_refused_naming_the_fix(api: Api) -> None:
    """SchedulePin, PreviewSchedule and ListFreeSlots answer FAILED_PRECONDITION saying how to
    set a posting schedule; nothing is stored."""
    await api.create_account()
    for call in (
        api.jobs.SchedulePin(slotted(api, "x")),
        api.jobs.ListFreeSlots(scheduler_pb2.ListFreeSlotsRequest(account_id="acme")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "posting_schedule" in (err.value.details() or "")
    listed = await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest(account_id="acme"))
    assert not listed.jobs


async def test_preview_shows_the_slot_schedule_then_takes(fapi: Api) -> None:
    """PreviewSchedule with next_free_slot names the slot (local time, zone) SchedulePin then
    assigns; a DST-gap slot in New York is shown as listed and planned an hour later."""
    await slotted_account(
        fapi, schedule("America/New_York", [(2, 30)], days=[dayofweek_pb2.SUNDAY])
    )
    not_before = datetime(2026, 3, 7, tzinfo=UTC)
    req = slotted(fapi, "dst", not_before)
    preview = await fapi.jobs.PreviewSchedule(
        scheduler_pb2.PreviewScheduleRequest(
            account_id="acme", pin=req.pin, next_free_slot=req.next_free_slot
        )
    )
    assert preview.planned_at.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert (
        preview.slot.local_time.day,
        preview.slot.local_time.hours,
        preview.slot.local_time.minutes,
    ) == (8, 2, 30)
    job = await fapi.jobs.SchedulePin(req)
    assert job.planned_at == preview.planned_at
    assert job.slot == preview.slot
    again = await fapi.jobs.SchedulePin(req)  # same request_id and content: the same job
    assert again.id == job.id


async def test_one_pin_on_several_boards_spaced_out(api: Api) -> None:
    """also_boards makes one job per board, board_interval apart, linked by group_id; the
    request_id covers the group; each job cancels alone; ListJobs filters by group."""
    await api.create_account()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    req = api.pin_request(at=start, title="group")
    req.also_boards.extend(["1002", "1003"])
    req.board_interval.FromTimedelta(timedelta(days=7))
    first = await api.jobs.SchedulePin(req)
    group = await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest(group_id=first.group_id))
    assert first.group_id == first.id
    jobs = sorted(group.jobs, key=at)
    assert [(j.pin.board_id, at(j)) for j in jobs] == [
        ("1001", start),
        ("1002", start + timedelta(days=7)),
        ("1003", start + timedelta(days=14)),
    ]
    resent = await api.jobs.BatchSchedulePins(
        scheduler_pb2.BatchSchedulePinsRequest(requests=[req])
    )
    assert [j.id for j in resent.jobs] == [first.id]
    assert list(resent.created) == [False]
    again = await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest(account_id="acme"))
    assert len(again.jobs) == 3
    await api.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=jobs[1].id))
    after = await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest(group_id=first.group_id))
    assert sorted(j.state for j in after.jobs) == [
        J.STATE_PENDING,
        J.STATE_PENDING,
        J.STATE_CANCELLED,
    ]


async def test_a_slotted_group_takes_the_next_free_slot_after_each_interval(fapi: Api) -> None:
    """With next_free_slot, each next board takes the first free slot at least board_interval
    after the previous one; an UpdateJob to scheduled_at makes a job unslotted."""
    await slotted_account(fapi, schedule("UTC", [(9, 0)], days=list(range(1, 8))))
    not_before = datetime(2026, 12, 1, 10, tzinfo=UTC)
    req = slotted(fapi, "g", not_before)
    req.also_boards.append("1002")
    req.board_interval.FromTimedelta(timedelta(hours=36))
    first = await fapi.jobs.SchedulePin(req)
    group = await fapi.jobs.ListJobs(scheduler_pb2.ListJobsRequest(group_id=first.group_id))
    assert sorted(at(j) for j in group.jobs) == [
        datetime(2026, 12, 2, 9, tzinfo=UTC),
        datetime(2026, 12, 4, 9, tzinfo=UTC),
    ]
    target = datetime(2026, 12, 20, 15, tzinfo=UTC)
    upd = scheduler_pb2.UpdateJobRequest(
        job=job_pb2.Job(id=first.id), update_mask=field_mask_pb2.FieldMask(paths=["scheduled_at"])
    )
    upd.job.scheduled_at.FromDatetime(target)
    moved = await fapi.jobs.UpdateJob(upd)
    assert at(moved) == target
    assert not moved.HasField("slot")


BAD_SCHEDULES = [
    (schedule("Mars/Olympus", [(9, 0)]), "account.posting_schedule.time_zone.id"),
    (
        account_pb2.PostingSchedule(time_zone=account_pb2.PostingTimeZone(id="UTC")),
        "account.posting_schedule.slots",
    ),
    (schedule("UTC", [(9, 0)], days=[0]), "account.posting_schedule.slots[0].days"),
    (schedule("UTC", [(9, 0)], days=[1, 1]), "account.posting_schedule.slots[0].days"),
    (schedule("UTC", [(24, 0)]), "account.posting_schedule.slots[0].time"),
    (schedule("UTC", [(9, 0)], per_slot=101), "account.posting_schedule.max_per_slot"),
]


@pytest.mark.parametrize(("sched", "field"), BAD_SCHEDULES)
async def test_a_bad_posting_schedule_is_refused_naming_the_field(
    api: Api, sched: account_pb2.PostingSchedule, field: str
) -> None:
    """CreateAccount and UpdateAccount refuse a bad schedule with INVALID_ARGUMENT on the field."""
    await api.create_account()
    calls: list[Awaitable[Any]] = [
        api.accounts.CreateAccount(
            account_pb2.CreateAccountRequest(
                account_id="other",
                account=account_pb2.Account(access_token=ACCESS, posting_schedule=sched),
            )
        ),
        api.update_account(
            account_pb2.Account(id="acme", posting_schedule=sched), "posting_schedule"
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (err.value.details() or "")


def _group(api: Api, boards: list[str], interval_s: int | None) -> scheduler_pb2.SchedulePinRequest:
    req = api.pin_request(at=datetime.now(UTC) + timedelta(hours=1))
    req.also_boards.extend(boards)
    if interval_s is not None:
        req.board_interval.seconds = interval_s
    return req


async def test_bad_slot_and_group_requests_name_the_field(api: Api) -> None:
    """Bad also_boards, board_interval, next_free_slot and ListFreeSlots input are
    INVALID_ARGUMENT naming the field; nothing is stored."""
    await slotted_account(api, schedule("UTC", [(9, 0)]))
    windowed = slotted(api, "w")
    windowed.delivery_window.seconds = 3600
    past = slotted(api, "p", datetime(2020, 1, 1, tzinfo=UTC))
    cases = [
        (_group(api, [str(2000 + i) for i in range(10)], 86400), "also_boards"),
        (_group(api, ["1001"], 86400), "also_boards[0]"),
        (_group(api, ["12a"], 86400), "also_boards[0]"),
        (_group(api, ["1002"], 1800), "board_interval"),
        (_group(api, ["1002"], None), "board_interval"),
        (_group(api, [], 86400), "board_interval"),
        (windowed, "delivery_window"),
        (past, "next_free_slot.not_before"),
    ]
    for req, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await api.jobs.SchedulePin(req)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert f"{field}:" in (err.value.details() or ""), (field, err.value.details())
    for lreq, field in [
        (scheduler_pb2.ListFreeSlotsRequest(account_id="acme", count=101), "count"),
        (scheduler_pb2.ListFreeSlotsRequest(count=1), "account_id"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await api.jobs.ListFreeSlots(lreq)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (err.value.details() or "")
    job = await api.jobs.SchedulePin(api.pin_request(at=datetime.now(UTC) + timedelta(hours=1)))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.UpdateJob(
            scheduler_pb2.UpdateJobRequest(
                job=job_pb2.Job(id=job.id),
                update_mask=field_mask_pb2.FieldMask(paths=["next_free_slot", "pin.title"]),
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    listed = await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest(account_id="acme"))
    assert [j.id for j in listed.jobs] == [job.id]


async def test_concurrent_single_and_batch_schedules_never_share_a_slot(fapi: Api) -> None:
    """Sixty single SchedulePin calls racing three 20-pin batches (one slot each) give 120
    distinct consecutive slots; ListFreeSlots then starts right after them."""
    await slotted_account(
        fapi,
        schedule("Australia/Lord_Howe", [(h, 0) for h in range(8, 20)], days=list(range(1, 8))),
    )
    singles = [fapi.jobs.SchedulePin(slotted(fapi, f"s{i}")) for i in range(60)]
    batches = [
        fapi.jobs.BatchSchedulePins(
            scheduler_pb2.BatchSchedulePinsRequest(
                requests=[slotted(fapi, f"b{b}-{i}") for i in range(20)]
            )
        )
        for b in range(3)
    ]
    got = await asyncio.gather(*singles, *batches)
    batch_type = scheduler_pb2.BatchSchedulePinsResponse
    jobs = [j for r in got for j in (r.jobs if isinstance(r, batch_type) else [r])]
    slot_times = sorted(j.slot.start_time.ToDatetime(tzinfo=UTC) for j in jobs)
    assert len(set(slot_times)) == 120
    free = await fapi.jobs.ListFreeSlots(
        scheduler_pb2.ListFreeSlotsRequest(account_id="acme", count=1)
    )
    first_free = free.slots[0].slot.start_time.ToDatetime(tzinfo=UTC)
    assert first_free > slot_times[-1]
    assert (first_free - slot_times[-1]) <= timedelta(hours=13)  # the next slot, overnight at most


async def test_only_unsent_jobs_move_to_a_slot(fapi: Api, fake: tuple[FakeClock, Sandbox]) -> None:
    """UpdateJob next_free_slot is FAILED_PRECONDITION for a DELIVERED or CANCELLED job (naming
    the state) and changes nothing; a PENDING job moves, one event."""
    clock, _ = fake
    await slotted_account(fapi, schedule("UTC", [(12, 0)], days=list(range(1, 8))))
    sent = await fapi.jobs.SchedulePin(fapi.pin_request(at=clock.now() + timedelta(minutes=1)))
    gone = await fapi.jobs.SchedulePin(fapi.pin_request(at=clock.now() + timedelta(hours=5)))
    await fapi.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=gone.id))
    watch = fapi.jobs.WatchJobs(
        scheduler_pb2.WatchJobsRequest(
            job_ids=[sent.id], states=[J.STATE_DELIVERED], since_sequence=0
        )
    )
    await clock.advance(120)
    await asyncio.wait_for(watch.read(), 10)
    watch.cancel()
    mask = field_mask_pb2.FieldMask(paths=["next_free_slot"])
    for job_id, state in ((sent.id, "DELIVERED"), (gone.id, "CANCELLED")):
        before = await fapi.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job_id))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await fapi.jobs.UpdateJob(
                scheduler_pb2.UpdateJobRequest(job=job_pb2.Job(id=job_id), update_mask=mask)
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert state in (err.value.details() or "")
        after = await fapi.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job_id))
        assert after.version == before.version
    pending = await fapi.jobs.SchedulePin(fapi.pin_request(at=clock.now() + timedelta(hours=1)))
    moved = await fapi.jobs.UpdateJob(
        scheduler_pb2.UpdateJobRequest(job=job_pb2.Job(id=pending.id), update_mask=mask)
    )
    assert moved.state == J.STATE_PENDING
    assert moved.version == 2
    assert at(moved) == datetime(2026, 1, 5, 12, tzinfo=UTC)


async def test_slots_and_groups_survive_a_restart(
    make_daemon: Callable[..., Daemon], fake: tuple[FakeClock, Sandbox]
) -> None:
    """After a restart on the same database a job keeps its slot and group, the slot stays
    taken, and the account keeps its posting schedule."""
    clock, sandbox = fake
    ids: list[str] = []
    for run in range(2):
        daemon = make_daemon(clock=clock, base_url=sandbox.base_url)
        api = await Api.open(daemon)
        try:
            if run == 0:
                await slotted_account(
                    api, schedule("Europe/London", [(9, 0)], days=list(range(1, 8)))
                )
                req = slotted(api, "kept")
                req.also_boards.append("1002")
                req.board_interval.FromTimedelta(timedelta(days=2))
                first = await api.jobs.SchedulePin(req)
                group = await api.jobs.ListJobs(
                    scheduler_pb2.ListJobsRequest(group_id=first.group_id)
                )
                ids = [j.id for j in sorted(group.jobs, key=at)]
                continue
            jobs = [await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=i)) for i in ids]
            assert [at(j) for j in jobs] == [
                datetime(2026, 1, 5, 9, tzinfo=UTC),  # now
                datetime(2026, 1, 7, 9, tzinfo=UTC),
            ]
            assert {j.group_id for j in jobs} == {ids[0]}
            assert all(j.slot.time_zone == "Europe/London" for j in jobs)
            acct = await api.accounts.GetAccount(account_pb2.GetAccountRequest(account_id="acme"))
            assert acct.posting_schedule.time_zone.id == "Europe/London"
            free = await api.jobs.ListFreeSlots(
                scheduler_pb2.ListFreeSlotsRequest(account_id="acme", count=2)
            )
            assert [s.planned_at.ToDatetime(tzinfo=UTC) for s in free.slots] == [
                datetime(2026, 1, 6, 9, tzinfo=UTC),
                datetime(2026, 1, 8, 9, tzinfo=UTC),
            ]
        finally:
            await api.close()
