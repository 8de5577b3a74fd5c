"""The check ahead of a pin's moment (`preflight_lead_time_s`) on a fake clock: a board deleted
after scheduling raises `job.at_risk` 15 minutes ahead (event and webhook), restoring it clears
it, and the job still goes at its planned time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from pinsched.app import Daemon
from pinsched.config import Config, ConfigError, load_config
from pinsched.testing import FakeClock
from pinsched.v1 import job_pb2, scheduler_pb2
from tests.conftest import Api, start_sandbox
from tests.integration.imageserver import serve_images
from tests.integration.test_webhooks import SECRET, hook, receiver


async def _next(watch: Any, done: Callable[[job_pb2.JobEvent], bool]) -> job_pb2.JobEvent:
    while True:
        event: job_pb2.JobEvent = await asyncio.wait_for(watch.read(), 10)
        if done(event):
            return event


async def test_a_deleted_board_raises_at_risk_ahead_and_restoring_it_clears(
    make_daemon: Callable[..., Daemon],
) -> None:
    """Board deleted after scheduling: `job.at_risk` 15 min ahead naming pin.board_id with
    Pinterest's answer, as an event and a webhook, the job untouched; board back: a
    `job.at_risk_cleared`; the pin is published at its planned time."""
    clock = FakeClock()
    sandbox = await start_sandbox(clock)
    async with serve_images() as images, receiver() as hooks:
        daemon = make_daemon(
            clock,
            base_url=sandbox.base_url,
            http_listen=None,
            token_keeper=False,
            webhooks=hook(hooks.url, SECRET, event_types=("job.at_risk", "job.at_risk_cleared")),
        )
        await daemon.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{daemon.port}")
        api = Api(channel, daemon)

        async def tick(seconds: float) -> None:
            """Move the clock, then let the daemon finish what came due (real I/O included)."""
            await clock.advance(seconds)
            await asyncio.wait_for(daemon.activity.idle.wait(), 10)

        try:
            await api.create_account()
            planned = clock.now() + timedelta(hours=1)
            req = api.pin_request(at=planned)
            req.pin.media_source.image_url.url = f"{images}/a.jpg"
            job = await api.jobs.SchedulePin(req)
            watch = api.jobs.WatchJobs(
                scheduler_pb2.WatchJobsRequest(job_ids=[job.id], since_sequence=0)
            )
            await tick(30 * 60)  # 30 min ahead: not looked at yet
            sandbox.remove_board("1001")
            await tick(14 * 60 + 59)  # 15 min 1 s ahead: still outside the lead
            await tick(61)  # the first pass inside the 15 minutes
            risk = await _next(watch, lambda e: e.reason.startswith("at risk: "))
            ahead = planned - risk.time.ToDatetime().replace(tzinfo=planned.tzinfo)
            assert timedelta(minutes=13) < ahead <= timedelta(minutes=15)
            assert (
                "pin.board_id: board 1001 is not one of the account's boards: Pinterest "
                "answered HTTP 404, code 40: Board not found." in risk.reason
            )
            assert risk.from_state == risk.to_state == job_pb2.Job.STATE_PENDING
            assert risk.job.version == job.version  # a note, not a change of the job
            why = await api.jobs.ExplainJob(scheduler_pb2.ExplainJobRequest(job_id=job.id))
            assert "Board not found" in why.at_risk
            assert "At risk: pin.board_id" in why.summary
            await hooks.wait_until(lambda: len(hooks.acked) == 1)
            assert hooks.acked[0].json["type"] == "job.at_risk"
            assert "Board not found" in hooks.acked[0].json["data"]["reason"]
            answer = await api.jobs.UpdateJob(
                scheduler_pb2.UpdateJobRequest(
                    job=job_pb2.Job(id=job.id, pin=job_pb2.Pin(title="Renamed")),
                    update_mask=field_mask_pb2.FieldMask(paths=["pin.title"]),
                )
            )
            assert [t.reason.split(":")[0] for t in answer.history] == [
                "scheduled",
                "at risk",
                "updated",
            ]  # the note is not counted as a version
            await tick(60)  # still missing: said once, not again
            sandbox.add_board("acme", "1001")
            await tick(60)
            cleared = await _next(watch, lambda e: e.reason.startswith("at risk"))
            assert cleared.reason == "at risk cleared: every check passes again"
            await hooks.wait_until(lambda: len(hooks.acked) == 2)
            assert [h.json["type"] for h in hooks.acked] == ["job.at_risk", "job.at_risk_cleared"]
            await clock.set(planned)
            delivered = await _next(watch, lambda e: e.to_state == job_pb2.Job.STATE_DELIVERED)
            assert delivered.job.late_by.ToTimedelta() < timedelta(seconds=1)
            stored = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
            assert [t.reason.split(":")[0] for t in stored.history] == [
                "scheduled",
                "at risk",
                "updated",
                "at risk cleared",
                "due",
                "attempt 1",
                "published",
            ]
            watch.cancel()
        finally:
            await channel.close(None)
            await daemon.stop(grace_s=0.5)
            await sandbox.stop()


def test_preflight_lead_time_is_checked_and_named(tmp_path: Path) -> None:
    """`preflight_lead_time_s` defaults to 900, 0 turns it off, and a negative or non-numeric
    value is refused naming the key."""
    assert Config().preflight_lead_time_s == 900
    env = {"PINSCHED_PREFLIGHT_LEAD_TIME_S": "0"}
    assert load_config(None, env, None).preflight_lead_time_s == 0
    key = "PINSCHED_PREFLIGHT_LEAD_TIME_S"
    for bad in ("-5", "soon", "inf"):
        with pytest.raises(ConfigError, match=key):
            load_config(None, {key: bad}, None)


async def test_at_risk_survives_a_restart(make_daemon: Callable[..., Daemon]) -> None:
    """A job found at risk before a restart is not announced again by the new process, and is
    cleared by it once the board is back (what it said is read from the job's history)."""
    clock = FakeClock()
    sandbox = await start_sandbox(clock)

    def make() -> Daemon:
        return make_daemon(clock, base_url=sandbox.base_url, http_listen=None, token_keeper=False)

    async def tick(daemon: Daemon, seconds: float) -> None:
        await clock.advance(seconds)
        await asyncio.wait_for(daemon.activity.idle.wait(), 10)

    async with serve_images() as images:
        daemon = make()
        api = await Api.open(daemon)
        try:
            await api.create_account()
            req = api.pin_request(at=clock.now() + timedelta(minutes=10))
            req.pin.media_source.image_url.url = f"{images}/a.jpg"
            job = await api.jobs.SchedulePin(req)
            sandbox.remove_board("1001")
            await tick(daemon, 60)
        finally:
            await api.close(grace_s=0.5)
        daemon = make()
        api = await Api.open(daemon)
        try:
            await tick(daemon, 60)  # the new process looks: still at risk, said already
            sandbox.add_board("acme", "1001")
            await tick(daemon, 60)
            stored = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
            assert [t.reason.split(":")[0] for t in stored.history] == [
                "scheduled",
                "at risk",
                "at risk cleared",
            ]
        finally:
            await api.close(grace_s=0.5)
            await sandbox.stop()
