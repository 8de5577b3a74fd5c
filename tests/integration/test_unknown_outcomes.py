"""Pinterest as it really behaves, end to end on a FakeClock: a 5xx whose pin lands later, reads
that lag writes, text Pinterest rewrote, bare pins that cannot be told apart, a retry budget
measured in time, and deletes/PATCHes of published pins that back off and give up.

The daemon runs in-process (real SQLite file, real gRPC channel) against the sandbox on loopback;
both read the same FakeClock, which the tests advance sleeper by sleeper (`drive`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from pinsched.app import Daemon
from pinsched.clock import FakeClock
from pinsched.config import Config
from pinsched.jobs import ImageUrl, PinSpec
from pinsched.pinterest import PinterestClient
from pinsched.sandbox import FaultRule, RequestRecord, Sandbox
from pinsched.v1 import job_pb2, scheduler_pb2
from tests.conftest import ACCESS, BOARD, Api, start_sandbox

J = job_pb2.Job
E = job_pb2.JobError
RU = job_pb2.RemoteUpdate
SETTINGS: dict[str, Any] = {
    "request_timeout_s": 30.0,
    "retry_base_delay_s": 2.0,
    "retry_max_delay_s": 600.0,
    "max_attempts": 0,
    "pinterest_read_lag_s": 0.0,
    "shutdown_grace_s": 1.0,
    "log_level": "warning",
    # Refreshes here are the dispatcher's own, counted by the tests.
    "token_keeper": False,
}
UNFETCHABLE = FaultRule(
    kind="status", status=400, code=1, message="Sorry we could not fetch the image."
)


@dataclass
class World:
    clock: FakeClock
    sandbox: Sandbox
    api: Api

    async def job(self, job_id: str) -> job_pb2.Job:
        return await self.api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job_id))

    async def schedule(self, **pin: Any) -> job_pb2.Job:
        retry_for = pin.pop("retry_for", None)
        window = pin.pop("window", None)
        req = self.api.pin_request(at=self.clock.now(), **pin)
        if retry_for is not None:
            req.retry_for.FromTimedelta(retry_for)
        if window is not None:
            req.delivery_window.FromTimedelta(window)
        return await self.api.jobs.SchedulePin(req)

    async def drive(
        self, job_id: str, done: Callable[[job_pb2.Job], bool], *, limit_s: float
    ) -> job_pb2.Job:
        """Advance the clock from one pending sleep to the next until *done* accepts the job;
        fail after *limit_s* of fake time."""
        spent, stalls = 0.0, 0
        while True:
            await self.api.daemon.activity.idle.wait()
            job = await self.job(job_id)
            if done(job):
                return job
            step = self.clock.next_deadline()
            if step is None and stalls < 100:  # a task between two sleeps (a commit): let it
                stalls += 1
                await asyncio.sleep(0.01)
                continue
            stalls = 0
            if step is None or spent >= limit_s:
                raise AssertionError(
                    f"after {spent:g} s the job is {J.State.Name(job.state)}: "
                    f"{[h.reason for h in job.history]}"
                )
            step = min(max(step, 0.0), limit_s - spent)
            await self.clock.advance(step)
            spent += step

    async def reach(self, job_id: str, state: int, *, limit_s: float = 7200) -> job_pb2.Job:
        return await self.drive(job_id, lambda j: j.state == state, limit_s=limit_s)

    def requests(self, method: str, prefix: str = "/v5/pins") -> list[RequestRecord]:
        return [
            r for r in self.sandbox.requests if r.method == method and r.path.startswith(prefix)
        ]

    def posts(self) -> list[RequestRecord]:
        return [r for r in self.requests("POST") if r.path == "/v5/pins"]


@pytest.fixture
async def w(db_url: str, request: pytest.FixtureRequest) -> AsyncIterator[World]:
    """Sandbox and daemon on one FakeClock; indirect parameters override daemon settings."""
    clock = FakeClock()
    sandbox = await start_sandbox(clock)
    overrides = dict(getattr(request, "param", {}))
    daemon = Daemon(
        Config(
            listen="127.0.0.1:0",
            http_listen=None,
            db_path=db_url,
            pinterest_api_base=sandbox.base_url,
            pinterest_client_id="client-1",
            pinterest_client_secret="client-secret-1",
            **{**SETTINGS, **overrides},
        ),
        clock=clock,
    )
    await daemon.start()
    api = Api(grpc.aio.insecure_channel(f"127.0.0.1:{daemon.port}"), daemon)
    try:
        await api.create_account()
        yield World(clock, sandbox, api)
    finally:
        await api.channel.close(None)
        await daemon.stop(grace_s=1.0)
        await sandbox.stop()


def moves(job: job_pb2.Job) -> list[tuple[str, str]]:
    return [(J.State.Name(h.from_state), J.State.Name(h.to_state)) for h in job.history]


def ts(value: Any) -> datetime:
    return value.ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]


# ------------------------------------------------------------------ 5xx, late landing, read lag


async def test_a_pin_landing_seconds_after_a_5xx_is_claimed_not_posted_twice(w: World) -> None:
    """A 503 answered by a proxy while Pinterest still creates the pin 10 s later: the first
    look finds nothing, the job stays SUBMITTED, and the look made once the request timeout has
    passed finds the pin: DELIVERED after one POST, one pin."""
    w.sandbox.add_fault(
        FaultRule(kind="late_create", land_after_min_s=10.0, land_after_max_s=10.0, times=1)
    )
    job = await w.schedule(title="late", link="https://x.test/late")
    got = await w.reach(job.id, J.STATE_DELIVERED)
    assert [r.status for r in w.posts()] == [503]
    assert got.pinterest_pin_id == w.sandbox.pins()[0]["id"]
    assert len(w.sandbox.pins()) == 1
    assert got.history[-1].reason == "reconciled: the pin was found on the board"
    waited = [h for h in got.history if h.from_state == h.to_state == J.STATE_SUBMITTED]
    assert len(waited) == 1
    submitted = next(h.time for h in got.history if h.to_state == J.STATE_SUBMITTED)
    looks = w.requests("GET", "/v5/boards")
    assert len(looks) == 2
    assert looks[1].time >= ts(submitted) + timedelta(seconds=SETTINGS["request_timeout_s"])


@pytest.mark.parametrize(
    ("w", "pins"),
    [
        ({"request_timeout_s": 5.0, "pinterest_read_lag_s": 30.0}, 1),
        ({"request_timeout_s": 5.0, "pinterest_read_lag_s": 0.0}, 2),
    ],
    ids=["margin-covers-lag", "no-margin-duplicates"],
    indirect=["w"],
)
async def test_read_lag_is_waited_out_before_no_pin_is_concluded(w: World, pins: int) -> None:
    """Reads that lag writes by 20 s hide a pin created with a 500: with a read-lag margin of
    30 s the pin is found (one pin); without one, "no pin" is concluded too early and the
    retry makes a second pin, which is exactly why the margin exists."""
    w.sandbox.set_read_lag(20.0)
    w.sandbox.add_fault(FaultRule(kind="status_after_create", status=500, times=1))
    job = await w.schedule(title="lagging")
    got = await w.reach(job.id, J.STATE_DELIVERED)
    assert len(w.sandbox.pins()) == pins
    assert got.pinterest_pin_id in {p["id"] for p in w.sandbox.pins()}
    assert len(w.posts()) == pins


async def test_text_and_links_pinterest_rewrote_are_still_matched(w: World) -> None:
    """The sandbox stores the title trimmed and the link's host in lower case, as Pinterest may:
    after a 500 that created the pin, it is still recognised (one POST, one pin)."""
    w.sandbox.add_fault(FaultRule(kind="status_after_create", status=500, times=1))
    job = await w.schedule(
        title="  Hello   there ", description="d ", link="HTTPS://Shop.Example.COM/p/1/"
    )
    got = await w.reach(job.id, J.STATE_DELIVERED)
    (pin,) = w.sandbox.pins()
    assert (pin["title"], pin["link"]) == ("Hello   there", "https://shop.example.com/p/1/")
    assert got.pinterest_pin_id == pin["id"]
    assert len(w.posts()) == 1


async def _hand_made_bare_pin(w: World) -> str:
    """A pin the user made by hand on the board: image, no text."""
    client = PinterestClient(w.sandbox.base_url)
    try:
        out = await client.create_pin(
            ACCESS, PinSpec(board_id=BOARD, media=ImageUrl(url="https://x.test/h.jpg"))
        )
    finally:
        await client.close()
    return str(getattr(out, "pin_id", ""))


async def test_a_bare_job_never_guesses_among_several_candidates(w: World) -> None:
    """A job with no title, description, link or alt text whose create got a 500: the board
    holds its pin and an identical hand-made one, so it claims neither, records the ambiguity
    in its history, looks again once the request can no longer land, and then asks the user
    (FAILED, both pin ids named); it never posts again."""
    hand = await _hand_made_bare_pin(w)
    w.sandbox.add_fault(FaultRule(kind="status_after_create", status=500, times=1))
    job = await w.schedule(title="")
    got = await w.reach(job.id, J.STATE_FAILED)
    ours = next(p["id"] for p in w.sandbox.pins() if p["id"] != hand)
    noted = [h.reason for h in got.history if h.from_state == h.to_state == J.STATE_SUBMITTED]
    assert len(noted) == 1
    assert noted[0].startswith(f"ambiguous: pins {hand}, {ours} could each be this job's")
    assert (got.last_error.category, got.last_error.retryable) == (
        E.CATEGORY_OUTCOME_UNKNOWN,
        False,
    )
    assert f"pins {hand}, {ours} could each be this job's" in got.last_error.message
    assert not got.pinterest_pin_id
    assert len(w.posts()) == 2  # the hand-made pin's and the job's one


async def test_a_bare_job_claims_its_lone_candidate(w: World) -> None:
    """The same bare job with no other pin on the board claims the one its create made."""
    w.sandbox.add_fault(FaultRule(kind="status_after_create", status=500, times=1))
    job = await w.schedule(title="")
    got = await w.reach(job.id, J.STATE_DELIVERED)
    assert got.pinterest_pin_id == w.sandbox.pins()[0]["id"]
    assert len(w.posts()) == 1


# ------------------------------------------------------------------------- retry budget


async def test_a_failure_that_clears_after_half_an_hour_is_delivered(w: World) -> None:
    """Pinterest's "could not fetch the image" for 40 minutes: retried with backoff well past
    eight attempts (the old count budget gave up after about four minutes), never exhausted,
    and delivered once the image can be fetched."""
    w.sandbox.add_fault(UNFETCHABLE)
    job = await w.schedule()
    start = w.clock.monotonic()
    got = await w.drive(job.id, lambda j: j.attempts >= 9, limit_s=2400)
    assert got.state == J.STATE_RETRYING
    got = await w.drive(job.id, lambda j: w.clock.monotonic() - start >= 2400, limit_s=2400)
    assert got.state in (J.STATE_RETRYING, J.STATE_QUEUED)
    w.sandbox.clear_faults()
    done = await w.reach(job.id, J.STATE_DELIVERED, limit_s=3600)
    assert done.attempts > 9
    assert len(w.sandbox.pins()) == 1


@pytest.mark.parametrize(
    ("retry_for", "window"),
    [
        (timedelta(hours=2), None),
        (None, timedelta(hours=1)),
    ],
    ids=["retry_for", "window-end"],
)
async def test_transient_failures_end_exhausted_at_the_retry_deadline(
    w: World,
    retry_for: timedelta | None,
    window: timedelta | None,
) -> None:
    """A failure that never clears is retried until `retry_for` after planned_at (or the end of
    the delivery window), then PERMANENTLY_FAILED (EXHAUSTED) with the last error; no attempt
    is made after the deadline (the last one is made at it, give or take the scheduler's 50 ms
    lead), which the job shows as `retry_until`."""
    w.sandbox.add_fault(UNFETCHABLE)
    job = await w.schedule(retry_for=retry_for, window=window)
    planned = ts(job.planned_at)
    deadline = planned + retry_for if retry_for else ts(job.window_end)
    assert ts(job.retry_until) == deadline
    assert (job.retry_for.ToTimedelta() if job.HasField("retry_for") else None) == retry_for
    got = await w.reach(job.id, J.STATE_PERMANENTLY_FAILED, limit_s=4 * 3600)
    err = got.last_error
    assert (err.category, err.http_status) == (E.CATEGORY_EXHAUSTED, 400)
    assert "the end of its retry budget; last: Sorry we could not fetch the image." in err.message
    sent = [ts(h.time) for h in got.history if h.to_state == J.STATE_SUBMITTED]
    assert len(sent) == got.attempts > 5
    assert deadline - timedelta(seconds=1) <= max(sent) <= deadline  # the last one: at it
    assert ts(got.history[-1].time) >= deadline - timedelta(seconds=1)


async def test_bad_retry_for_is_invalid_argument_naming_the_field(w: World) -> None:
    """A zero retry_for is refused with INVALID_ARGUMENT naming `retry_for`; nothing is stored."""
    req = w.api.pin_request(at=w.clock.now())
    req.retry_for.FromTimedelta(timedelta(0))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await w.api.jobs.SchedulePin(req)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "retry_for" in (caught.value.details() or "")
    listed = await w.api.jobs.ListJobs(scheduler_pb2.ListJobsRequest())
    assert not listed.jobs


# ------------------------------------------------------------------ writes to published pins


async def _delivered(w: World) -> job_pb2.Job:
    job = await w.schedule(title="published")
    return await w.reach(job.id, J.STATE_DELIVERED)


async def _cancel(w: World, job_id: str) -> None:
    await w.api.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=job_id))


async def test_a_delete_that_keeps_failing_gives_up_and_leaves_the_pin_live(w: World) -> None:
    """Every DELETE answers 503: the cancel is retried with growing, jittered delays, and an
    hour after it began it gives up: DELIVERED with last_error, the pin still on Pinterest."""
    job = await _delivered(w)
    w.sandbox.add_fault(FaultRule(kind="status", method="DELETE", status=503))
    await _cancel(w, job.id)
    got = await w.reach(job.id, J.STATE_DELIVERED, limit_s=2 * 3600)
    assert moves(got)[-2:] == [
        ("STATE_DELIVERED", "STATE_CANCELLING"),
        ("STATE_CANCELLING", "STATE_DELIVERED"),
    ]
    assert got.last_error.http_status == 503
    assert got.history[-1].reason.startswith("delete given up, the pin is still live: gave up")
    deletes = [r.time for r in w.requests("DELETE")]
    assert 5 < len(deletes) < 60
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(deletes)]
    assert max(gaps) > 60  # backed off, not hammered
    began = ts(got.history[-2].time)
    assert ts(got.history[-1].time) - began <= timedelta(hours=1)
    assert [p["id"] for p in w.sandbox.pins()] == [got.pinterest_pin_id]


async def test_a_delete_honours_retry_after(w: World) -> None:
    """A DELETE answered 429 with Retry-After: 120 is sent again no sooner than 120 s later."""
    job = await _delivered(w)
    w.sandbox.add_fault(FaultRule(kind="rate_limit", method="DELETE", retry_after_s=120, times=1))
    await _cancel(w, job.id)
    await w.reach(job.id, J.STATE_CANCELLED, limit_s=600)
    first, second = (r.time for r in w.requests("DELETE"))
    assert (second - first).total_seconds() >= 120
    assert not w.sandbox.pins()


async def test_a_delete_refused_after_a_token_refresh_never_loops(w: World) -> None:
    """Every DELETE answers 401: the token is refreshed once, the DELETE sent once more, and
    then the cancel gives up (DELIVERED, AUTH error) instead of refreshing forever."""
    job = await _delivered(w)
    grants = len(w.requests("POST", "/v5/oauth/token"))  # the token keeper's verification
    w.sandbox.add_fault(FaultRule(kind="auth", method="DELETE"))
    await _cancel(w, job.id)
    got = await w.reach(job.id, J.STATE_DELIVERED, limit_s=600)
    assert got.last_error.category == E.CATEGORY_AUTH
    assert "a freshly refreshed access token was refused too" in got.last_error.message
    assert len(w.requests("DELETE")) == 2
    assert len(w.requests("POST", "/v5/oauth/token")) == grants + 1


async def test_a_delete_waits_while_the_apps_credentials_are_refused(w: World) -> None:
    """The access token lapses and Pinterest refuses the app's client credentials: the cancel of
    a published pin waits (it is not the pin's fault) past the hour after which a failing delete
    gives up, and deletes the pin once the credentials are accepted again."""
    job = await _delivered(w)
    account = await w.api.daemon.store.get_account("acme")
    w.sandbox.set_client("client-1", "rotated-elsewhere")
    w.sandbox.expire_access_token(account.access_token)
    await _cancel(w, job.id)
    got = await w.drive(
        job.id, lambda j: len(w.requests("POST", "/v5/oauth/token")) >= 16, limit_s=3 * 3600
    )
    grants = w.requests("POST", "/v5/oauth/token")
    assert grants[-1].time - grants[0].time > timedelta(hours=1)
    assert got.state == J.STATE_CANCELLING  # more than an hour of refusals: still not given up
    assert w.sandbox.pins()
    w.sandbox.set_client("client-1", "client-secret-1")
    got = await w.reach(job.id, J.STATE_CANCELLED, limit_s=3600)
    assert not w.sandbox.pins()


async def test_a_429_on_a_patch_waits_as_told_and_is_not_counted(w: World) -> None:
    """Two PATCHes answered 429 (Retry-After: 60), then one that succeeds: the change is
    APPLIED after one counted attempt, each PATCH at least 60 s after the one before."""
    job = await _delivered(w)
    w.sandbox.add_fault(FaultRule(kind="rate_limit", method="PATCH", retry_after_s=60, times=2))
    update = job_pb2.Job(id=job.id, pin=job_pb2.Pin(title="changed"))
    await w.api.jobs.UpdateJob(
        scheduler_pb2.UpdateJobRequest(
            job=update, update_mask=field_mask_pb2.FieldMask(paths=["pin.title"])
        )
    )
    got = await w.drive(job.id, lambda j: j.remote_update.state == RU.STATE_APPLIED, limit_s=600)
    assert got.remote_update.attempts == 1
    times = [r.time for r in w.requests("PATCH")]
    assert len(times) == 3
    assert all((b - a).total_seconds() >= 60 for a, b in itertools.pairwise(times))
    assert w.sandbox.pins()[0]["title"] == "changed"


async def _update_retry_for(w: World, job_id: str, value: timedelta | None) -> job_pb2.Job:
    update = job_pb2.Job(id=job_id)
    if value is not None:
        update.retry_for.FromTimedelta(value)
    return await w.api.jobs.UpdateJob(
        scheduler_pb2.UpdateJobRequest(
            job=update, update_mask=field_mask_pb2.FieldMask(paths=["retry_for"])
        )
    )


async def test_update_job_changes_the_retry_budget_until_the_pin_is_published(w: World) -> None:
    """UpdateJob with `retry_for` in the mask moves a retrying job's deadline (an unset value
    goes back to the 24 h default); a bad value is INVALID_ARGUMENT naming `job.retry_for`;
    once the pin is published it is FAILED_PRECONDITION."""
    w.sandbox.add_fault(UNFETCHABLE)
    job = await w.schedule()
    await w.reach(job.id, J.STATE_RETRYING)
    planned = ts(job.planned_at)
    short = await _update_retry_for(w, job.id, timedelta(hours=1))
    assert (short.state, ts(short.retry_until)) == (J.STATE_RETRYING, planned + timedelta(hours=1))
    assert short.history[-1].reason == "updated: retry_for"
    default = await _update_retry_for(w, job.id, None)
    assert not default.HasField("retry_for")
    assert ts(default.retry_until) == planned + timedelta(hours=24)
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await _update_retry_for(w, job.id, timedelta(days=31))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "job.retry_for" in (bad.value.details() or "")
    w.sandbox.clear_faults()
    await w.reach(job.id, J.STATE_DELIVERED)
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await _update_retry_for(w, job.id, timedelta(hours=2))
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_later_twin_never_takes_the_pin_of_an_earlier_one_still_unsettled(
    w: World,
) -> None:
    """Two identical jobs 10 s apart, both answered 503 while their pins land later (5 s and
    25 s after each, inside the 30 s request timeout): the second, looking at once, sees the
    first one's pin but does not take it while the first is still being settled; each ends with
    a pin and no third pin is made (taking it would have left the first to look at 30 s, before
    the second's pin lands at 35 s, find nothing, and post again)."""
    w.sandbox.add_fault(
        FaultRule(kind="late_create", land_after_min_s=5, land_after_max_s=5, times=1)
    )
    first = await w.schedule(title="twin")
    await w.drive(first.id, lambda j: len(j.history) >= 4, limit_s=60)  # its first look done
    await w.clock.advance(10)
    w.sandbox.add_fault(
        FaultRule(kind="late_create", land_after_min_s=25, land_after_max_s=25, times=1)
    )
    second = await w.schedule(title="twin")
    one = await w.reach(first.id, J.STATE_DELIVERED, limit_s=120)
    two = await w.reach(second.id, J.STATE_DELIVERED, limit_s=120)
    pins = {p["id"] for p in w.sandbox.pins()}
    assert len(pins) == 2
    assert {one.pinterest_pin_id, two.pinterest_pin_id} == pins
    assert len(w.posts()) == 2
