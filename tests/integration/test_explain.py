"""ExplainJob on a fake clock against the real daemon and sandbox: one row per state and per
hold and pacing reason, each set up by driving the daemon into it."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from pinsched.app import Daemon
from pinsched.sandbox import Sandbox
from pinsched.sandbox.faults import FaultRule
from pinsched.testing import FakeClock
from pinsched.v1 import account_pb2, job_pb2, scheduler_pb2
from tests.conftest import ACCESS, REFRESH, Api, soon, start_sandbox

E = scheduler_pb2.JobExplanation
J = job_pb2.Job


@dataclass
class World:
    api: Api
    clock: FakeClock
    sandbox: Sandbox

    async def schedule(self, in_s: float, account_id: str = "acme", **pin: Any) -> str:
        job = await self.api.jobs.SchedulePin(
            self.api.pin_request(
                at=self.clock.now() + timedelta(seconds=in_s), account_id=account_id, **pin
            )
        )
        return job.id

    async def explain(self, job_id: str) -> scheduler_pb2.JobExplanation:
        return await self.api.jobs.ExplainJob(scheduler_pb2.ExplainJobRequest(job_id=job_id))


@asynccontextmanager
async def world(make_daemon: Callable[..., Daemon], **config: Any) -> AsyncIterator[World]:
    """A daemon (from conftest's `make_daemon`) and a sandbox on one FakeClock."""
    clock = FakeClock()
    sandbox = await start_sandbox(clock)
    settings: dict[str, Any] = {"http_listen": None, "shutdown_grace_s": 1.0, "token_keeper": False}
    api = await Api.open(make_daemon(clock, base_url=sandbox.base_url, **{**settings, **config}))
    try:
        yield World(api, clock, sandbox)
    finally:
        await api.close(grace_s=0.5)
        await sandbox.stop()


async def _two_due(w: World, **pacing: Any) -> str:
    """Two pins of one account due at once; the first is sent; answers the second."""
    await w.api.create_account(**pacing)
    first, second = await w.schedule(10, title="one"), await w.schedule(10.5, title="two")
    await w.clock.advance(10.5)
    await w.api.reach(first, J.STATE_DELIVERED)
    # The second is handed to its dispatcher; once the daemon is idle it waits to be paced.
    await w.api.daemon.activity.idle.wait()
    for _ in range(5):  # a wait started by a new task registers when that task first runs
        await asyncio.sleep(0)
    return second


async def waiting_for_time(w: World) -> str:
    await w.api.create_account()
    return await w.schedule(180)


async def paused(w: World) -> str:
    await w.api.create_account()
    await w.api.update_account(account_pb2.Account(id="acme", paused=True), "paused")
    return await w.schedule(60)


async def _auth_refused(w: World) -> tuple[str, str]:
    await w.api.create_account()
    failed, later = await w.schedule(10), await w.schedule(3600)
    w.sandbox.expire_access_token(ACCESS)
    w.sandbox.revoke_refresh_token(REFRESH)
    await w.clock.advance(10)
    await w.api.reach(failed, J.STATE_FAILED)
    return failed, later


async def needs_reauth(w: World) -> str:
    return (await _auth_refused(w))[1]


async def needs_user(w: World) -> str:
    return (await _auth_refused(w))[0]


async def account_held(w: World) -> str:
    await w.api.create_account()
    w.sandbox.add_fault(
        FaultRule(
            kind="status",
            status=403,
            code=29,
            times=1,
            message="Trial apps may only use the API sandbox",
        )
    )
    job = await w.schedule(10)
    await w.clock.advance(10)
    await w.api.until(job, lambda e: "held" in e.reason)
    return job


async def app_refused(w: World) -> str:
    await w.api.create_account()
    job = await w.schedule(10)
    w.sandbox.set_client("client-1", "another-secret")
    w.sandbox.expire_access_token(ACCESS)
    await w.clock.advance(10)
    await w.api.until(job, lambda e: "client credentials" in e.reason)
    return job


async def min_spacing(w: World) -> str:
    pacing = account_pb2.Pacing(
        min_spacing=duration_pb2.Duration(seconds=600), writes_per_minute=100
    )
    return await _two_due(w, **_fields(pacing))


def _fields(pacing: account_pb2.Pacing) -> dict[str, Any]:
    return {f.name: v for f, v in pacing.ListFields()}


async def hourly_cap(w: World) -> str:
    return await _two_due(w, max_per_hour=1, writes_per_minute=100)


async def daily_cap(w: World) -> str:
    return await _two_due(w, max_per_day=1, writes_per_minute=100)


async def write_bucket(w: World) -> str:
    return await _two_due(w, writes_per_minute=1)


async def app_bucket(w: World) -> str:
    return await _two_due(w, writes_per_minute=100)


async def _rate_limited(w: World) -> tuple[str, str]:
    await w.api.create_account()
    w.sandbox.add_fault(FaultRule(kind="rate_limit", retry_after_s=120, times=1))
    first, second = await w.schedule(10, title="one"), await w.schedule(10.5, title="two")
    await w.clock.advance(10.5)
    await w.api.reach(first, J.STATE_RETRYING)
    return first, second


async def cool_down(w: World) -> str:
    return (await _rate_limited(w))[1]


async def backoff(w: World) -> str:
    await w.api.create_account()
    w.sandbox.add_fault(FaultRule(kind="status", status=408, times=1))
    job = await w.schedule(10)
    await w.clock.advance(10)
    await w.api.reach(job, J.STATE_RETRYING)
    return job


async def in_flight(w: World) -> str:
    await w.api.create_account()
    w.sandbox.add_fault(FaultRule(kind="lost_response", mode="hang", hold_s=3, times=1))
    job = await w.schedule(10)
    await w.clock.advance(10)
    await w.api.reach(job, J.STATE_SUBMITTED)
    return job


async def outcome_unknown(w: World) -> str:
    await w.api.create_account()
    w.sandbox.add_fault(FaultRule(kind="status", status=500, times=1))
    job = await w.schedule(10)
    await w.clock.advance(10)
    await w.api.until(job, lambda e: e.reason.startswith("outcome unknown"))
    return job


async def _delivered(w: World) -> str:
    await w.api.create_account()
    job = await w.schedule(10)
    await w.clock.advance(10)
    await w.api.reach(job, J.STATE_DELIVERED)
    return job


async def deleting(w: World) -> str:
    job = await _delivered(w)
    w.sandbox.add_fault(FaultRule(kind="status", status=503, method="DELETE"))
    await w.api.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=job))
    return job


