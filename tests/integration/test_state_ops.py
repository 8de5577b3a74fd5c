"""Change of plans in every job state: UpdateJob (a pin field, the time, the media), CancelJob,
RetryJob and an account pause/resume, each checked through the API (resulting state, gRPC code,
message, version) and against what the sandbox holds once things settle (DESIGN §3, §6).

The daemon runs in-process on a real SQLite file and a real gRPC channel, on a FakeClock that it
shares with a loopback sandbox: due times, pacing waits and retry backoffs move only when a test
advances the clock. Latency faults (real time) hold a job in SUBMITTED or CANCELLING.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from pinsched.app import Daemon
from pinsched.core.answers import parse_time
from pinsched.sandbox import FaultRule, Sandbox
from pinsched.testing import FakeClock
from pinsched.v1 import account_pb2, job_pb2, scheduler_pb2
from tests.conftest import ACCESS, BOARD, REFRESH, Api, start_sandbox

J = job_pb2.Job
RU = job_pb2.RemoteUpdate
Code = grpc.StatusCode
MEDIA_A = "https://example.com/a.jpg"
MEDIA_B = "https://example.com/b.jpg"
TOO_SMALL = "https://example.com/sandbox-too-small.jpg"
DAY_S = 86_400.0
RETRY_S = 600.0  # backoff ceiling: a RETRYING job stays so unless the clock moves minutes on
HOLD_MS = 1000  # real-time latency that holds a request in flight (client timeout is 2 s)
SETTLED = frozenset(
    {J.STATE_DELIVERED, J.STATE_FAILED, J.STATE_PERMANENTLY_FAILED, J.STATE_CANCELLED}
)
NAMES = {v.number: v.name for v in J.State.DESCRIPTOR.values}


def name(state: int) -> str:
    return NAMES[state].removeprefix("STATE_")


# ------------------------------------------------------------------------------- the world


@dataclass
class World:
    """A daemon on a FakeClock, the sandbox sharing that clock, and the API client."""

    api: Api
    sandbox: Sandbox
    clock: FakeClock

    def at(self, seconds: float = 0.0) -> datetime:
        return self.clock.now() + timedelta(seconds=seconds)

    async def job(self, job_id: str) -> job_pb2.Job:
        return await self.api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job_id))

    async def schedule(
        self,
        *,
        after_s: float = 0.0,
        title: str = "Hello",
        account_id: str = "acme",
        url: str = MEDIA_A,
    ) -> job_pb2.Job:
        req = self.api.pin_request(
            at=self.at(after_s),
            title=title,
            account_id=account_id,
            board_id=BOARD if account_id == "acme" else "2001",
        )
        req.pin.media_source.image_url.url = url
        return await self.api.jobs.SchedulePin(req)

    async def cancel(self, job_id: str, version: int = 0) -> job_pb2.Job:
        return await self.api.jobs.CancelJob(
            scheduler_pb2.CancelJobRequest(job_id=job_id, expected_version=version)
        )

    async def retry(self, job_id: str) -> job_pb2.Job:
        return await self.api.jobs.RetryJob(scheduler_pb2.RetryJobRequest(job_id=job_id))

    async def update(
        self,
        job_id: str,
        paths: list[str],
        *,
        version: int = 0,
        pin: job_pb2.Pin | None = None,
        at: datetime | None = None,
    ) -> job_pb2.Job:
        job = J(id=job_id)
        if pin is not None:
            job.pin.CopyFrom(pin)
        if at is not None:
            job.scheduled_at.FromDatetime(at)
        return await self.api.jobs.UpdateJob(
            scheduler_pb2.UpdateJobRequest(
                job=job, update_mask=field_mask_pb2.FieldMask(paths=paths), expected_version=version
            )
        )

    async def pause(self, paused: bool, account_id: str = "acme") -> account_pb2.Account:
        return await self.api.update_account(
            account_pb2.Account(id=account_id, paused=paused), "paused"
        )

    async def settle(self, job_id: str, state: int, *, after: int) -> job_pb2.Job:
        """The job once it rests in *state*: now, if it is there with nothing left to do,
        else after its next move into *state* following sequence *after*."""
        got = await self.job(job_id)
        if got.state == state and state in SETTLED:
            return got
        return await self.api.reach(job_id, state, after=after)

    async def drive(
        self, job_id: str, state: int, *, step_s: float = 60.0, timeout_s: float = 10.0
    ) -> job_pb2.Job:
        """Advance the fake clock a step at a time until the job reaches *state* (for timers
        armed at a moment the test cannot see)."""
        waiter = asyncio.ensure_future(self.api.reach(job_id, state, timeout_s=timeout_s))
        try:
            while not waiter.done():
                await self.clock.advance(step_s)
                await asyncio.wait([waiter], timeout=0.05)
            return waiter.result()
        finally:
            waiter.cancel()

    async def applied(self, job_id: str, timeout_s: float = 10.0) -> job_pb2.Job:
        """Wait until the job's pending remote update was applied on Pinterest."""
        await self.api.until(job_id, lambda e: e.reason == "pin updated on Pinterest", timeout_s)
        return await self.job(job_id)

    async def marker(self) -> None:
        """Schedule a pin due now on account `other` and wait for it: everything due by now
        has been looked at by the scheduler when it lands."""
        job = await self.schedule(title="marker", account_id="other")
        await self.api.reach(job.id, J.STATE_DELIVERED)

    def titles(self) -> list[str]:
        return [str(p["title"]) for p in self.sandbox.pins() if p["title"] != "marker"]

    def posts(self) -> int:
        return sum(1 for r in self.sandbox.requests if r.method == "POST" and r.path == "/v5/pins")


