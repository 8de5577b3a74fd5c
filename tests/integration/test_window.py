"""The windowed due-heap on a real SQLite file and a FakeClock: only the jobs due within the
window are in memory, and nothing due is missed across the window's edge, a restart, a clock
jump, a burst larger than the window or an account held meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta

import pytest

from pinsched.core.accounts import Account
from pinsched.core.jobs import ImageUrl, Job, JobState, PinSpec, Transition, touch
from pinsched.scheduler import LEAD_US, Scheduler
from pinsched.store import Store, codec
from pinsched.testing import FakeClock

START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
LEAD = timedelta(microseconds=LEAD_US)
RUNNING: list[Harness] = []  # stopped before the store closes, whatever a test's outcome


class Harness:
    """A scheduler over a real store; what it dispatches is recorded with the clock's time."""

    def __init__(
        self,
        store: Store,
        clock: FakeClock,
        *,
        window_s: float,
        window_max: int,
        paused: set[str] | None = None,
    ) -> None:
        self.store, self.clock = store, clock
        self.paused = paused if paused is not None else set()
        self.sent: list[tuple[str, datetime]] = []
        self.most_held = 0  # the largest heap seen at a dispatch
        self.sched = Scheduler(
            store,
            clock,
            dispatch=self._dispatch,
            can_publish=lambda account: account not in self.paused,
            window_s=window_s,
            window_max=window_max,
        )
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.count = 0

    def _dispatch(self, job: Job) -> None:
        assert job.state is JobState.QUEUED
        self.sent.append((job.id, self.clock.now()))
        self.most_held = max(self.most_held, len(self.sched.heap))

    async def start(self) -> None:
        await self.sched.recover()
        self.task = asyncio.create_task(self.sched.run(self.stop))
        RUNNING.append(self)
        await self.settle()

    async def settle(self) -> None:
        """Wait until the scheduler is parked (everything the clock made due is done)."""
        for _ in range(3):
            await asyncio.sleep(0)
            await self.sched.activity.idle.wait()

    async def advance(self, seconds: float) -> None:
        await self.clock.advance(seconds)
        await self.settle()

    async def stop_loop(self) -> None:
        self.stop.set()
        assert self.task is not None
        await self.task

    async def add(
        self, dues: Iterable[datetime], *, account: str = "acme", track: bool = True
    ) -> list[Job]:
        """Create PENDING jobs due at *dues* and (like the service) tell the scheduler."""
        now = self.clock.now()
        jobs, entries = [], []
        for due in dues:
            self.count += 1
            jobs.append(
                Job(
                    id=f"{codec.to_us(due):020d}-{self.count:06d}",
                    account_id=account,
                    state=JobState.PENDING,
                    scheduled_at=due,
                    planned_at=due,
                    pin=PinSpec(board_id="1", media=ImageUrl(url="https://x/a.jpg"), title="t"),
                    request_hash="h",
                    created_at=now,
                    updated_at=now,
                )
            )
            entries.append(
                Transition(from_state=None, to_state=JobState.PENDING, time=now, reason="scheduled")
            )
        created = [job for job, _ in await self.store.create_jobs(jobs, entries)]
        if track:
            for job in created:
                self.sched.track(job)
        return created

    async def move(self, job: Job, due: datetime) -> Job:
        """Re-plan *job* to *due* (committed first, then tracked: the service's order)."""
        new, _ = await self.store.commit(
            job, *touch(job, now=self.clock.now(), reason="moved", planned_at=due)
        )
        self.sched.track(new)
        return new

    def assert_on_time(self, jobs: Iterable[Job], *, step_s: float) -> None:
        """Every job was sent exactly once, not before its lead time, within a step of it, and
        in due order."""
        sent = dict(self.sent)
        assert len(sent) == len(self.sent), "a job was dispatched twice"
        want = {job.id: job.planned_at for job in jobs}
        assert set(sent) == set(want)
        for job_id, at in sent.items():
            assert want[job_id] - LEAD <= at <= want[job_id] + timedelta(seconds=step_s), job_id
        order = [job_id for job_id, _ in self.sent]
        assert order == sorted(order, key=lambda j: (want[j], j))


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url)
    for account in ("acme", "paused"):
        await s.create_account(
            Account(id=account, access_token="tok", created_at=START, updated_at=START)
        )
    yield s
    for h in RUNNING:
        h.stop.set()
        if h.task is not None:
            await h.task
    RUNNING.clear()
    await s.close()