async def updating(w: World) -> str:
    job = await _delivered(w)
    w.sandbox.add_fault(FaultRule(kind="status", status=503, method="PATCH"))
    await w.api.jobs.UpdateJob(
        scheduler_pb2.UpdateJobRequest(
            job=job_pb2.Job(id=job, pin=job_pb2.Pin(title="New title")),
            update_mask=field_mask_pb2.FieldMask(paths=["pin.title"]),
        )
    )
    return job


async def delivered(w: World) -> str:
    return await _delivered(w)


async def cancelled(w: World) -> str:
    await w.api.create_account()
    job = await w.schedule(600)
    await w.api.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=job))
    return job


async def rejected(w: World) -> str:
    await w.api.create_account()
    w.sandbox.add_fault(
        FaultRule(kind="status", status=400, code=1, times=1, message="Invalid parameters.")
    )
    job = await w.schedule(10)
    await w.clock.advance(10)
    await w.api.reach(job, J.STATE_PERMANENTLY_FAILED)
    return job


Setup = Callable[[World], Awaitable[str]]
P, H, R = E.Phase, E.HoldReason, E.PacingRule

#: name, setup, daemon config, phase, hold reason, pacing rule, words of the summary, wait (s).
TABLE: list[tuple[Setup, dict[str, Any], int, int, int, str, float | None]] = [
    (waiting_for_time, {}, P.PHASE_WAITING_FOR_TIME, 0, 0, "in 3m", 180),
    (paused, {}, P.PHASE_HELD, H.HOLD_REASON_ACCOUNT_PAUSED, 0, "paused", None),
    (
        needs_reauth,
        {},
        P.PHASE_HELD,
        H.HOLD_REASON_ACCOUNT_NEEDS_REAUTH,
        0,
        "re-authorisation",
        None,
    ),
    (account_held, {}, P.PHASE_HELD, H.HOLD_REASON_ACCOUNT_HELD, 0, "Trial apps", None),
    (
        app_refused,
        {},
        P.PHASE_HELD,
        H.HOLD_REASON_APP_CREDENTIALS_REFUSED,
        0,
        "client credentials",
        None,
    ),
    (
        min_spacing,
        {},
        P.PHASE_WAITING_FOR_PACING,
        0,
        R.PACING_RULE_MIN_SPACING,
        "minimum spacing",
        600,
    ),
    (hourly_cap, {}, P.PHASE_WAITING_FOR_PACING, 0, R.PACING_RULE_HOURLY_CAP, "hourly cap", 3600),
    (daily_cap, {}, P.PHASE_WAITING_FOR_PACING, 0, R.PACING_RULE_DAILY_CAP, "daily cap", 86_400),
    (write_bucket, {}, P.PHASE_WAITING_FOR_PACING, 0, R.PACING_RULE_WRITE_BUCKET, "write rate", 60),
    (
        app_bucket,
        {"app_writes_per_minute": 1},
        P.PHASE_WAITING_FOR_PACING,
        0,
        R.PACING_RULE_APP_BUCKET,
        "app-wide",
        60,
    ),
    (cool_down, {}, P.PHASE_WAITING_FOR_PACING, 0, R.PACING_RULE_COOL_DOWN, "cool-down", 120),
    (backoff, {}, P.PHASE_BACKOFF, 0, 0, "Backing off after unavailable HTTP 408", None),
    (in_flight, {}, P.PHASE_SENDING, 0, 0, "waiting for Pinterest's answer", None),
    (outcome_unknown, {}, P.PHASE_OUTCOME_UNKNOWN, 0, 0, "looking for the pin on board 1001", 2),
    (deleting, {}, P.PHASE_REMOTE_CHANGE, 0, 0, "Deleting published pin", None),
    (updating, {}, P.PHASE_REMOTE_CHANGE, 0, 0, "Updating published pin", None),
    (needs_user, {}, P.PHASE_NEEDS_USER, 0, 0, "Needs you: auth", None),
    (delivered, {}, P.PHASE_FINISHED, 0, 0, "published as pin", None),
    (cancelled, {}, P.PHASE_FINISHED, 0, 0, "cancelled", None),
    (rejected, {}, P.PHASE_FINISHED, 0, 0, "failed for good: rejected HTTP 400 code 1", None),
]