@pytest.fixture
def finalize_after() -> Iterator[None]:
    """Finalize what the test's daemon left behind as soon as it is torn down: a task killed by
    a known bug would otherwise report itself from the garbage collector at an arbitrary later
    moment (on CPython 3.11 even in the middle of pytest parsing a source file)."""
    yield
    gc.collect()


@pytest.fixture
async def world(make_daemon: Callable[..., Daemon]) -> AsyncIterator[World]:
    clock = FakeClock()
    sandbox = await start_sandbox(clock)
    sandbox.add_user("other", access_token="pina_other", board_ids=["2001"])
    # No token keeper: auth failures are made by revoking the seeded refresh token.
    daemon = make_daemon(
        clock=clock,
        base_url=sandbox.base_url,
        token_keeper=False,
        retry_base_delay_s=RETRY_S,
        retry_max_delay_s=RETRY_S,
    )
    api = await Api.open(daemon)
    try:
        await api.create_account()
        await api.accounts.CreateAccount(
            account_pb2.CreateAccountRequest(
                account_id="other", account=account_pb2.Account(access_token="pina_other")
            )
        )
        yield World(api, sandbox, clock)
    finally:
        await api.close()
        await sandbox.stop()


async def refused(call: Awaitable[Any], code: grpc.StatusCode) -> str:
    """Await *call*, expect it to fail with *code*, return the error message."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == code, err.value.details()
    return err.value.details() or ""


# ------------------------------------------------------------------- reaching each state


async def reach_pending(w: World) -> job_pb2.Job:
    return await w.schedule(after_s=3600)


async def reach_queued(w: World) -> job_pb2.Job:
    """A second pin waits QUEUED in the dispatcher behind an hour of minimum spacing."""
    await min_spacing_hour(w)
    first = await w.schedule(title="first")
    await w.api.reach(first.id, J.STATE_DELIVERED)
    second = await w.schedule()
    return await w.api.reach(second.id, J.STATE_QUEUED)


async def reach_submitted(w: World) -> job_pb2.Job:
    w.sandbox.add_fault(FaultRule(kind="latency", latency_ms=HOLD_MS, times=1))
    job = await w.schedule()
    return await w.api.reach(job.id, J.STATE_SUBMITTED)


async def reach_delivered(w: World) -> job_pb2.Job:
    job = await w.schedule()
    return await w.api.reach(job.id, J.STATE_DELIVERED)


async def reach_retrying(w: World) -> job_pb2.Job:
    """A 503 leaves the job RETRYING (once the lost request can no longer land, a second or
    two of clock); its backoff ends only when the fake clock moves minutes on."""
    w.sandbox.add_fault(FaultRule(kind="status", status=503, times=1))
    job = await w.schedule()
    return await w.drive(job.id, J.STATE_RETRYING, step_s=0.5)


async def reach_failed(w: World) -> job_pb2.Job:
    """A 401 whose token refresh is refused leaves the job FAILED and the account
    NEEDS_REAUTH."""
    w.sandbox.revoke_refresh_token(REFRESH)
    w.sandbox.add_fault(FaultRule(kind="auth", times=1))
    job = await w.schedule()
    return await w.api.reach(job.id, J.STATE_FAILED)


async def reach_permanently_failed(w: World) -> job_pb2.Job:
    job = await w.schedule(url=TOO_SMALL)
    return await w.api.reach(job.id, J.STATE_PERMANENTLY_FAILED)


async def reach_cancelling(w: World) -> job_pb2.Job:
    """A delivered pin whose DELETE is slow keeps the job CANCELLING for a while."""
    job = await reach_delivered(w)
    w.sandbox.add_fault(FaultRule(kind="latency", method="DELETE", latency_ms=HOLD_MS, times=1))
    cancelling = await w.cancel(job.id)
    assert cancelling.state == J.STATE_CANCELLING
    return cancelling


async def reach_cancelled(w: World) -> job_pb2.Job:
    job = await w.schedule(after_s=3600)
    return await w.cancel(job.id)


REACH: dict[int, Callable[[World], Awaitable[job_pb2.Job]]] = {
    J.STATE_PENDING: reach_pending,
    J.STATE_QUEUED: reach_queued,
    J.STATE_SUBMITTED: reach_submitted,
    J.STATE_DELIVERED: reach_delivered,
    J.STATE_RETRYING: reach_retrying,
    J.STATE_FAILED: reach_failed,
    J.STATE_PERMANENTLY_FAILED: reach_permanently_failed,
    J.STATE_CANCELLING: reach_cancelling,
    J.STATE_CANCELLED: reach_cancelled,
}


# ----------------------------------------------------------------------- the operations

NEW_TIME_S = DAY_S  # "time" moves the job to one day after the clock's start


async def op_pin(w: World, job: job_pb2.Job) -> job_pb2.Job:
    return await w.update(job.id, ["pin.title"], pin=job_pb2.Pin(title="changed"))


async def op_time(w: World, job: job_pb2.Job) -> job_pb2.Job:
    return await w.update(job.id, ["scheduled_at"], at=w.at(NEW_TIME_S))


async def op_media(w: World, job: job_pb2.Job) -> job_pb2.Job:
    return await w.update(
        job.id,
        ["pin.media_source"],
        pin=job_pb2.Pin(media_source=job_pb2.MediaSource(image_url=job_pb2.ImageUrl(url=MEDIA_B))),
    )


async def op_cancel(w: World, job: job_pb2.Job) -> job_pb2.Job:
    return await w.cancel(job.id)


async def op_retry(w: World, job: job_pb2.Job) -> job_pb2.Job:
    return await w.retry(job.id)


OPS: dict[str, Callable[[World, job_pb2.Job], Awaitable[job_pb2.Job]]] = {
    "pin": op_pin,
    "time": op_time,
    "media": op_media,
    "cancel": op_cancel,
    "retry": op_retry,
}


@dataclass(frozen=True)
class Cell:
    """What one operation does in one state.

    `now`: the state the call returns (None: it fails with `code`); `says`: a phrase of the
    error message, or of the reason of the history entry the call added; `bump`: versions the
    call adds; `then`: the state the job settles in once the clock has moved two days on;
    `pins`: the titles live in the sandbox at the end; `media`: the image URL the live pin was
    created from.
    """

    now: int | None
    then: int
    pins: tuple[str, ...]
    code: grpc.StatusCode | None = None
    says: str = ""
    bump: int = 1
    media: str = MEDIA_A


P, Q, S_, D = J.STATE_PENDING, J.STATE_QUEUED, J.STATE_SUBMITTED, J.STATE_DELIVERED
R, F, PF = J.STATE_RETRYING, J.STATE_FAILED, J.STATE_PERMANENTLY_FAILED
CG, CD = J.STATE_CANCELLING, J.STATE_CANCELLED
FP = Code.FAILED_PRECONDITION
CONFIRMING = "outcome of its submission is being confirmed"
PUBLISHED = "cannot change on a published pin; cancel the job"
NO_UPDATE = "it can no longer be updated"
NO_RETRY = "only FAILED or PERMANENTLY_FAILED jobs can be retried"

CELLS: dict[tuple[int, str], Cell] = {
    # before submission: applied atomically; a moved time re-plans (QUEUED/RETRYING → PENDING)
    (P, "pin"): Cell(P, D, ("changed",), says="updated: pin.title"),
    (P, "time"): Cell(P, D, ("Hello",), says="updated: scheduled_at"),
    (P, "media"): Cell(P, D, ("Hello",), says="updated: pin.media_source", media=MEDIA_B),
    (P, "cancel"): Cell(CD, CD, (), says="cancelled before submission"),
    (P, "retry"): Cell(None, D, ("Hello",), code=FP, says=NO_RETRY),
    (Q, "pin"): Cell(Q, D, ("first", "changed"), says="updated: pin.title"),
    (Q, "time"): Cell(P, D, ("first", "Hello"), says="re-planned"),
    (Q, "media"): Cell(Q, D, ("first", "Hello"), says="updated: pin.media_source", media=MEDIA_B),
    (Q, "cancel"): Cell(CD, CD, ("first",), says="cancelled before submission"),
    (Q, "retry"): Cell(None, D, ("first", "Hello"), code=FP, says=NO_RETRY),
    (R, "pin"): Cell(R, D, ("changed",), says="updated: pin.title"),
    (R, "time"): Cell(P, D, ("Hello",), says="re-planned"),
    (R, "media"): Cell(R, D, ("Hello",), says="updated: pin.media_source", media=MEDIA_B),
    (R, "cancel"): Cell(CD, CD, (), says="cancelled before submission"),
    (R, "retry"): Cell(None, D, ("Hello",), code=FP, says=NO_RETRY),
    # FAILED needs the user: updates apply but nothing is sent until RetryJob/re-authorisation
    (F, "pin"): Cell(F, F, (), says="updated: pin.title"),
    (F, "time"): Cell(F, F, (), says="updated: scheduled_at"),
    (F, "media"): Cell(F, F, (), says="updated: pin.media_source"),
    (F, "cancel"): Cell(CD, CD, (), says="cancelled before submission"),
    (F, "retry"): Cell(P, P, (), says="retry requested"),  # held: the account NEEDS_REAUTH
    # in flight: updates refused, a cancel is recorded and carried out on the outcome
    (S_, "pin"): Cell(None, D, ("Hello",), code=FP, says=CONFIRMING),
    (S_, "time"): Cell(None, D, ("Hello",), code=FP, says=CONFIRMING),
    (S_, "media"): Cell(None, D, ("Hello",), code=FP, says=CONFIRMING),
    (S_, "cancel"): Cell(S_, CD, (), says="carried out once the outcome"),
    (S_, "retry"): Cell(None, D, ("Hello",), code=FP, says=NO_RETRY),
    # published: mutable fields are PATCHed, media/time refused, cancel deletes the pin
    (D, "pin"): Cell(D, D, ("changed",), says="applying on Pinterest"),
    (D, "time"): Cell(None, D, ("Hello",), code=FP, says=PUBLISHED),
    (D, "media"): Cell(None, D, ("Hello",), code=FP, says=PUBLISHED),
    (D, "cancel"): Cell(CG, CD, (), says="deleting the pin"),
    (D, "retry"): Cell(None, D, ("Hello",), code=FP, says=NO_RETRY),
    # settled or on the way out
    (PF, "pin"): Cell(None, PF, (), code=FP, says=NO_UPDATE),
    (PF, "time"): Cell(None, PF, (), code=FP, says=NO_UPDATE),
    (PF, "media"): Cell(None, PF, (), code=FP, says=NO_UPDATE),
    (PF, "cancel"): Cell(None, PF, (), code=FP, says="nothing to cancel"),
    (PF, "retry"): Cell(P, PF, (), says="retry requested"),  # same image: rejected again
    (CG, "pin"): Cell(None, CD, (), code=FP, says=NO_UPDATE),
    (CG, "time"): Cell(None, CD, (), code=FP, says=NO_UPDATE),
    (CG, "media"): Cell(None, CD, (), code=FP, says=NO_UPDATE),
    (CG, "cancel"): Cell(CG, CD, (), bump=0),
    (CG, "retry"): Cell(None, CD, (), code=FP, says=NO_RETRY),
    (CD, "pin"): Cell(None, CD, (), code=FP, says=NO_UPDATE),
    (CD, "time"): Cell(None, CD, (), code=FP, says=NO_UPDATE),
    (CD, "media"): Cell(None, CD, (), code=FP, says=NO_UPDATE),
    (CD, "cancel"): Cell(CD, CD, (), bump=0),
    (CD, "retry"): Cell(None, CD, (), code=FP, says=NO_RETRY),
}


@pytest.mark.parametrize(("state", "op"), list(CELLS), ids=[f"{name(s)}-{o}" for s, o in CELLS])
async def test_state_op_cell(world: World, state: int, op: str) -> None:
    """One operation on a job in one state gives the table's result, the job settles in the
    table's state, and the sandbox holds exactly the table's pins."""
    w = world
    cell = CELLS[state, op]
    before = await w.job((await REACH[state](w)).id)
    assert before.state == state
    mark = before.history[-1].sequence
    if cell.code is not None:
        message = await refused(OPS[op](w, before), cell.code)
        assert cell.says in message
        assert name(state) in message or op == "retry"
        if state != J.STATE_CANCELLING:  # a slow DELETE may finish at any moment
            assert (await w.job(before.id)).version == before.version
    else:
        got = await OPS[op](w, before)
        assert got.state == cell.now
        assert got.version == before.version + cell.bump
        assert len(got.history) == got.version
        if cell.bump:
            assert cell.says in got.history[-1].reason
        if op == "retry":
            assert got.attempts == 0
        if state == J.STATE_SUBMITTED:
            assert got.cancel_requested
        mark = got.history[-1].sequence
    # Let everything timed happen: due times, pacing, backoffs, slow requests.
    await w.clock.advance(2 * DAY_S)
    if cell.then == J.STATE_PENDING:  # held: give the scheduler a chance, then look again
        await w.marker()
        final = await w.job(before.id)
    else:
        final = await w.settle(before.id, cell.then, after=mark)
    if state == J.STATE_DELIVERED and op == "pin":
        final = await w.applied(before.id)
        assert final.remote_update.state == RU.STATE_APPLIED
    assert final.state == cell.then
    assert w.titles() == list(cell.pins)
    live = {p["id"]: p for p in w.sandbox.pins()}
    if cell.then == J.STATE_DELIVERED:
        pin = live[final.pinterest_pin_id]
        assert pin["title"] == final.pin.title
        assert w.sandbox.state.pins[final.pinterest_pin_id].sources == (cell.media,)
        if op == "time" and cell.now is not None:  # sent at the new time, not the old one
            created = parse_time(str(pin["created_at"]))
            assert created is not None
            assert created >= w.at(NEW_TIME_S - 2 * DAY_S).replace(microsecond=0)
    else:
        assert final.pinterest_pin_id not in live


# ------------------------------------------------------------------------ pause / resume


async def test_pause_holds_a_pending_job_until_resume(world: World) -> None:
    """A PENDING job of a paused account is held (still PENDING, nothing sent) when due and is
    delivered after resume."""
    w = world
    job = await w.schedule(after_s=60)
    paused = await w.pause(True)
    assert paused.state == account_pb2.Account.STATE_PAUSED
    await w.clock.advance(120)
    await w.marker()
    held = await w.job(job.id)
    assert (held.state, held.attempts, held.version) == (J.STATE_PENDING, 0, job.version)
    assert w.titles() == []
    await w.pause(False)
    done = await w.api.reach(job.id, J.STATE_DELIVERED)
    assert done.attempts == 1
    assert w.titles() == ["Hello"]


async def test_pause_sends_a_queued_job_back_to_pending_until_resume(world: World) -> None:
    """A QUEUED job of an account paused while it waits for its pace goes back to PENDING
    (held, not failed) instead of being sent, and is delivered after resume."""
    w = world
    job = await reach_queued(w)
    await w.pause(True)
    await w.clock.advance(3600)
    events = await w.api.until(
        job.id, lambda e: e.to_state == J.STATE_PENDING and e.from_state == J.STATE_QUEUED
    )
    assert "held" in events[-1].reason
    assert "PAUSED" in events[-1].reason
    assert w.titles() == ["first"]
    await w.pause(False)
    done = await w.api.reach(job.id, J.STATE_DELIVERED)
    assert done.attempts == 1
    assert w.titles() == ["first", "Hello"]


async def test_pause_does_not_interrupt_a_submitted_job(world: World) -> None:
    """Pausing while a request is in flight lets its outcome be recorded: the job is
    DELIVERED once."""
    w = world
    job = await reach_submitted(w)
    await w.pause(True)
    done = await w.api.reach(job.id, J.STATE_DELIVERED)
    assert done.attempts == 1
    assert w.titles() == ["Hello"]


async def test_pause_holds_a_retrying_job_until_resume(world: World) -> None:
    """A RETRYING job of a paused account is not attempted when its backoff ends; it stays
    RETRYING and is delivered after resume."""
    w = world
    job = await reach_retrying(w)
    posts = w.posts()
    await w.pause(True)
    await w.clock.advance(2 * RETRY_S)
    await w.marker()
    held = await w.job(job.id)
    assert held.state == J.STATE_RETRYING
    assert w.posts() == posts + 1  # only the marker's
    await w.pause(False)
    done = await w.api.reach(job.id, J.STATE_DELIVERED)
    assert done.attempts == 2
    assert w.titles() == ["Hello"]


async def test_pause_leaves_a_delivered_pin_and_defers_its_patch(world: World) -> None:
    """Pausing leaves a DELIVERED pin live; a title change made while paused is PATCHed only
    after resume."""
    w = world
    job = await reach_delivered(w)
    await w.pause(True)
    got = await op_pin(w, job)
    assert got.remote_update.state == RU.STATE_PENDING
    await w.clock.advance(10)
    await w.marker()
    assert not [r for r in w.sandbox.requests if r.method == "PATCH"]
    assert w.titles() == ["Hello"]
    await w.pause(False)
    await w.clock.advance(2 * RETRY_S)  # the deferred PATCH is looked at again on a timer
    done = await w.applied(job.id)
    assert done.state == J.STATE_DELIVERED
    assert w.titles() == ["changed"]


async def test_pause_leaves_a_failed_job_failed(world: World) -> None:
    """Pausing and resuming an account changes nothing for its FAILED job (it waits for the
    user)."""
    w = world
    job = await reach_failed(w)
    await w.pause(True)
    await w.pause(False)
    await w.clock.advance(60)
    await w.marker()
    got = await w.job(job.id)
    assert (got.state, got.version) == (J.STATE_FAILED, job.version)
    assert w.titles() == []


async def test_queued_job_updated_then_paused_is_held_and_sent_after_resume(world: World) -> None:
    """A QUEUED job whose title changes while it waits for its pace, and whose account is then
    paused, goes back to PENDING (held) when its turn comes and is sent after resume with the
    new title."""
    w = world
    job = await reach_queued(w)
    await op_pin(w, job)
    await w.pause(True)
    await w.clock.advance(3600)
    await w.api.until(
        job.id,
        lambda e: e.from_state == J.STATE_QUEUED and e.to_state == J.STATE_PENDING,
        timeout_s=3,
    )
    await w.pause(False)
    await w.api.reach(job.id, J.STATE_DELIVERED)
    assert w.titles() == ["first", "changed"]


async def test_jobs_held_by_a_pause_go_out_in_planned_order(world: World) -> None:
    """Jobs held while their account was paused are delivered after resume in the order of
    their planned times, not the order they were created in."""
    w = world
    await w.pause(True)
    late = await w.schedule(after_s=30, title="planned second")
    await w.clock.advance(1)  # created later: a greater (time-ordered) id
    early = await w.schedule(after_s=10, title="planned first")
    await w.clock.advance(60)
    await w.marker()
    await w.pause(False)
    await w.api.reach(late.id, J.STATE_DELIVERED)
    await w.api.reach(early.id, J.STATE_DELIVERED)
    assert w.titles() == ["planned first", "planned second"]


# ------------------------------------------------------------------ versions and repeats


async def test_stale_expected_version_is_aborted_with_the_current_version(world: World) -> None:
    """UpdateJob and CancelJob with a stale expected_version are ABORTED, name the current
    version and change nothing; the right version succeeds."""
    w = world
    job = await w.schedule(after_s=3600)
    moved = await op_pin(w, job)
    assert moved.version == job.version + 1
    for call in (
        w.update(job.id, ["pin.title"], version=job.version, pin=job_pb2.Pin(title="stale")),
        w.cancel(job.id, version=job.version),
    ):
        message = await refused(call, Code.ABORTED)
        assert f"version {moved.version}" in message
    got = await w.job(job.id)
    assert (got.state, got.version, got.pin.title) == (J.STATE_PENDING, moved.version, "changed")
    ok = await w.cancel(job.id, version=moved.version)
    assert ok.state == J.STATE_CANCELLED


@pytest.mark.parametrize("state", [J.STATE_PENDING, J.STATE_SUBMITTED, J.STATE_DELIVERED], ids=name)
async def test_cancelling_twice_is_harmless(world: World, state: int) -> None:
    """A second CancelJob returns the job as the first left it (same version, no new event),
    and the end is one CANCELLED job with no pin."""
    w = world
    job = await REACH[state](w)
    first = await w.cancel(job.id)
    second = await w.cancel(job.id)
    if state == J.STATE_DELIVERED and second.state == J.STATE_CANCELLED:
        assert first.version + 1 == second.version  # the DELETE finished in between
    else:
        assert (second.state, second.version) == (first.state, first.version)
    await w.api.reach(job.id, J.STATE_CANCELLED)
    done = await w.job(job.id)
    assert [h.to_state for h in done.history].count(J.STATE_CANCELLED) == 1
    assert len(done.history) == done.version
    assert w.titles() == []


# --------------------------------------------------------------------- delete outcomes


async def test_cancel_of_a_pin_already_gone_ends_cancelled(world: World) -> None:
    """A delivered pin deleted on Pinterest by someone else (DELETE answers 404) is simply
    CANCELLED."""
    w = world
    job = await reach_delivered(w)
    w.sandbox.state.delete_pin("acme", job.pinterest_pin_id, w.clock.now())
    await w.cancel(job.id)
    done = await w.api.reach(job.id, J.STATE_CANCELLED)
    assert [r.status for r in w.sandbox.requests if r.method == "DELETE"] == [404]
    assert done.history[-1].from_state == J.STATE_CANCELLING
    assert w.titles() == []


async def test_cancel_retries_a_delete_that_failed_transiently(world: World) -> None:
    """A DELETE answered 503 is retried after a backoff until the pin is gone."""
    w = world
    job = await reach_delivered(w)
    w.sandbox.add_fault(FaultRule(kind="status", method="DELETE", status=503, times=1))
    await w.cancel(job.id)
    await w.drive(job.id, J.STATE_CANCELLED)
    assert [r.status for r in w.sandbox.requests if r.method == "DELETE"] == [503, 204]
    assert w.titles() == []


async def test_cancel_refused_by_pinterest_says_so_and_keeps_the_pin(world: World) -> None:
    """A DELETE Pinterest refuses for good (403) returns the job to DELIVERED with the error;
    the pin stays live and the job can be cancelled again."""
    w = world
    job = await reach_delivered(w)
    w.sandbox.add_fault(FaultRule(kind="status", method="DELETE", status=403, times=1))
    await w.cancel(job.id)
    events = await w.api.until(job.id, lambda e: e.from_state == J.STATE_CANCELLING)
    assert events[-1].to_state == J.STATE_DELIVERED
    assert "delete refused" in events[-1].reason
    got = await w.job(job.id)
    assert got.last_error.http_status == 403
    assert w.titles() == ["Hello"]
    await w.cancel(job.id)
    await w.api.reach(job.id, J.STATE_CANCELLED)
    assert w.titles() == []


async def test_cancel_recorded_in_flight_ends_cancelled_when_no_pin_lands(world: World) -> None:
    """A cancel recorded while SUBMITTED whose request turns out to have created nothing (a 503,
    then no pin on the board) ends CANCELLED without another attempt."""
    w = world
    w.sandbox.add_fault(FaultRule(kind="latency", latency_ms=HOLD_MS, times=1))
    w.sandbox.add_fault(FaultRule(kind="status", status=503, times=1))
    job = await w.schedule()
    await w.api.reach(job.id, J.STATE_SUBMITTED)
    recorded = await w.cancel(job.id)
    assert (recorded.state, recorded.cancel_requested) == (J.STATE_SUBMITTED, True)
    done = await w.drive(job.id, J.STATE_CANCELLED, step_s=1)
    assert done.history[-1].from_state == J.STATE_SUBMITTED
    assert w.posts() == 1
    assert w.titles() == []


async def test_patch_refused_by_pinterest_says_so_and_leaves_the_pin(world: World) -> None:
    """A title change Pinterest refuses (400) ends with remote_update FAILED and the error; the
    live pin keeps its old title and the job stays DELIVERED."""
    w = world
    job = await reach_delivered(w)
    w.sandbox.add_fault(FaultRule(kind="status", method="PATCH", status=400, times=1))
    await op_pin(w, job)
    events = await w.api.until(job.id, lambda e: "update refused by Pinterest" in e.reason)
    assert events[-1].to_state == J.STATE_DELIVERED
    got = await w.job(job.id)
    assert got.remote_update.state == RU.STATE_FAILED
    assert got.remote_update.error.http_status == 400
    assert w.titles() == ["Hello"]


# ------------------------------------------------------------------------------- RetryJob


async def test_retry_gives_an_exhausted_job_a_fresh_attempt_budget(
    make_daemon: Callable[..., Daemon],
) -> None:
    """A job PERMANENTLY_FAILED after exhausting its attempts is sent again by RetryJob with
    attempts reset to zero, and lands once."""
    clock = FakeClock()
    sandbox = await start_sandbox(clock)
    daemon = make_daemon(clock=clock, base_url=sandbox.base_url, max_attempts=2)
    await daemon.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{daemon.port}")
    w = World(Api(channel, daemon), sandbox, clock)
    try:
        await w.api.create_account()
        # A transient refusal (a 5xx would first be reconciled for the request timeout).
        sandbox.add_fault(
            FaultRule(
                kind="status",
                status=400,
                code=1,
                times=2,
                message="Sorry we could not fetch the image.",
            )
        )
        job = await w.schedule()
        await w.api.reach(job.id, J.STATE_RETRYING)
        await clock.advance(3600)
        failed = await w.api.reach(job.id, J.STATE_PERMANENTLY_FAILED)
        assert failed.attempts == 2
        assert failed.last_error.category == job_pb2.JobError.CATEGORY_EXHAUSTED
        again = await w.retry(job.id)
        assert (again.state, again.attempts) == (J.STATE_PENDING, 0)
        done = await w.api.reach(job.id, J.STATE_DELIVERED)
        assert done.attempts == 1
        assert w.titles() == ["Hello"]
    finally:
        await channel.close(None)
        await daemon.stop(grace_s=1.0)
        await sandbox.stop()


async def test_retry_of_an_auth_failed_job_waits_for_new_credentials(world: World) -> None:
    """A FAILED (auth) job retried while the account NEEDS_REAUTH is held PENDING, and is
    delivered once UpdateAccount brings new credentials."""
    w = world
    job = await reach_failed(w)
    account = await w.api.accounts.GetAccount(account_pb2.GetAccountRequest(account_id="acme"))
    assert account.state == account_pb2.Account.STATE_NEEDS_REAUTH
    retried = await w.retry(job.id)
    assert (retried.state, retried.attempts) == (J.STATE_PENDING, 0)
    await w.marker()
    assert (await w.job(job.id)).state == J.STATE_PENDING
    assert w.titles() == []
    await w.api.update_account(account_pb2.Account(id="acme", access_token=ACCESS), "access_token")
    done = await w.api.reach(job.id, J.STATE_DELIVERED)
    assert done.attempts == 1
    assert w.titles() == ["Hello"]


async def test_new_credentials_requeue_auth_failed_jobs(world: World) -> None:
    """Without RetryJob, new credentials send auth-FAILED jobs back to PENDING and they are
    delivered."""
    w = world
    job = await reach_failed(w)
    await w.api.update_account(account_pb2.Account(id="acme", access_token=ACCESS), "access_token")
    done = await w.api.reach(job.id, J.STATE_DELIVERED)
    assert "re-authorised" in " ".join(h.reason for h in done.history)
    assert w.titles() == ["Hello"]


# -------------------------------------------------------------------------- DeleteAccount


async def test_delete_account_refuses_active_jobs_unless_forced(world: World) -> None:
    """DeleteAccount is FAILED_PRECONDITION while the account has a PENDING job; with force it
    cancels the job (never sent) and deletes the account and its jobs."""
    w = world
    job = await w.schedule(after_s=60)
    message = await refused(
        w.api.accounts.DeleteAccount(account_pb2.DeleteAccountRequest(account_id="acme")), FP
    )
    assert "force" in message
    assert (await w.job(job.id)).state == J.STATE_PENDING
    await w.api.accounts.DeleteAccount(
        account_pb2.DeleteAccountRequest(account_id="acme", force=True)
    )
    await refused(w.job(job.id), Code.NOT_FOUND)
    await w.clock.advance(120)
    await w.marker()
    assert w.titles() == []


async def test_forced_delete_waits_for_a_submitted_job(world: World) -> None:
    """Even with force, an account whose job is SUBMITTED is not deleted (its outcome is being
    confirmed); once the pin landed the forced delete succeeds and leaves the published pin."""
    w = world
    job = await reach_submitted(w)
    await refused(
        w.api.accounts.DeleteAccount(
            account_pb2.DeleteAccountRequest(account_id="acme", force=True)
        ),
        FP,
    )
    await w.api.reach(job.id, J.STATE_DELIVERED)
    await w.api.accounts.DeleteAccount(
        account_pb2.DeleteAccountRequest(account_id="acme", force=True)
    )
    assert w.titles() == ["Hello"]


async def test_account_recreated_after_delete_publishes_again(
    finalize_after: None, world: World
) -> None:
    """Deleting an account while its delivered pin's PATCH waits for a retry, then creating
    the account again, leaves a dispatcher that publishes the new account's pins."""
    w = world
    job = await reach_delivered(w)
    w.sandbox.add_fault(FaultRule(kind="status", method="PATCH", status=503))
    await op_pin(w, job)
    await w.api.until(job.id, lambda e: "will be retried" in e.reason)
    await w.api.accounts.DeleteAccount(account_pb2.DeleteAccountRequest(account_id="acme"))
    await w.clock.advance(3600)  # the PATCH retry timer fires for a job that is gone
    await w.api.create_account()
    again = await w.schedule(title="after re-create")
    await w.api.reach(again.id, J.STATE_DELIVERED, timeout_s=5)


