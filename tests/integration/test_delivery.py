"""Publishing outcomes, one test per row of DESIGN §6, against the sandbox on loopback.

The daemon runs in-process on a real SQLite file and a real gRPC channel with small retry delays
and a short request timeout; faults are injected in the sandbox (`FaultRule`) or come from its
magic image URLs. Every test checks the job (state, attempts, last error, history) and what the
sandbox received and holds.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from pinsched.app import Daemon
from pinsched.core.jobs import JobState, transition
from pinsched.sandbox import FaultRule, RequestRecord, Sandbox
from pinsched.store import Store
from pinsched.testing import FakeClock
from pinsched.v1 import account_pb2, job_pb2, scheduler_pb2
from tests.conftest import Api, soon, start_sandbox

J = job_pb2.Job
E = job_pb2.JobError
#: Fast retries and a short request timeout: every test here runs in well under a second or two.
FAST: dict[str, Any] = {
    "retry_base_delay_s": 0.01,
    "retry_max_delay_s": 0.05,
    "request_timeout_s": 0.5,
    "max_attempts": 3,
    "pinterest_read_lag_s": 0.0,
}
TERMINAL = {J.STATE_DELIVERED, J.STATE_PERMANENTLY_FAILED, J.STATE_FAILED, J.STATE_CANCELLED}


# ------------------------------------------------------------------------------ helpers


@pytest.fixture
def make_fast(make_daemon: Callable[..., Daemon]) -> Callable[..., Daemon]:
    """conftest's `make_daemon` with FAST settings by default."""
    return functools.partial(make_daemon, **FAST)


@pytest.fixture
async def fast(make_fast: Callable[..., Daemon]) -> AsyncIterator[Api]:
    """A daemon with fast retries, and account `acme` (user `acme` in the sandbox)."""
    api = await Api.open(make_fast())
    try:
        await api.create_account()
        yield api
    finally:
        await api.close()


async def schedule(
    api: Api, *, url: str = "https://example.com/a.jpg", at: datetime | None = None, **pin: Any
) -> job_pb2.Job:
    req = api.pin_request(at=at or soon(), **pin)
    req.pin.media_source.image_url.url = url
    return await api.jobs.SchedulePin(req)


def posts(sandbox: Sandbox, username: str | None = None) -> list[RequestRecord]:
    """The `POST /v5/pins` requests the sandbox answered (or dropped), in arrival order (of
    one user, if given; a request refused with 401 has no user)."""
    return [
        r
        for r in sandbox.requests
        if r.method == "POST"
        and r.path == "/v5/pins"
        and (username is None or r.username == username)
    ]


def moves(job: job_pb2.Job) -> list[tuple[str, str]]:
    """The job's history as (from, to) state names."""
    return [(J.State.Name(h.from_state), J.State.Name(h.to_state)) for h in job.history]


def only_pin(sandbox: Sandbox) -> dict[str, Any]:
    pins = sandbox.pins()
    assert len(pins) == 1, pins
    return pins[0]


# ------------------------------------------------------------------------------ 2xx


async def test_2xx_is_delivered_with_the_pin_id(fast: Api, sandbox: Sandbox) -> None:
    """A 201 makes the job DELIVERED after one attempt, with the id of the pin Pinterest made."""
    job = await schedule(fast, title="ok", description="d", link="https://x.test/p")
    got = await fast.reach(job.id, J.STATE_DELIVERED)
    assert got.attempts == 1
    assert got.pinterest_pin_id == only_pin(sandbox)["id"]
    assert not got.HasField("last_error")
    assert moves(got)[-1] == ("STATE_SUBMITTED", "STATE_DELIVERED")
    assert [r.status for r in posts(sandbox)] == [201]


# ------------------------------------------------------------------------------ 429


async def test_429_with_retry_after_waits_as_told_slows_the_account_and_is_not_counted(
    fast: Api,
    sandbox: Sandbox,
) -> None:
    """A 429 with Retry-After: 1 sends the job RETRYING for about that long without counting the
    attempt, and holds the whole account back as long (its other job waits too)."""
    sandbox.add_fault(FaultRule(kind="rate_limit", retry_after_s=1, times=1))
    at = soon(0.1)
    first, second = (await schedule(fast, at=at, title="a"), await schedule(fast, at=at, title="b"))
    done = [await fast.reach(j.id, J.STATE_DELIVERED) for j in (first, second)]
    sent = posts(sandbox)
    assert [r.status for r in sent] == [429, 201, 201]
    assert all((r.time - sent[0].time).total_seconds() >= 1.0 for r in sent[1:])
    limited = next(j for j in done if ("STATE_SUBMITTED", "STATE_RETRYING") in moves(j))
    assert limited.attempts == 1
    retry = next(h for h in limited.history if h.to_state == J.STATE_RETRYING)
    assert (retry.error.category, retry.error.http_status, retry.error.pinterest_code) == (
        E.CATEGORY_RATE_LIMITED,
        429,
        8,
    )
    assert retry.error.pinterest_request_id == sent[0].request_id
    assert "attempt not counted" in retry.reason
    assert fast.daemon.accounts.pacer("acme").slowdown == 0.5
    assert len(sandbox.pins()) == 2


