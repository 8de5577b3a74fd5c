"""The daemon in-process: real SQLite file, real gRPC channel on 127.0.0.1, the sandbox as
Pinterest."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import cast

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from pinsched.app import Daemon
from pinsched.sandbox import Sandbox
from pinsched.testing import FakeClock
from pinsched.v1 import account_pb2, job_pb2, scheduler_pb2
from tests.conftest import ACCESS, REFRESH, Api, soon, start_sandbox

J = job_pb2.Job


async def wait_states(
    api: Api, job_ids: Sequence[str], states: set[int], timeout_s: float = 15.0
) -> list[job_pb2.JobEvent]:
    """Follow the watch stream from the start until every job reached one of *states*."""
    pending = set(job_ids)
    seen: list[job_pb2.JobEvent] = []

    async def follow() -> None:
        call = api.jobs.WatchJobs(
            scheduler_pb2.WatchJobsRequest(job_ids=list(job_ids), since_sequence=0)
        )
        async for event in call:
            seen.append(event)
            if event.to_state in states:
                pending.discard(event.job_id)
            if not pending:
                call.cancel()
                return

    await asyncio.wait_for(follow(), timeout_s)
    return seen


def bad_request(err: grpc.aio.AioRpcError) -> dict[str, str]:
    """The google.rpc.BadRequest field violations carried by *err*."""
    metadata = dict(cast("Iterable[tuple[str, str | bytes]]", err.trailing_metadata() or ()))
    raw = metadata.get("grpc-status-details-bin")
    assert raw, "no rich status details"
    status = status_pb2.Status.FromString(raw)
    out = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            detail.Unpack(br)
            out.update({v.field: v.description for v in br.field_violations})
    return out


async def test_pin_is_published_and_its_life_streamed(api: Api, sandbox: Sandbox) -> None:
    """A pin due now goes PENDING → QUEUED → SUBMITTED → DELIVERED, and lands once on Pinterest."""
    await api.create_account()
    job = await api.jobs.SchedulePin(
        api.pin_request(at=soon(), title="First pin", description="d", link="https://x.test/p")
    )
    assert job.state == J.STATE_PENDING
    assert job.version == 1
    events = await wait_states(api, [job.id], {J.STATE_DELIVERED})
    assert [(e.from_state, e.to_state) for e in events] == [
        (J.STATE_UNSPECIFIED, J.STATE_PENDING),
        (J.STATE_PENDING, J.STATE_QUEUED),
        (J.STATE_QUEUED, J.STATE_SUBMITTED),
        (J.STATE_SUBMITTED, J.STATE_DELIVERED),
    ]
    assert [e.sequence for e in events] == sorted({e.sequence for e in events})
    got = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
    assert got.state == J.STATE_DELIVERED
    assert got.attempts == 1
    assert got.version == 4
    assert [h.to_state for h in got.history] == [
        J.STATE_PENDING,
        J.STATE_QUEUED,
        J.STATE_SUBMITTED,
        J.STATE_DELIVERED,
    ]
    pins = sandbox.pins()
    assert len(pins) == 1
    assert pins[0]["id"] == got.pinterest_pin_id
    assert (pins[0]["title"], pins[0]["description"], pins[0]["link"], pins[0]["board_id"]) == (
        "First pin",
        "d",
        "https://x.test/p",
        "1001",
    )
    assert got.HasField("late_by")


async def test_request_id_is_idempotent(api: Api, sandbox: Sandbox) -> None:
    """The same request_id with the same content returns the same job; other content is
    ALREADY_EXISTS."""
    await api.create_account()
    req = api.pin_request(at=soon(3600), request_id="req-1")
    first = await api.jobs.SchedulePin(req)
    again = await api.jobs.SchedulePin(req)
    assert again.id == first.id
    req.pin.title = "changed"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.SchedulePin(req)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    listed = await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest())
    assert len(listed.jobs) == 1


async def test_batch_is_atomic_and_names_the_item(api: Api) -> None:
    """A batch with one bad item schedules nothing and names `requests[1].pin.title`."""
    await api.create_account()
    good = api.pin_request(at=soon(3600))
    bad = api.pin_request(at=soon(3600), title="x" * 101)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.BatchSchedulePins(
            scheduler_pb2.BatchSchedulePinsRequest(requests=[good, bad])
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "requests[1].pin.title" in bad_request(err.value)
    assert not (await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest())).jobs
    ok = await api.jobs.BatchSchedulePins(
        scheduler_pb2.BatchSchedulePinsRequest(
            requests=[api.pin_request(at=soon(3600), title=f"t{i}") for i in range(50)]
        )
    )
    assert [j.pin.title for j in ok.jobs] == [f"t{i}" for i in range(50)]


async def test_malformed_requests_name_every_bad_field(api: Api) -> None:
    """An empty SchedulePin request is INVALID_ARGUMENT naming account, pin and time, never
    UNKNOWN or INTERNAL."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.SchedulePin(scheduler_pb2.SchedulePinRequest())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = bad_request(err.value)
    assert {"account_id", "pin", "scheduled_at"} <= set(fields)
    req = api.pin_request(at=soon(60), board_id="abc", link="ftp://x", alt_text="a" * 501)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.SchedulePin(req)
    assert {"pin.board_id", "pin.link", "pin.alt_text"} <= set(bad_request(err.value))
    for call in (
        api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id="nope")),
        api.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id="nope")),
        api.accounts.GetAccount(account_pb2.GetAccountRequest(account_id="nope")),
        api.jobs.SchedulePin(api.pin_request(at=soon(60), account_id="ghost")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest(page_token="garbage!"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_cancel_before_submission_never_reaches_pinterest(api: Api, sandbox: Sandbox) -> None:
    """A cancelled pending job is CANCELLED, leaves the queue, and nothing is posted."""
    await api.create_account()
    job = await api.jobs.SchedulePin(api.pin_request(at=soon(1.0)))
    cancelled = await api.jobs.CancelJob(
        scheduler_pb2.CancelJobRequest(job_id=job.id, expected_version=1)
    )
    assert cancelled.state == J.STATE_CANCELLED
    again = await api.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=job.id))
    assert again.state == J.STATE_CANCELLED
    assert again.version == cancelled.version
    marker = await api.jobs.SchedulePin(api.pin_request(at=soon(1.0), title="marker"))
    await wait_states(api, [marker.id], {J.STATE_DELIVERED})
    assert [p["title"] for p in sandbox.pins()] == ["marker"]


