"""The daemon as a subprocess: SIGTERM between scheduling and delivery, restart, exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from pinsched.v1 import account_pb2, account_pb2_grpc, job_pb2, scheduler_pb2
from tests.conftest import jobs_stub
from tests.e2e.procs import sandbox_pins, start_daemon, start_sandbox

J = job_pb2.Job


async def test_sigterm_before_delivery_then_restart_publishes_each_pin_once(
    tmp_path: Path,
) -> None:
    """Pins scheduled a few seconds ahead survive a SIGTERM and a restart, and each is published
    exactly once with the right fields."""
    sandbox, base = await start_sandbox()
    db = tmp_path / "e2e.db"
    daemon, port = await start_daemon(db, base)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            accounts = account_pb2_grpc.AccountServiceStub(channel)
            jobs = jobs_stub(channel)
            await accounts.CreateAccount(
                account_pb2.CreateAccountRequest(
                    account_id="acme",
                    account=account_pb2.Account(
                        access_token="pina_e2e_access", refresh_token="pinr_e2e_refresh"
                    ),
                )
            )
            due = datetime.now(UTC) + timedelta(seconds=3)
            scheduled = {}
            for i in range(5):
                req = scheduler_pb2.SchedulePinRequest(
                    request_id=f"e2e-{i}",
                    account_id="acme",
                    pin=job_pb2.Pin(
                        board_id="1001",
                        title=f"pin {i}",
                        description=f"desc {i}",
                        link=f"https://example.com/{i}",
                        alt_text=f"alt {i}",
                        media_source=job_pb2.MediaSource(
                            image_url=job_pb2.ImageUrl(url=f"https://example.com/{i}.jpg")
                        ),
                    ),
                )
                req.scheduled_at.FromDatetime(due + timedelta(milliseconds=100 * i))
                job = await jobs.SchedulePin(req)
                scheduled[job.id] = i
            watch = jobs.WatchJobs(scheduler_pb2.WatchJobsRequest(since_sequence=0))
            first = [await asyncio.wait_for(watch.read(), 5) for _ in range(5)]
            assert {e.to_state for e in first} == {J.STATE_PENDING}
        assert await daemon.terminate() == 0
        assert not await sandbox_pins(base), "published before it was due"

        daemon, port = await start_daemon(db, base)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            jobs = jobs_stub(channel)
            watch = jobs.WatchJobs(scheduler_pb2.WatchJobsRequest(since_sequence=0))
            delivered: set[str] = set()
            while delivered != set(scheduled):
                event = await asyncio.wait_for(watch.read(), 20)
                if event.to_state == J.STATE_DELIVERED:
                    delivered.add(event.job_id)
            watch.cancel()
            got = {
                job_id: await jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job_id))
                for job_id in scheduled
            }
        pins = await sandbox_pins(base)
        assert len(pins) == 5
        by_id = {p["id"]: p for p in pins}
        for job_id, i in scheduled.items():
            pin = by_id[got[job_id].pinterest_pin_id]
            assert (
                pin["title"],
                pin["description"],
                pin["link"],
                pin["alt_text"],
                pin["board_id"],
            ) == (f"pin {i}", f"desc {i}", f"https://example.com/{i}", f"alt {i}", "1001")
            assert got[job_id].attempts == 1
            states = [h.to_state for h in got[job_id].history]
            assert states == [J.STATE_PENDING, J.STATE_QUEUED, J.STATE_SUBMITTED, J.STATE_DELIVERED]
    finally:
        await daemon.terminate()
        await sandbox.terminate()
