"""Short token lifetimes end to end: `pinsched sandbox` and `pinsched serve` as subprocesses on
real time, an account nobody touches, a pin due after both tokens would have lapsed.

At `PINSCHED_SOAK_SCALE=full` it is the issue's run (access 30 s, refresh 90 s, pin after 150 s);
the default `ci` size keeps the ratios at a tenth of the time (3 s, 9 s, pin after 15 s).
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import grpc
import pytest

from pinsched.v1 import account_pb2, account_pb2_grpc, job_pb2, scheduler_pb2
from tests.conftest import jobs_stub
from tests.e2e.procs import sandbox_pins, start_daemon, start_sandbox

J = job_pb2.Job
A = account_pb2.Account
#: (access token lifetime, refresh token lifetime, pin due after), seconds.
SIZES = {"ci": (3, 9, 15), "full": (30, 90, 150)}


async def token_grants(base_url: str) -> list[int]:
    """The statuses of the sandbox's answers to `POST /v5/oauth/token`."""
    root = base_url.rsplit("/v5", 1)[0]
    async with aiohttp.ClientSession() as session, session.get(f"{root}/_admin/requests") as resp:
        items = (await resp.json())["items"]
    return [int(r["status"]) for r in items if r["path"] == "/v5/oauth/token"]


@pytest.mark.slow
@pytest.mark.timeout(400)
async def test_a_pin_due_after_both_lifetimes_is_delivered_and_the_account_stays_active(
    tmp_path: Path,
) -> None:
    """With lifetimes far shorter than the wait, the keeper refreshes on its own; the pin is
    delivered once and the account is ACTIVE with a refresh token that has not lapsed."""
    access_ttl, refresh_ttl, due_s = SIZES.get(
        os.environ.get("PINSCHED_SOAK_SCALE", "ci"), SIZES["ci"]
    )
    sandbox, base = await start_sandbox(
        "--access-token-ttl", str(access_ttl), "--refresh-token-ttl", str(refresh_ttl)
    )
    daemon, port = await start_daemon(tmp_path / "tokens.db", base)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            accounts = account_pb2_grpc.AccountServiceStub(channel)
            jobs = jobs_stub(channel)
            await accounts.CreateAccount(
                account_pb2.CreateAccountRequest(
                    account_id="acme",
                    account=A(access_token="pina_e2e_access", refresh_token="pinr_e2e_refresh"),
                )
            )
            req = scheduler_pb2.SchedulePinRequest(
                request_id="lifetimes",
                account_id="acme",
                pin=job_pb2.Pin(
                    board_id="1001",
                    title="late",
                    media_source=job_pb2.MediaSource(
                        image_url=job_pb2.ImageUrl(url="https://example.com/late.jpg")
                    ),
                ),
            )
            req.scheduled_at.FromDatetime(datetime.now(UTC) + timedelta(seconds=due_s))
            job = await jobs.SchedulePin(req)
            watch = jobs.WatchJobs(
                scheduler_pb2.WatchJobsRequest(job_ids=[job.id], since_sequence=0)
            )
            async with asyncio.timeout(due_s + 60):
                async for event in watch:
                    if event.to_state in (
                        J.STATE_DELIVERED,
                        J.STATE_FAILED,
                        J.STATE_PERMANENTLY_FAILED,
                    ):
                        break
            got = await jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
            assert got.state == J.STATE_DELIVERED
            assert got.attempts == 1
            account = await accounts.GetAccount(account_pb2.GetAccountRequest(account_id="acme"))
            assert account.state == A.STATE_ACTIVE
            assert account.refresh_token_expiry.ToDatetime(tzinfo=UTC) > datetime.now(UTC)
        assert [p["title"] for p in await sandbox_pins(base)] == ["late"]
        grants = await token_grants(base)
        assert set(grants) == {200}
        assert len(grants) >= due_s // access_ttl  # about two per access lifetime
    finally:
        await daemon.terminate()
        await sandbox.terminate()
