"""Delivery windows and pacing end to end: plans, re-plans, and what the sandbox received."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import grpc
from google.protobuf import duration_pb2

from pinsched.app import Daemon
from pinsched.core.accounts import Pacing
from pinsched.core.answers import parse_time
from pinsched.core.planning import violations
from pinsched.testing import FakeClock
from pinsched.v1 import account_pb2, job_pb2, scheduler_pb2
from tests.conftest import Api, soon, start_sandbox

J = job_pb2.Job


def windowed(
    api: Api, start_s: float, window: timedelta, title: str, account_id: str = "acme"
) -> scheduler_pb2.SchedulePinRequest:
    req = api.pin_request(
        at=soon(start_s).replace(second=0, microsecond=0) + timedelta(hours=1),
        title=title,
        account_id=account_id,
    )
    req.delivery_window.FromTimedelta(window)
    return req


async def test_pins_sharing_a_window_are_spread_and_replanned(api: Api) -> None:
    """Ten pins in an 8h window are spread 30m+ apart inside it; ten more re-plan the pending
    ones, each re-plan visible in the history and on the watch stream."""
    await api.create_account(min_spacing=duration_pb2.Duration(seconds=1800))
    window = timedelta(hours=8)
    first = await api.jobs.BatchSchedulePins(
        scheduler_pb2.BatchSchedulePinsRequest(
            requests=[windowed(api, 0, window, f"a{i}") for i in range(10)]
        )
    )
    start = first.jobs[0].scheduled_at.ToDatetime()
    times = sorted(j.planned_at.ToDatetime() for j in first.jobs)
    assert all(start <= t <= start + window for t in times)
    assert min(b - a for a, b in itertools.pairwise(times)) >= timedelta(minutes=30)
    watch = api.jobs.WatchJobs(scheduler_pb2.WatchJobsRequest(job_ids=[j.id for j in first.jobs]))
    second = await api.jobs.BatchSchedulePins(
        scheduler_pb2.BatchSchedulePinsRequest(
            requests=[windowed(api, 0, window, f"b{i}") for i in range(10)]
        )
    )
    replanned = [await asyncio.wait_for(watch.read(), 5) for _ in range(10)]
    watch.cancel()
    assert {e.job_id for e in replanned} == {j.id for j in first.jobs}
    assert all(e.from_state == e.to_state == J.STATE_PENDING for e in replanned)
    assert all(e.reason.startswith("re-planned") for e in replanned)
    everything = [
        (await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=j.id)))
        for j in [*first.jobs, *second.jobs]
    ]
    times = sorted(j.planned_at.ToDatetime() for j in everything)
    assert all(start <= t <= start + window for t in times)
    assert min(b - a for a, b in itertools.pairwise(times)) >= timedelta(minutes=20)


async def test_a_window_too_small_for_the_spacing_says_so(api: Api) -> None:
    """Pins that cannot keep the spacing inside their window are spread evenly and the history
    says why; none is planned outside the window."""
    await api.create_account(min_spacing=duration_pb2.Duration(seconds=3600))
    resp = await api.jobs.BatchSchedulePins(
        scheduler_pb2.BatchSchedulePinsRequest(
            requests=[windowed(api, 0, timedelta(minutes=30), f"p{i}") for i in range(4)]
        )
    )
    start = resp.jobs[0].scheduled_at.ToDatetime()
    times = sorted(j.planned_at.ToDatetime() for j in resp.jobs)
    assert times[0] == start
    assert times[-1] == start + timedelta(minutes=30)
    got = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=resp.jobs[0].id))
    assert "cannot honour" in got.history[0].reason


async def test_preview_matches_what_schedule_then_assigns(api: Api) -> None:
    """PreviewSchedule returns the time SchedulePin then assigns, and persists nothing."""
    await api.create_account(min_spacing=duration_pb2.Duration(seconds=600))
    await api.jobs.SchedulePin(windowed(api, 0, timedelta(hours=2), "existing"))
    req = windowed(api, 0, timedelta(hours=2), "new")
    preview = scheduler_pb2.PreviewScheduleRequest(
        account_id="acme",
        pin=req.pin,
        scheduled_at=req.scheduled_at,
        delivery_window=req.delivery_window,
    )
    planned = (await api.jobs.PreviewSchedule(preview)).planned_at
    assert len((await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest())).jobs) == 1
    job = await api.jobs.SchedulePin(req)
    assert job.planned_at == planned


async def test_days_of_busy_schedule_respect_pacing_and_fairness(
    make_daemon: Callable[..., Daemon],
) -> None:
    """Two simulated days, 12 accounts, ~1,000 pins in windows and at exact times: everything
    is published inside its window, per-account spacing and hourly caps hold on what the sandbox
    received, and a huge backlog on one account does not delay the others."""
    clock = FakeClock()
    sandbox = await start_sandbox(clock)
    daemon = make_daemon(clock=clock, base_url=sandbox.base_url, horizon_days=10)
    await daemon.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{daemon.port}")
    api = Api(channel, daemon)
    rng = random.Random(7)
    try:
        accounts = [f"acct{i}" for i in range(12)]
        for name in accounts:
            sandbox.add_user(name, access_token=f"pina_{name}", board_ids=[])
            sandbox.add_board(name, str(5000 + accounts.index(name)))
            await api.accounts.CreateAccount(
                account_pb2.CreateAccountRequest(
                    account_id=name,
                    account=account_pb2.Account(
                        access_token=f"pina_{name}",
                        pacing=account_pb2.Pacing(
                            min_spacing=duration_pb2.Duration(seconds=300), max_per_hour=6
                        ),
                    ),
                )
            )
        # A backlog account: 300 pins due at once with no pacing.
        sandbox.add_user("flood", access_token="pina_flood", board_ids=["9000"])
        await api.accounts.CreateAccount(
            account_pb2.CreateAccountRequest(
                account_id="flood",
                account=account_pb2.Account(
                    access_token="pina_flood", pacing=account_pb2.Pacing(writes_per_minute=0)
                ),
            )
        )
        start = clock.now() + timedelta(hours=1)
        windows: dict[str, tuple[Any, ...]] = {}
        jobs_by_account: dict[str, list[str]] = defaultdict(list)
        for name in accounts:
            board = str(5000 + accounts.index(name))
            for day in range(2):
                w_start = start + timedelta(days=day, hours=rng.randint(0, 6))
                batch = []
                for k in range(30):
                    req = api.pin_request(
                        at=w_start, title=f"{name}-{day}-{k}", account_id=name, board_id=board
                    )
                    req.delivery_window.FromTimedelta(timedelta(hours=10))
                    batch.append(req)
                resp = await api.jobs.BatchSchedulePins(
                    scheduler_pb2.BatchSchedulePinsRequest(requests=batch)
                )
                for j in resp.jobs:
                    windows[j.id] = (w_start, w_start + timedelta(hours=10))
                    jobs_by_account[name].append(j.id)
            at = start + timedelta(hours=30, minutes=accounts.index(name))
            exact = api.pin_request(at=at, title=f"{name}-exact", account_id=name, board_id=board)
            resp_exact = await api.jobs.SchedulePin(exact)
            windows[resp_exact.id] = (at, at)
        flood = await api.jobs.BatchSchedulePins(
            scheduler_pb2.BatchSchedulePinsRequest(
                requests=[
                    api.pin_request(
                        at=start, title=f"flood-{k}", account_id="flood", board_id="9000"
                    )
                    for k in range(300)
                ]
            )
        )
        total = len(windows) + len(flood.jobs)
        for _ in range(2 * 24 * 12 + 24):
            await clock.advance(300)
            # Bounded, generously: 300 jobs due at once under coverage on a loaded machine.
            await asyncio.wait_for(daemon.activity.idle.wait(), 60)
        watch = api.jobs.WatchJobs(
            scheduler_pb2.WatchJobsRequest(states=[J.STATE_DELIVERED], since_sequence=0)
        )
        delivered = 0
        while delivered < total:
            await asyncio.wait_for(watch.read(), 30)
            delivered += 1
        watch.cancel()
        pins = sandbox.pins()
        assert len(pins) == total
        by_account: dict[str, list[Any]] = defaultdict(list)
        for pin in pins:
            owner = (
                pin["title"].rsplit("-", 2)[0]
                if not pin["title"].endswith("exact")
                else pin["title"][:-6]
            )
            created = parse_time(pin["created_at"])
            assert created is not None
            by_account[owner].append(created)
        for name in accounts:
            times = by_account[name]
            assert len(times) == 61
            assert (
                violations(
                    times,
                    Pacing(min_spacing=timedelta(minutes=5) - timedelta(seconds=1), max_per_hour=6),
                )
                == []
            )
        for job_id, (lo, hi) in windows.items():
            got = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job_id))
            assert lo <= got.planned_at.ToDatetime().replace(tzinfo=lo.tzinfo) <= hi
            sent = got.delivered_time.ToDatetime().replace(tzinfo=lo.tzinfo)
            assert sent - got.planned_at.ToDatetime().replace(tzinfo=lo.tzinfo) < timedelta(
                minutes=10
            ), "paced late beyond its own account's pace"
    finally:
        await channel.close(None)
        await daemon.stop(grace_s=1.0)
        await sandbox.stop()