async def test_cancel_with_stale_version_is_aborted(api: Api) -> None:
    """CancelJob with an old expected_version is ABORTED and changes nothing."""
    await api.create_account()
    job = await api.jobs.SchedulePin(api.pin_request(at=soon(3600)))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=job.id, expected_version=7))
    assert err.value.code() == grpc.StatusCode.ABORTED
    got = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
    assert got.state == J.STATE_PENDING


async def test_list_jobs_pages_without_gaps(api: Api) -> None:
    """25 jobs listed 10 at a time come back as 3 pages with every job exactly once."""
    await api.create_account()
    await api.create_account("other")
    ids = set()
    for i in range(25):
        ids.add((await api.jobs.SchedulePin(api.pin_request(at=soon(3600), title=str(i)))).id)
    await api.jobs.SchedulePin(api.pin_request(at=soon(3600), account_id="other"))
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await api.jobs.ListJobs(
            scheduler_pb2.ListJobsRequest(account_id="acme", page_size=10, page_token=token)
        )
        pages += 1
        seen.extend(j.id for j in page.jobs)
        token = page.next_page_token
        if not token:
            break
    assert pages == 3
    assert len(seen) == 25
    assert set(seen) == ids
    assert seen == sorted(seen, reverse=True)
    none = await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest(states=[J.STATE_DELIVERED]))
    assert not none.jobs


async def test_watch_resumes_from_a_sequence_with_exactly_the_missed_events(api: Api) -> None:
    """Reconnecting with since_sequence replays exactly the events after it, then live ones."""
    await api.create_account()
    jobs = [await api.jobs.SchedulePin(api.pin_request(at=soon(), title=f"w{i}")) for i in range(3)]
    ids = [j.id for j in jobs]
    everything = await wait_states(api, ids, {J.STATE_DELIVERED})
    cut = everything[4].sequence
    call = api.jobs.WatchJobs(scheduler_pb2.WatchJobsRequest(since_sequence=cut))
    resumed: list[int] = []
    expected = [e.sequence for e in everything if e.sequence > cut]
    while len(resumed) < len(expected):
        resumed.append((await asyncio.wait_for(call.read(), 5)).sequence)
    assert resumed == expected
    late = await api.jobs.SchedulePin(api.pin_request(at=soon(3600), title="live"))
    event = await asyncio.wait_for(call.read(), 5)
    assert event.job_id == late.id
    assert event.sequence > expected[-1]
    call.cancel()