async def test_429_without_hint_backs_off_and_never_burns_the_budget(
    fast: Api,
    sandbox: Sandbox,
) -> None:
    """Five 429s in a row without Retry-After (more than max_attempts=3) still end DELIVERED
    with one counted attempt; the account's write rate is cut down meanwhile."""
    await fast.update_account(
        account_pb2.Account(id="acme", pacing=account_pb2.Pacing(writes_per_minute=6000)),
        "pacing.writes_per_minute",
    )  # 1/16 of it still allows a write every 0.16 s
    sandbox.add_fault(FaultRule(kind="rate_limit", times=5))
    job = await schedule(fast)
    got = await fast.reach(job.id, J.STATE_DELIVERED)
    assert [r.status for r in posts(sandbox)] == [429] * 5 + [201]
    assert got.attempts == 1
    assert moves(got).count(("STATE_SUBMITTED", "STATE_RETRYING")) == 5
    pacer = fast.daemon.accounts.pacer("acme")
    assert pacer.slowdown == 1 / 16
    assert pacer.strikes == 0  # the streak ended with the success
    only_pin(sandbox)


# ------------------------------------------------------------------------------ 400/403/404


REJECTIONS = [
    # name, pin fields, fault, (status, code, message start)
    (
        "code 1 invalid URL",
        {},
        FaultRule(
            kind="status",
            status=400,
            code=1,
            times=1,
            message="Whoops! It looks like you entered an invalid URL. Try creating a Pin again "
            "with a valid URL.",
        ),
        (400, 1, "Whoops! It looks like you entered an invalid"),
    ),
    ("code 40 board not found", {"board_id": "999"}, None, (404, 40, "Board not found.")),
    (
        "code 233 image too small",
        {"url": "https://example.com/sandbox-too-small.jpg"},
        None,
        (403, 233, "Your image is too small."),
    ),
    (
        "code 235 image broken",
        {"url": "https://example.com/sandbox-broken.jpg"},
        None,
        (403, 235, "Sorry, this image is broken."),
    ),
    (
        "code 2031 section not found",
        {"board_section_id": "555"},
        None,
        (404, 2031, "Sorry! We couldn't find this board section."),
    ),
]


@pytest.mark.parametrize(
    ("pin", "fault", "expected"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS]
)
async def test_rejection_is_permanent_with_pinterest_code_and_message(
    fast: Api,
    sandbox: Sandbox,
    pin: dict[str, Any],
    fault: FaultRule | None,
    expected: tuple[int, int, str],
) -> None:
    """A 400/403/404 with a permanent code ends PERMANENTLY_FAILED after one attempt, carrying
    Pinterest's status, code, message and request id; nothing is retried or created."""
    if fault is not None:
        sandbox.add_fault(fault)
    job = await schedule(fast, **pin)
    got = await fast.reach(job.id, J.STATE_PERMANENTLY_FAILED)
    status, code, message = expected
    sent = posts(sandbox)
    assert [r.status for r in sent] == [status]
    assert got.attempts == 1
    err = got.last_error
    assert (err.category, err.http_status, err.pinterest_code, err.retryable) == (
        E.CATEGORY_REJECTED,
        status,
        code,
        False,
    )
    assert err.message.startswith(message)
    assert err.pinterest_request_id == sent[0].request_id
    assert moves(got)[-1] == ("STATE_SUBMITTED", "STATE_PERMANENTLY_FAILED")
    assert not sandbox.pins()


