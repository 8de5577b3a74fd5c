"""Tests of `pinsched.clock`: the fake clock wakes sleepers in order and only when due."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from pinsched.clock import Activity, SystemClock, periodic, sleep_or_wake
from pinsched.testing import FakeClock

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


async def wait_for_sleepers(clock: FakeClock, count: int) -> None:
    """Let the loop run until *count* sleeps are pending (bounded: fails instead of hanging)."""
    for _ in range(100):
        if clock.sleepers == count:
            return
        await asyncio.sleep(0)
    pytest.fail(f"expected {count} sleepers, have {clock.sleepers}")


async def test_sleepers_wake_in_deadline_order_at_their_deadline() -> None:
    """Sleepers started in any order wake earliest deadline first, each seeing its own deadline."""
    clock = FakeClock(START)
    woke: list[tuple[float, datetime]] = []

    async def sleeper(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((seconds, clock.now()))

    tasks = [asyncio.create_task(sleeper(s)) for s in (3.0, 1.0, 2.0)]
    await wait_for_sleepers(clock, 3)
    await clock.advance(10)
    await asyncio.gather(*tasks)
    assert woke == [(s, START + timedelta(seconds=s)) for s in (1.0, 2.0, 3.0)]
    assert clock.now() == START + timedelta(seconds=10)


async def test_sleepers_wake_only_once_their_deadline_passes() -> None:
    """Advancing short of a deadline wakes nobody; reaching it exactly wakes the sleeper."""
    clock = FakeClock(START)
    task = asyncio.create_task(clock.sleep(1.0))
    await wait_for_sleepers(clock, 1)
    await clock.advance(0.5)
    assert not task.done()
    assert clock.next_deadline() == pytest.approx(0.5)
    await clock.advance(0.5)
    assert task.done()
    assert clock.sleepers == 0
    assert clock.next_deadline() is None
    await task


async def test_woken_task_runs_before_later_deadlines() -> None:
    """A task woken by `advance` runs (and can sleep again) before later deadlines fire."""
    clock = FakeClock(START)
    log: list[tuple[str, float]] = []

    async def repeater() -> None:
        for _ in range(3):
            await clock.sleep(1.0)
            log.append(("repeater", clock.monotonic()))

    async def late() -> None:
        await clock.sleep(2.5)
        log.append(("late", clock.monotonic()))

    tasks = [asyncio.create_task(repeater()), asyncio.create_task(late())]
    await wait_for_sleepers(clock, 2)
    await clock.advance(10)
    await asyncio.gather(*tasks)
    assert log == [("repeater", 1.0), ("repeater", 2.0), ("late", 2.5), ("repeater", 3.0)]


async def test_a_sleep_counts_from_the_call_even_when_its_task_starts_later() -> None:
    """A delay computed at 09:40 and handed to a task that first runs after time moved to 10:00
    (its caller was waiting on real I/O meanwhile) ends at 09:45: at once, not at 10:05."""
    clock = FakeClock(START)
    pending = clock.sleep(300)  # asked now: ends at START + 5 min
    late = clock.sleep(1500)  # ends at START + 25 min
    await clock.advance(1200)
    sleeper = asyncio.ensure_future(pending)
    await asyncio.wait_for(sleeper, 1)
    assert clock.now() == START + timedelta(minutes=20)
    waiter = asyncio.ensure_future(late)
    await wait_for_sleepers(clock, 1)
    assert clock.next_deadline() == pytest.approx(300)
    await clock.advance(300)
    await asyncio.wait_for(waiter, 1)


async def test_zero_sleep_returns_without_advancing() -> None:
    """sleep(0) and negative sleeps return at once, leaving no pending sleeper."""
    clock = FakeClock(START)
    await clock.sleep(0)
    await clock.sleep(-1)
    assert clock.sleepers == 0
    assert clock.now() == START


async def test_cancelled_sleeper_is_forgotten() -> None:
    """A cancelled sleep is not counted and does not disturb later wake-ups."""
    clock = FakeClock(START)
    cancelled = asyncio.create_task(clock.sleep(1.0))
    kept = asyncio.create_task(clock.sleep(2.0))
    await wait_for_sleepers(clock, 2)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert clock.sleepers == 1
    await clock.advance(2.0)
    assert kept.done()
    await kept


async def test_set_moves_forward_never_back() -> None:
    """`set` advances to a later instant and ignores an earlier one."""
    clock = FakeClock(START)
    await clock.set(START + timedelta(hours=1))
    assert clock.now() == START + timedelta(hours=1)
    await clock.set(START)
    assert clock.now() == START + timedelta(hours=1)
    assert clock.monotonic() == 3600.0


async def test_fake_clock_drives_a_day_quickly() -> None:
    """A loop sleeping a minute at a time runs a simulated day through one `advance`."""
    clock = FakeClock(START)
    ticks = 0

    async def minutely() -> None:
        nonlocal ticks
        while ticks < 24 * 60:
            await clock.sleep(60)
            ticks += 1

    task = asyncio.create_task(minutely())
    await wait_for_sleepers(clock, 1)
    await clock.advance(24 * 3600)
    await task
    assert ticks == 24 * 60
    assert clock.now() == START + timedelta(days=1)


async def test_system_clock_is_aware_utc() -> None:
    """The real clock reports aware UTC and a non-decreasing monotonic time."""
    clock = SystemClock()
    now = clock.now()
    assert now.tzinfo is UTC
    first = clock.monotonic()
    await clock.sleep(0)
    assert clock.monotonic() >= first


async def test_periodic_runs_at_once_then_every_interval_and_survives_a_failing_pass() -> None:
    """`periodic` runs its work at once, again each interval (not before), keeps going after a
    pass raises, is idle between passes and ends when stopped."""
    clock, activity, stop = FakeClock(START), Activity(), asyncio.Event()
    passes: list[float] = []

    async def work() -> None:
        passes.append(clock.monotonic())
        if len(passes) == 2:
            raise RuntimeError("storage trouble")

    task = asyncio.create_task(periodic(clock, activity, 60.0, stop, work, name="test"))
    await wait_for_sleepers(clock, 1)
    assert passes == [0.0]
    assert activity.idle.is_set()
    await clock.advance(59.0)
    assert passes == [0.0]
    await clock.advance(1.0)
    await wait_for_sleepers(clock, 1)
    await clock.advance(60.0)
    await wait_for_sleepers(clock, 1)
    assert passes == [0.0, 60.0, 120.0]
    stop.set()
    await asyncio.wait_for(task, 1.0)
    assert activity.busy == 0
    assert activity.idle.is_set()


async def test_sleep_or_wake_ends_at_the_time_or_at_the_first_event_and_leaves_nothing() -> None:
    """It returns when its time is up, or earlier when one of its events is set (at once when
    one already is), and leaves no sleeper or waiter behind; None means no time limit."""
    clock = FakeClock(START)
    stop, wake = asyncio.Event(), asyncio.Event()

    timed = asyncio.create_task(sleep_or_wake(clock, 30, stop, wake))
    await clock.advance(29)
    assert not timed.done()
    await clock.advance(1)
    await asyncio.wait_for(timed, 1)
    assert clock.sleepers == 0

    woken = asyncio.create_task(sleep_or_wake(clock, 30, stop, wake))
    await wait_for_sleepers(clock, 1)
    wake.set()
    await asyncio.wait_for(woken, 1)
    assert (clock.now(), clock.sleepers) == (START + timedelta(seconds=30), 0)

    await asyncio.wait_for(sleep_or_wake(clock, 30, stop, wake), 1)  # wake is still set
    wake.clear()
    untimed = asyncio.create_task(sleep_or_wake(clock, None, stop))
    await clock.advance(3600)
    assert not untimed.done()
    stop.set()
    await asyncio.wait_for(untimed, 1)
    assert clock.sleepers == 0
    with pytest.raises(ValueError, match="a time or an event"):
        await sleep_or_wake(clock, None)  # would never end
