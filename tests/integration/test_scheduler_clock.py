"""The scheduler on a fake clock: jobs go out when due, never before, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from pinsched.app import Daemon
from pinsched.core.answers import parse_time
from pinsched.core.retry import RetryPolicy
from pinsched.sandbox.faults import FaultRule
from pinsched.scheduler import LEAD_US
from pinsched.testing import FakeClock, MidRandom
from pinsched.v1 import job_pb2, scheduler_pb2
from tests.conftest import Api, start_sandbox


async def test_jobs_fire_when_due_on_a_fake_clock(make_daemon: Callable[..., Daemon]) -> None:
    """Pins due over two days are sent at their due minute, in due order, and none early."""
    clock = FakeClock()
    sandbox = await start_sandbox(clock)  # stamps created_at with the same fake time
    daemon = make_daemon(clock=clock, base_url=sandbox.base_url)
    api = await Api.open(daemon)
    try:
        await api.create_account()
        start = clock.now()
        offsets_h = [30, 1, 47, 5, 5.5, 12, 12]
        due = {}
        for i, h in enumerate(offsets_h):
            job = await api.jobs.SchedulePin(
                api.pin_request(at=start + timedelta(hours=h), title=f"{i}")
            )
            due[job.id] = start + timedelta(hours=h)
        watch = api.jobs.WatchJobs(
            scheduler_pb2.WatchJobsRequest(states=[job_pb2.Job.STATE_DELIVERED], since_sequence=0)
        )
        delivered: list[str] = []
        for step in range(1, 2 * 48 + 1):
            await clock.advance(1800)
            now = clock.now()
            expected = sorted((d, j) for j, d in due.items() if d <= now)
            while len(delivered) < len(expected):
                event = await asyncio.wait_for(watch.read(), 10)
                delivered.append(event.job_id)
            assert delivered == [j for _, j in expected], f"step {step}"
        watch.cancel()
        owners = {}
        for job_id in due:
            got = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job_id))
            owners[got.pinterest_pin_id] = job_id
        for pin in sandbox.pins():
            owner = owners[pin["id"]]
            created = parse_time(pin["created_at"])
            assert created is not None
            assert due[owner].replace(microsecond=0) <= created < due[owner] + timedelta(minutes=31)
        assert len(sandbox.pins()) == len(offsets_h)
    finally:
        await api.close()
        await sandbox.stop()


async def test_a_job_cancelled_while_it_waits_for_pacing_is_never_sent(
    make_daemon: Callable[..., Daemon],
) -> None:
    """A QUEUED job cancelled while its dispatcher waits out the account's spacing is not
    published when the wait ends (the SUBMITTED commit's compare-and-set refuses it)."""
    clock = FakeClock()
    sandbox = await start_sandbox(clock)
    daemon = make_daemon(clock=clock, base_url=sandbox.base_url)
    api = await Api.open(daemon)
    try:
        await api.create_account(min_spacing=job_pb2.Job().delivery_window.__class__(seconds=600))
        at = clock.now() + timedelta(seconds=10)
        first = await api.jobs.SchedulePin(api.pin_request(at=at, title="first"))
        second = await api.jobs.SchedulePin(api.pin_request(at=at, title="second"))
        seen: dict[str, int] = {}
        both = {job_pb2.Job.STATE_DELIVERED, job_pb2.Job.STATE_QUEUED}
        for _ in range(100):  # small steps: a 50 ms lead sleep must see the clock move past it
            await clock.advance(0.5)
            await asyncio.wait_for(daemon.activity.idle.wait(), 10)
            for job in (first, second):
                got = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
                seen[job.id] = got.state
            if set(seen.values()) == both:
                break
        # Both are due at once: either goes first, the other waits out the spacing.
        assert {seen.get(first.id), seen.get(second.id)} == both
        sent, waiting = (
            (first, second) if seen[first.id] == job_pb2.Job.STATE_DELIVERED else (second, first)
        )
        await api.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=waiting.id))
        await clock.advance(1200)
        await asyncio.wait_for(daemon.activity.idle.wait(), 10)
        got = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=waiting.id))
        assert got.state == job_pb2.Job.STATE_CANCELLED
        assert [p["title"] for p in sandbox.pins()] == [sent.pin.title]
    finally:
        await api.close()
        await sandbox.stop()


async def test_a_retry_due_within_the_lead_is_sent_at_its_time_not_before(
    make_daemon: Callable[..., Daemon],
) -> None:
    """A backoff shorter than the scheduler's lead moves the retry to QUEUED at once; the
    dispatcher still waits for the retry's time, not for the job's planned time (long past)."""
    base_s = LEAD_US / 1e6
    backoff_s = RetryPolicy(base_delay_s=base_s).backoff_s(1, MidRandom())
    assert 0 < backoff_s < base_s
    clock = FakeClock()
    sandbox = await start_sandbox(clock)
    daemon = make_daemon(clock=clock, base_url=sandbox.base_url, retry_base_delay_s=base_s)
    api = await Api.open(daemon)
    try:
        daemon.dispatchers.rng = MidRandom()
        await api.create_account()
        sandbox.add_fault(FaultRule(kind="status", status=408, times=1))
        job = await api.jobs.SchedulePin(
            api.pin_request(at=clock.now() + timedelta(seconds=10), title="once")
        )
        await clock.advance(10)
        failed_at = clock.now()
        retrying = job_pb2.Job.STATE_RETRYING
        await api.until(job.id, lambda e: e.from_state == retrying and e.to_state != retrying)
        await asyncio.wait_for(daemon.activity.idle.wait(), 10)
        got = await api.get(job.id)
        assert (got.state, got.attempts, sandbox.pins()) == (job_pb2.Job.STATE_QUEUED, 1, [])
        explained = await api.jobs.ExplainJob(scheduler_pb2.ExplainJobRequest(job_id=job.id))
        assert explained.phase == scheduler_pb2.JobExplanation.PHASE_BACKOFF, explained.summary
        await clock.advance(backoff_s)
        done = await api.reach(job.id, job_pb2.Job.STATE_DELIVERED)
        assert done.attempts == 2
        assert done.delivered_time.ToDatetime(tzinfo=failed_at.tzinfo) == failed_at + timedelta(
            seconds=backoff_s
        )
    finally:
        await api.close()
        await sandbox.stop()