async def test_retry_job_sends_a_permanently_failed_job_again(fast: Api, sandbox: Sandbox) -> None:
    """After the cause is fixed (the board now exists), RetryJob sends a PERMANENTLY_FAILED
    job round again with a fresh budget and it is delivered once."""
    job = await schedule(fast, board_id="999")
    await fast.reach(job.id, J.STATE_PERMANENTLY_FAILED)
    sandbox.add_board("acme", "999")
    again = await fast.jobs.RetryJob(scheduler_pb2.RetryJobRequest(job_id=job.id))
    assert (again.state, again.attempts) == (J.STATE_PENDING, 0)
    got = await fast.reach(job.id, J.STATE_DELIVERED)
    assert got.attempts == 1
    assert got.pinterest_pin_id == only_pin(sandbox)["id"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await fast.jobs.RetryJob(scheduler_pb2.RetryJobRequest(job_id=job.id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


# ------------------------------------------------------------------------------ transient


async def test_5xx_2787_is_reconciled_then_retried_and_delivered_once(
    fast: Api,
    sandbox: Sandbox,
) -> None:
    """A 503 code 2787 on the create is an unknown outcome, like a timeout: the board is listed
    at once (no pin), the job stays SUBMITTED, and only a listing that started once the request
    timeout had passed since the submission, finding nothing, sends it RETRYING; the next
    attempt delivers exactly one pin."""
    sandbox.add_fault(FaultRule(kind="status", status=503, times=1))
    job = await schedule(fast)
    got = await fast.reach(job.id, J.STATE_DELIVERED)
    assert [r.status for r in posts(sandbox)] == [503, 201]
    assert got.attempts == 2
    retry = next(h for h in got.history if h.to_state == J.STATE_RETRYING)
    assert (retry.error.http_status, retry.error.pinterest_code) == (503, 2787)
    assert retry.error.category == E.CATEGORY_OUTCOME_UNKNOWN
    assert retry.reason.startswith("reconciled: no pin on the board")
    waited = [h for h in got.history if h.from_state == h.to_state == J.STATE_SUBMITTED]
    assert waited
    assert waited[0].reason.startswith("outcome unknown (Sorry! Something went")
    looked = [r for r in sandbox.requests if r.method == "GET" and r.path.startswith("/v5/boards")]
    assert [r.path for r in looked[:2]] == ["/v5/boards/1001/pins"] * 2
    submitted = next(h for h in got.history if h.to_state == J.STATE_SUBMITTED)
    assert looked[1].time >= (
        submitted.time.ToDatetime(tzinfo=UTC) + timedelta(seconds=FAST["request_timeout_s"])
    )
    assert got.pinterest_pin_id == only_pin(sandbox)["id"]


async def test_could_not_fetch_the_image_is_transient(fast: Api, sandbox: Sandbox) -> None:
    """Pinterest's 400 "could not fetch the image" is retried (not a rejection) and the next
    attempt delivers."""
    sandbox.add_fault(
        FaultRule(
            kind="status",
            status=400,
            code=1,
            times=1,
            message="Sorry we could not fetch the image.",
        )
    )
    job = await schedule(fast)
    got = await fast.reach(job.id, J.STATE_DELIVERED)
    assert got.attempts == 2
    retry = next(h for h in got.history if h.to_state == J.STATE_RETRYING)
    assert (retry.error.category, retry.error.http_status, retry.error.retryable) == (
        E.CATEGORY_UNAVAILABLE,
        400,
        True,
    )
    only_pin(sandbox)


@pytest.mark.parametrize(
    ("url", "fault", "status"),
    [
        ("https://example.com/sandbox-unfetchable.jpg", None, 400),
        ("https://example.com/a.jpg", FaultRule(kind="status", status=503), 503),
    ],
    ids=["unfetchable-image", "5xx"],
)
async def test_exhausted_attempts_end_permanently_failed_with_the_last_error(
    fast: Api,
    sandbox: Sandbox,
    url: str,
    fault: FaultRule | None,
    status: int,
) -> None:
    """A failure that keeps coming back ends PERMANENTLY_FAILED after max_attempts (3), with
    the last error, and no pin."""
    if fault is not None:
        sandbox.add_fault(fault)
    job = await schedule(fast, url=url)
    got = await fast.reach(job.id, J.STATE_PERMANENTLY_FAILED)
    assert [r.status for r in posts(sandbox)] == [status] * 3
    assert got.attempts == 3
    assert moves(got).count(("STATE_SUBMITTED", "STATE_RETRYING")) == 2
    err = got.last_error
    assert (err.category, err.http_status) == (E.CATEGORY_EXHAUSTED, status)
    assert err.message.startswith("3 attempts failed; last: ")
    assert not sandbox.pins()


# ------------------------------------------------------------------------------ unknown outcome


@pytest.mark.parametrize(
    "fault",
    [
        FaultRule(kind="lost_response", mode="drop", times=1),
        FaultRule(kind="lost_response", mode="hang", hold_s=5.0, times=1),
        FaultRule(kind="status_after_create", status=500, times=1),
        FaultRule(kind="status_after_create", status=502, times=1),
    ],
    ids=["drop", "hang-timeout", "500-after-create", "502-after-create"],
)
async def test_lost_answer_is_reconciled_to_the_pin_pinterest_made(
    fast: Api,
    sandbox: Sandbox,
    fault: FaultRule,
) -> None:
    """When the pin was created but the answer was lost (disconnect, timeout, 5xx), the job is
    DELIVERED with the sandbox's pin, found on the board, after one POST: never posted twice."""
    sandbox.add_fault(fault)
    job = await schedule(
        fast, title="lost", description="answer", link="https://x.test/l", alt_text="alt"
    )
    got = await fast.reach(job.id, J.STATE_DELIVERED)
    assert len(posts(sandbox)) == 1
    assert got.pinterest_pin_id == only_pin(sandbox)["id"]
    assert got.attempts == 1
    assert got.history[-1].reason == "reconciled: the pin was found on the board"
    assert moves(got)[-1] == ("STATE_SUBMITTED", "STATE_DELIVERED")


async def test_unreadable_board_keeps_the_job_submitted_until_it_can_be_read(
    fast: Api,
    sandbox: Sandbox,
) -> None:
    """When the board cannot be read (5xx, 429) while looking for a lost pin, the job stays
    SUBMITTED and is looked for again with backoff, never retried blindly; once the board
    answers, the pin is found."""
    sandbox.add_fault(FaultRule(kind="lost_response", mode="drop", times=1))
    sandbox.add_fault(
        FaultRule(kind="status", method="GET", path_prefix="/v5/boards", status=503, times=2)
    )
    sandbox.add_fault(FaultRule(kind="rate_limit", method="GET", path_prefix="/v5/boards", times=1))
    job = await schedule(fast)
    got = await fast.reach(job.id, J.STATE_DELIVERED)
    assert {J.State.Name(h.to_state) for h in got.history} == {
        "STATE_PENDING",
        "STATE_QUEUED",
        "STATE_SUBMITTED",
        "STATE_DELIVERED",
    }
    reads = [r.status for r in sandbox.requests if r.path == "/v5/boards/1001/pins"]
    assert reads == [503, 503, 429, 200]
    assert len(posts(sandbox)) == 1
    assert got.pinterest_pin_id == only_pin(sandbox)["id"]


async def test_a_board_that_stays_unreadable_hands_the_job_to_the_user(
    fast: Api,
    sandbox: Sandbox,
) -> None:
    """After many failed looks in a row the job is FAILED with an outcome-unknown error that
    asks the user to check the board: it is never posted a second time by itself."""
    sandbox.add_fault(FaultRule(kind="lost_response", mode="drop", times=1))
    sandbox.add_fault(FaultRule(kind="status", method="GET", path_prefix="/v5/boards", status=503))
    job = await schedule(fast)
    got = await fast.reach(job.id, J.STATE_FAILED, timeout_s=20)
    assert (got.last_error.category, got.last_error.retryable) == (
        E.CATEGORY_OUTCOME_UNKNOWN,
        False,
    )
    assert got.last_error.message.endswith("check the board, then RetryJob")
    reads = [r for r in sandbox.requests if r.path == "/v5/boards/1001/pins"]
    assert len(reads) == 31
    assert len(posts(sandbox)) == 1
    assert len(sandbox.pins()) == 1


async def test_reconcile_never_claims_a_pin_owned_by_another_job(
    fast: Api,
    sandbox: Sandbox,
) -> None:
    """Two jobs with identical content: the second's 503 is reconciled against the board, where
    only the first job's pin matches; it is not claimed, and the retry makes a second pin."""
    first = await schedule(fast, title="twin")
    one = await fast.reach(first.id, J.STATE_DELIVERED)
    sandbox.add_fault(FaultRule(kind="status", status=503, times=1))
    second = await schedule(fast, title="twin")
    two = await fast.reach(second.id, J.STATE_DELIVERED)
    assert two.attempts == 2
    assert one.pinterest_pin_id != two.pinterest_pin_id
    assert {p["id"] for p in sandbox.pins()} == {one.pinterest_pin_id, two.pinterest_pin_id}


async def test_crash_while_submitted_with_a_pin_is_reconciled_at_start(
    make_fast: Callable[..., Daemon],
    sandbox: Sandbox,
) -> None:
    """A daemon stopped while its request hangs leaves the job SUBMITTED; the next daemon on the
    same database finds the pin Pinterest made and claims it without posting again."""
    sandbox.add_fault(FaultRule(kind="lost_response", mode="hang", hold_s=30.0, times=1))
    api = await Api.open(make_fast(request_timeout_s=30.0))
    try:
        await api.create_account()
        job = await schedule(api)
        await api.reach(job.id, J.STATE_SUBMITTED)
        await sandbox.wait_for_pins(1)
    finally:
        await api.close(grace_s=0.1)
    api = await Api.open(make_fast())
    try:
        assert (await api.get(job.id)).state in (J.STATE_SUBMITTED, J.STATE_DELIVERED)
        got = await api.reach(job.id, J.STATE_DELIVERED)
    finally:
        await api.close()
    assert got.pinterest_pin_id == only_pin(sandbox)["id"]
    assert len(posts(sandbox)) == 1
    assert got.history[-1].reason == "reconciled: the pin was found on the board"


async def test_crash_before_the_request_left_is_retried_exactly_once(
    make_fast: Callable[..., Daemon],
    sandbox: Sandbox,
    db_url: str,
) -> None:
    """A job committed SUBMITTED whose request never left (killed in between) is looked for,
    not found, retried, and published exactly once."""
    api = await Api.open(make_fast())
    try:
        await api.create_account()
        job = await schedule(api, at=soon(3600))
    finally:
        await api.close()
    store = await Store.open(db_url)
    try:  # what the dispatcher commits just before sending, then the process dies
        now = datetime.now(UTC)
        pending = await store.get_job(job.id)
        queued, entry = transition(
            pending, JobState.QUEUED, now=now, reason="due", scheduled_at=now, planned_at=now
        )
        await store.commit(pending, queued, entry)
        submitted, entry = transition(
            queued,
            JobState.SUBMITTED,
            now=now,
            reason="attempt 1",
            attempts=1,
            submitted_at=now,
            late_by=timedelta(0),
        )
        await store.commit(queued, submitted, entry)
    finally:
        await store.close()
    # A request timeout longer than a restart takes on a busy machine: the restarted daemon must
    # still be inside it, and so wait, when it first looks (on either backend).
    api = await Api.open(make_fast(request_timeout_s=3.0))
    try:
        got = await api.reach(job.id, J.STATE_DELIVERED)
    finally:
        await api.close()
    assert [r.status for r in posts(sandbox)] == [201]
    assert got.pinterest_pin_id == only_pin(sandbox)["id"]
    assert got.attempts == 2
    retry = next(h for h in got.history if h.to_state == J.STATE_RETRYING)
    assert retry.reason.startswith("reconciled: no pin on the board")
    assert retry.error.category == E.CATEGORY_OUTCOME_UNKNOWN
    waited = [h for h in got.history if h.from_state == h.to_state == J.STATE_SUBMITTED]
    assert waited, "absence is concluded only once the lost request could no longer land"


# ------------------------------------------------------------------------------ spam


async def test_spam_block_cools_the_whole_account_down(make_fast: Callable[..., Daemon]) -> None:
    """A code 9 spam block sends the job RETRYING after the long cool-down (not counted) and
    holds the account's other job for as long, while another account keeps publishing."""
    clock = FakeClock()
    sb = await start_sandbox(clock)
    sb.add_user("other", access_token="pina_other", board_ids=["2001"])
    sb.add_fault(FaultRule(kind="spam", username="acme", times=1))
    api = await Api.open(make_fast(clock=clock, base_url=sb.base_url))
    try:
        await api.create_account()
        await api.accounts.CreateAccount(
            account_pb2.CreateAccountRequest(
                account_id="other", account=account_pb2.Account(access_token="pina_other")
            )
        )
        blocked = await schedule(api, at=clock.now())
        got = await api.reach(blocked.id, J.STATE_RETRYING)
        cooldown = api.daemon.dispatchers.settings.spam_cooldown_s
        assert (got.last_error.category, got.last_error.pinterest_code) == (
            E.CATEGORY_SPAM_BLOCKED,
            9,
        )
        assert got.attempts == 0
        assert got.next_attempt_at.ToDatetime(tzinfo=UTC) == clock.now() + timedelta(
            seconds=cooldown
        )
        held = await schedule(api, at=clock.now(), title="held")
        await api.reach(held.id, J.STATE_QUEUED)
        elsewhere = await schedule(api, at=clock.now(), account_id="other", board_id="2001")
        await api.reach(elsewhere.id, J.STATE_DELIVERED)
        await clock.advance(cooldown / 2)
        await api.daemon.activity.idle.wait()
        assert [r.status for r in posts(sb, "acme")] == [429]
        assert (await api.get(held.id)).state == J.STATE_QUEUED
        await clock.advance(cooldown / 2)
        for job in (blocked, held):
            assert (await api.reach(job.id, J.STATE_DELIVERED)).attempts == 1
        assert [r.status for r in posts(sb, "acme")] == [429, 201, 201]
    finally:
        await api.close()
        await sb.stop()