async def test_only_the_window_is_in_memory_and_the_index_refills_it(store: Store) -> None:
    """Start-up reads only the jobs due within the window; later jobs come in as time moves the
    edge, and every one is sent on time and in order across many window boundaries."""
    clock = FakeClock(START)
    h = Harness(store, clock, window_s=60, window_max=1000)
    jobs = await h.add((START + timedelta(seconds=7 * k) for k in range(1, 201)), track=False)
    # Two jobs exactly at a window edge, and one a microsecond after it.
    jobs += await h.add([START + timedelta(seconds=60)] * 2, track=False)
    jobs += await h.add([START + timedelta(seconds=60, microseconds=1)], track=False)
    await h.start()
    in_window = sum(1 for job in jobs if job.planned_at <= START + timedelta(seconds=60))
    assert len(h.sched.heap) == in_window
    biggest = 0
    for _ in range(290):
        await h.advance(5)
        biggest = max(biggest, len(h.sched.heap))
    assert biggest <= 20  # 60 s of jobs every 7 s (and the edge pair), never the backlog
    h.assert_on_time(jobs, step_s=5)
    await h.stop_loop()


async def test_arrivals_inside_the_window_go_on_the_heap_and_later_ones_wait(store: Store) -> None:
    """A job scheduled inside the window is on the heap at once; one beyond it is not, yet is
    sent on time; a job moved out of the window leaves the heap and one moved in joins it."""
    clock = FakeClock(START)
    h = Harness(store, clock, window_s=60, window_max=1000)
    await h.start()
    [near] = await h.add([START + timedelta(seconds=20)])
    [far] = await h.add([START + timedelta(hours=2)])
    [going] = await h.add([START + timedelta(seconds=30)])
    [coming] = await h.add([START + timedelta(hours=3)])
    assert near.id in h.sched.heap
    assert going.id in h.sched.heap
    assert far.id not in h.sched.heap
    assert coming.id not in h.sched.heap
    going = await h.move(going, START + timedelta(hours=1))
    coming = await h.move(coming, START + timedelta(seconds=40))
    assert going.id not in h.sched.heap
    assert coming.id in h.sched.heap
    for _ in range(3 * 60):
        await h.advance(60)
    h.assert_on_time([near, far, going, coming], step_s=60)
    await h.stop_loop()


async def test_a_clock_jump_over_many_windows_misses_nothing(store: Store) -> None:
    """After one jump of three days over jobs spread across them, every job is sent at once,
    in due order, and none twice."""
    clock = FakeClock(START)
    h = Harness(store, clock, window_s=60, window_max=100)
    jobs = await h.add(START + timedelta(minutes=17 * k) for k in range(1, 250))
    await h.start()
    assert len(h.sched.heap) <= 4
    await h.advance(3 * 86400)
    sent = [job_id for job_id, _ in h.sent]
    assert sorted(sent) == sorted(job.id for job in jobs)
    assert sent == [job.id for job in sorted(jobs, key=lambda j: (j.planned_at, j.id))]
    await h.stop_loop()


async def test_a_burst_bigger_than_the_window_is_read_a_slice_at_a_time(store: Store) -> None:
    """1,000 jobs due at the same instant with room for 50 on the heap: all are sent once, in id
    order, and the heap never holds more than a slice of them."""
    clock = FakeClock(START)
    h = Harness(store, clock, window_s=60, window_max=50)
    due = START + timedelta(seconds=30)
    jobs = await h.add([due] * 1000, track=False)
    await h.start()
    assert len(h.sched.heap) == 50
    await h.advance(30)
    h.assert_on_time(jobs, step_s=0)
    assert h.most_held <= 50
    assert len(h.sched.heap) == 0
    await h.stop_loop()