async def test_watch_filters_by_account_and_state(api: Api) -> None:
    """A watch filtered on an account and a state sees only those events."""
    await api.create_account()
    await api.create_account("other")
    call = api.jobs.WatchJobs(
        scheduler_pb2.WatchJobsRequest(account_id="other", states=[J.STATE_DELIVERED])
    )
    await api.jobs.SchedulePin(api.pin_request(at=soon()))
    theirs = await api.jobs.SchedulePin(api.pin_request(at=soon(), account_id="other"))
    event = await asyncio.wait_for(call.read(), 10)
    assert (event.job_id, event.to_state) == (theirs.id, J.STATE_DELIVERED)
    assert event.job.pinterest_pin_id
    call.cancel()


async def test_rejected_pin_is_permanently_failed_with_pinterest_code(api: Api) -> None:
    """A board the account does not own ends PERMANENTLY_FAILED with code 40, not retried."""
    await api.create_account()
    job = await api.jobs.SchedulePin(api.pin_request(at=soon(), board_id="999"))
    await wait_states(api, [job.id], {J.STATE_PERMANENTLY_FAILED})
    got = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
    assert got.attempts == 1
    assert (got.last_error.http_status, got.last_error.pinterest_code) == (404, 40)
    assert got.last_error.category == job_pb2.JobError.CATEGORY_REJECTED
    assert not got.last_error.retryable


async def test_accounts_crud_never_returns_tokens(api: Api) -> None:
    """Accounts are created, read, listed, updated and deleted; tokens are never returned."""
    created = await api.create_account("acme", writes_per_minute=50)
    assert created.id == "acme"
    assert created.has_refresh_token
    assert not created.access_token
    assert not created.refresh_token
    assert created.pacing.writes_per_minute == 50
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.create_account("acme")
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.create_account("Bad Id!")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    paused = await api.update_account(account_pb2.Account(id="acme", paused=True), "paused")
    assert paused.state == account_pb2.Account.STATE_PAUSED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.update_account(account_pb2.Account(id="acme"), "id")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    listed = await api.accounts.ListAccounts(account_pb2.ListAccountsRequest())
    assert [a.id for a in listed.accounts] == ["acme"]
    assert ACCESS not in str(listed)
    assert REFRESH not in str(listed)
    await api.jobs.SchedulePin(api.pin_request(at=soon(3600)))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.accounts.DeleteAccount(account_pb2.DeleteAccountRequest(account_id="acme"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await api.accounts.DeleteAccount(
        account_pb2.DeleteAccountRequest(account_id="acme", force=True)
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.accounts.GetAccount(account_pb2.GetAccountRequest(account_id="acme"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_paused_account_holds_jobs_until_resumed(make_daemon: Callable[..., Daemon]) -> None:
    """Jobs of a paused account that fall due are held (not attempted, not failed) and go out
    on resume."""
    clock = FakeClock()
    sandbox = await start_sandbox(clock)
    daemon = make_daemon(clock=clock, base_url=sandbox.base_url)
    api = await Api.open(daemon)
    try:
        await api.create_account()
        await api.update_account(account_pb2.Account(id="acme", paused=True), "paused")
        job = await api.jobs.SchedulePin(api.pin_request(at=clock.now() + timedelta(minutes=1)))
        await clock.advance(120)
        await asyncio.wait_for(daemon.activity.idle.wait(), 5)
        assert job.id in daemon.scheduler.held.get("acme", set())
        assert not sandbox.pins()
        got = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
        assert got.state == J.STATE_PENDING
        await api.update_account(account_pb2.Account(id="acme", paused=False), "paused")
        await clock.advance(1)
        await wait_states(api, [job.id], {J.STATE_DELIVERED})
        assert len(sandbox.pins()) == 1
    finally:
        await api.close()
        await sandbox.stop()


async def test_preview_persists_nothing(api: Api) -> None:
    """PreviewSchedule returns the planned time and stores no job."""
    await api.create_account()
    at = soon(7200).replace(microsecond=0)
    req = api.pin_request(at=at)
    preview = scheduler_pb2.PreviewScheduleRequest(
        account_id="acme", pin=req.pin, scheduled_at=req.scheduled_at
    )
    preview.delivery_window.FromTimedelta(timedelta(hours=1))
    out = await api.jobs.PreviewSchedule(preview)
    assert out.planned_at.ToDatetime() >= at.replace(tzinfo=None)
    assert out.window_end.ToDatetime() == (at + timedelta(hours=1)).replace(tzinfo=None)
    assert not (await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest())).jobs
