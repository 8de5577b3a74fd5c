"""`PublishFirst`: staging waits while pins are queued or submitted or one is about to be due,
never past its urgency or the longest wait, on the fake clock."""

from __future__ import annotations

from datetime import timedelta

from pinsched.core.jobs import JobState, Transition
from pinsched.media.publish_first import PublishFirst
from pinsched.store import Event, codec
from pinsched.testing import FakeClock


def _event(clock: FakeClock, to: JobState) -> Event:
    entry = Transition(from_state=JobState.PENDING, to_state=to, time=clock.now(), reason="x")
    return Event(sequence=1, job_id="j", account_id="a", transition=entry)


async def test_a_queued_pin_makes_it_busy_until_quiet() -> None:
    """A QUEUED or SUBMITTED event makes publishing busy for `quiet_s`; other events do not."""
    clock = FakeClock()
    first = PublishFirst(clock, quiet_s=0.5)
    first.observe([_event(clock, JobState.PENDING)])
    assert not first.busy()
    first.observe([_event(clock, JobState.QUEUED)])
    assert first.busy()
    await clock.advance(0.6)
    assert not first.busy()
    first.observe([_event(clock, JobState.SUBMITTED)])
    assert first.busy()


async def test_a_pin_due_soon_makes_it_busy() -> None:
    """The scheduler's next due job within `ahead_s` is busy; later, or none, is not."""
    clock = FakeClock()
    due: list[int | None] = [None]
    first = PublishFirst(clock, next_due_us=lambda: due[0], ahead_s=1.0)
    assert not first.busy()
    due[0] = codec.to_us(clock.now() + timedelta(seconds=0.5))
    assert first.busy()
    due[0] = codec.to_us(clock.now() + timedelta(seconds=5))
    assert not first.busy()


async def test_the_turn_waits_for_quiet_but_never_past_urgency_or_the_longest_wait() -> None:
    """A turn sleeps while busy and goes once quiet; an urgent job does not wait; a busy spell
    that never ends is waited out for `max_wait_s` at most."""
    clock = FakeClock()
    first = PublishFirst(clock, quiet_s=0.5, poll_s=0.1, max_wait_s=2.0)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await clock.advance(seconds)

    later = clock.now() + timedelta(hours=1)
    first.observe([_event(clock, JobState.QUEUED)])
    waited = await first.turn(urgent_at=later, sleep=sleep)
    assert 0.5 <= waited <= 0.7
    first.observe([_event(clock, JobState.QUEUED)])
    assert await first.turn(urgent_at=clock.now(), sleep=sleep) == 0.0
    always = PublishFirst(clock, next_due_us=lambda: codec.to_us(clock.now()), max_wait_s=2.0)
    assert abs(await always.turn(urgent_at=later, sleep=sleep) - 2.0) < 0.11