async def test_a_restart_reads_only_the_window_and_sends_what_fell_due_while_down(
    db_url: str,
) -> None:
    """Jobs due while the scheduler was down are sent at start-up; later ones come from the index
    as before; start-up read only the window, not the backlog."""
    clock = FakeClock(START)
    path = db_url
    store = await Store.open(path)
    await store.create_account(
        Account(id="acme", access_token="tok", created_at=START, updated_at=START)
    )
    first = Harness(store, clock, window_s=120, window_max=1000)
    jobs = await first.add(START + timedelta(minutes=10 * k) for k in range(1, 145))
    await first.start()
    for _ in range(6):
        await first.advance(600)  # an hour: 6 jobs sent
    await first.stop_loop()
    await store.close()
    await clock.advance(3 * 3600)  # down for three hours: 18 jobs fell due
    store = await Store.open(path)
    second = Harness(store, clock, window_s=120, window_max=1000)
    await second.start()
    assert len(second.sched.heap) == 0  # the 18 overdue ones went out at once
    # The 6 the first run left QUEUED go back to their dispatcher, then the 18 that fell due.
    assert [j for j, _ in second.sent] == [job.id for job in jobs[:24]]
    assert len(await store.due_index()) == 144 - 24
    for _ in range(20 * 6):
        await second.advance(600)
    assert [j for j, _ in second.sent] == [job.id for job in jobs]
    await second.stop_loop()
    await store.close()


async def test_held_jobs_are_not_reread_and_are_sent_on_release(store: Store) -> None:
    """Jobs of an account that cannot publish are held once, not read back at every refill,
    and go out when the account is released, hours and many windows later."""
    clock = FakeClock(START)
    paused = {"paused"}
    h = Harness(store, clock, window_s=60, window_max=100, paused=paused)
    held = await h.add((START + timedelta(seconds=10 * k) for k in range(1, 11)), account="paused")
    others = await h.add(START + timedelta(minutes=5 * k) for k in range(1, 25))
    await h.start()
    for minute in range(1, 2 * 60 + 1):
        await h.advance(60)
        if minute >= 2:  # all ten were due by then
            assert not any(job.id in h.sched.heap for job in held)
    assert h.sched.held["paused"] == {job.id for job in held}
    h.assert_on_time(others, step_s=60)
    paused.clear()
    assert await h.sched.release("paused") == 10
    await h.settle()
    assert sorted(j for j, _ in h.sent[len(others) :]) == sorted(job.id for job in held)
    await h.stop_loop()


async def test_a_job_moved_during_a_refill_keeps_its_new_time(store: Store) -> None:
    """A job re-planned while the index is being read keeps the time it was tracked with, not
    the one the read may have seen."""
    clock = FakeClock(START)
    h = Harness(store, clock, window_s=60, window_max=100)
    [job] = await h.add([START + timedelta(seconds=200)], track=False)
    await h.start()
    assert job.id not in h.sched.heap
    await h.stop_loop()
    await clock.advance(150)  # the next read covers 150 s → 210 s: the job's old time
    fill = asyncio.create_task(h.sched._fill(codec.to_us(clock.now())))
    await asyncio.sleep(0)
    assert not fill.done()
    # The service tracks a change once committed; here the read is sure to see the old time.
    moved, entry = touch(
        job, now=clock.now(), reason="moved", planned_at=START + timedelta(seconds=170)
    )
    h.sched.track(moved)
    await fill
    assert h.sched.heap.peek_due() == codec.to_us(moved.planned_at)
    moved, _ = await store.commit(job, moved, entry)
    h.stop = asyncio.Event()
    h.task = asyncio.create_task(h.sched.run(h.stop))
    await h.settle()
    await h.advance(20)
    h.assert_on_time([moved], step_s=0)
    await h.stop_loop()


class LateClock(FakeClock):
    """A FakeClock whose sleeps last ten times what was asked: a loop running late."""

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds * 10)


async def test_an_arrival_past_a_stale_edge_wakes_a_late_loop(store: Store) -> None:
    """When the loop oversleeps its refill, a job scheduled due now (past the stale edge) wakes
    it: the window is read again and the job is sent at once, not when the loop wakes."""
    clock = LateClock(START)
    h = Harness(store, clock, window_s=60, window_max=100)
    await h.start()
    await h.advance(100)  # the refill was due at +30 s; the loop sleeps until +300 s
    assert h.sched.edge[0] < codec.to_us(clock.now())
    [job] = await h.add([clock.now()])
    await h.settle()
    assert [j for j, _ in h.sent] == [job.id]
    await h.stop_loop()