# ---------------------------------------------------------------- pacing and upkeep work


async def min_spacing_hour(w: World) -> None:
    await w.api.update_account(
        account_pb2.Account(
            id="acme", pacing=account_pb2.Pacing(min_spacing=duration_pb2.Duration(seconds=3600))
        ),
        "pacing.min_spacing",
    )


async def test_patch_of_a_delivered_pin_does_not_wait_for_pin_spacing(world: World) -> None:
    """With an hour of minimum spacing, a title change on a pin just delivered is PATCHed at
    once: spacing is between new pins, not between writes."""
    w = world
    await min_spacing_hour(w)
    job = await reach_delivered(w)
    await op_pin(w, job)
    done = await w.applied(job.id, timeout_s=3)
    assert done.remote_update.state == RU.STATE_APPLIED
    assert w.titles() == ["changed"]


@pytest.mark.xfail(
    strict=True,
    reason="bug: AccountDispatcher runs deletes, PATCHes and "
    "reconciles in the same serial loop that sleeps out the next pin's pacing",
)
async def test_cancel_of_a_delivered_pin_does_not_wait_behind_a_paced_pin(world: World) -> None:
    """With an hour of minimum spacing and a second pin waiting QUEUED for it, cancelling the
    first (delivered) pin deletes it at once; the second keeps waiting for its turn."""
    w = world
    second = await reach_queued(w)
    delivered = await w.api.jobs.ListJobs(scheduler_pb2.ListJobsRequest(states=[J.STATE_DELIVERED]))
    (first,) = delivered.jobs
    await w.cancel(first.id)
    await w.api.reach(first.id, J.STATE_CANCELLED, timeout_s=3)
    assert w.titles() == []
    assert (await w.job(second.id)).state == J.STATE_QUEUED