@pytest.mark.parametrize(
    ("setup", "config", "phase", "hold", "rule", "words", "wait_s"),
    TABLE,
    ids=[row[0].__name__ for row in TABLE],
)
async def test_explain_table(
    make_daemon: Callable[..., Daemon],
    setup: Setup,
    config: dict[str, Any],
    phase: E.Phase.ValueType,
    hold: int,
    rule: int,
    words: str,
    wait_s: float | None,
) -> None:
    """Each state and each hold and pacing reason is explained with its phase, reason, wait
    and a sentence that says so."""
    async with world(make_daemon, **config) as w:
        job_id = await setup(w)
        x = await w.explain(job_id)
        assert (E.Phase.Name(x.phase), x.hold_reason, x.pacing_rule) == (
            E.Phase.Name(phase),
            hold,
            rule,
        ), x.summary
        assert words in x.summary, x.summary
        assert x.job_id == job_id
        assert x.explained_at.ToDatetime() == w.clock.now().replace(tzinfo=None)
        if wait_s is not None:
            assert x.wait.ToTimedelta() == pytest.approx(
                timedelta(seconds=wait_s), abs=timedelta(seconds=1)
            )
            assert x.HasField("next_action_at")
        if phase == P.PHASE_BACKOFF:
            assert x.attempts == 1
            assert x.last_error.http_status == 408
            assert x.retry_left.ToTimedelta() > timedelta(hours=23)
        if phase == P.PHASE_OUTCOME_UNKNOWN:
            assert x.board_id == "1001"
            assert x.HasField("looking_since")
        if phase in (P.PHASE_FINISHED, P.PHASE_NEEDS_USER):
            assert not x.HasField("next_action_at")
            assert not x.HasField("retry_until")


async def test_explain_bad_input(make_daemon: Callable[..., Daemon]) -> None:
    """An empty id is INVALID_ARGUMENT naming job_id; an unknown id is NOT_FOUND."""
    async with world(make_daemon) as w:
        with pytest.raises(grpc.aio.AioRpcError) as empty:
            await w.explain("")
        assert empty.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "job_id" in (empty.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await w.explain("nope")
        assert unknown.value.code() is grpc.StatusCode.NOT_FOUND


async def _cli(api: Api, *argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pinsched",
        *argv,
        "--target",
        f"127.0.0.1:{api.daemon.port}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_explain_over_http_and_the_command_line(api: Api) -> None:
    """GET /v1/jobs/{id}:explain and `pinsched explain [--json]` answer the same explanation;
    an unknown id is a 404 and exit code of NOT_FOUND, naming the job."""
    await api.create_account()
    job = await api.jobs.SchedulePin(api.pin_request(at=soon(3600)))
    base = f"http://127.0.0.1:{api.daemon.http_port}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/v1/jobs/{job.id}:explain") as resp:
            assert resp.status == 200
            body = await resp.json()
        async with session.get(f"{base}/v1/jobs/nope:explain") as resp:
            assert resp.status == 404
            assert "nope" in (await resp.json())["error"]["message"]
    assert body["phase"] == "PHASE_WAITING_FOR_TIME"
    assert body["summary"].startswith("Waiting for its planned time")
    code, out, err = await _cli(api, "explain", job.id)
    assert code == 0, err
    assert "Waiting for its planned time" in out
    assert "waiting_for_time" in out
    code, out, err = await _cli(api, "explain", job.id, "--json")
    assert code == 0, err
    assert json.loads(out)["phase"] == "PHASE_WAITING_FOR_TIME"
    code, out, err = await _cli(api, "explain", "nope")
    assert code != 0
    assert "NOT_FOUND" in err
