"""UpdateJob and CancelJob across the job's life, checked against what the sandbox holds."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2

from pinsched.sandbox import FaultRule, Sandbox
from pinsched.v1 import job_pb2, scheduler_pb2
from tests.conftest import Api, soon
from tests.integration.test_daemon import wait_states

J = job_pb2.Job


def update(
    job_id: str, paths: list[str], *, version: int = 0, **fields: object
) -> scheduler_pb2.UpdateJobRequest:
    job = job_pb2.Job(id=job_id)
    pin = fields.pop("pin", None)
    if pin is not None:
        job.pin.CopyFrom(pin)  # type: ignore[arg-type]
    for name, value in fields.items():
        getattr(job, name).CopyFrom(value)
    return scheduler_pb2.UpdateJobRequest(
        job=job, update_mask=field_mask_pb2.FieldMask(paths=paths), expected_version=version
    )


async def test_update_pending_changes_pin_and_time_atomically(api: Api) -> None:
    """A PENDING job's title and time change in one version, re-planned, with a history entry."""
    await api.create_account()
    job = await api.jobs.SchedulePin(api.pin_request(at=soon(3600)))
    later = soon(7200).replace(microsecond=0)
    req = update(
        job.id,
        ["pin.title", "scheduled_at"],
        version=job.version,
        pin=job_pb2.Pin(title="new title"),
    )
    req.job.scheduled_at.FromDatetime(later)
    got = await api.jobs.UpdateJob(req)
    assert got.state == J.STATE_PENDING
    assert got.version == job.version + 1
    assert got.pin.title == "new title"
    assert got.pin.board_id == job.pin.board_id
    assert got.planned_at.ToDatetime() == later.replace(tzinfo=None)
    assert got.history[-1].from_state == got.history[-1].to_state == J.STATE_PENDING
    assert "pin.title" in got.history[-1].reason


async def test_update_refuses_bad_masks_and_stale_versions(api: Api) -> None:
    """Unknown paths are INVALID_ARGUMENT, invalid values name the field, stale versions are
    ABORTED; nothing changes."""
    await api.create_account()
    job = await api.jobs.SchedulePin(api.pin_request(at=soon(3600)))
    cases = [
        (update(job.id, ["state"]), grpc.StatusCode.INVALID_ARGUMENT),
        (update(job.id, []), grpc.StatusCode.INVALID_ARGUMENT),
        (
            update(job.id, ["pin.title"], pin=job_pb2.Pin(title="t" * 101)),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            update(job.id, ["pin.title"], version=99, pin=job_pb2.Pin(title="x")),
            grpc.StatusCode.ABORTED,
        ),
        (update("missing", ["pin.title"], pin=job_pb2.Pin(title="x")), grpc.StatusCode.NOT_FOUND),
    ]
    for req, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await api.jobs.UpdateJob(req)
        assert err.value.code() == code, req
    got = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
    assert got.version == job.version


async def test_update_delivered_patches_the_pin_and_refuses_media(
    api: Api, sandbox: Sandbox
) -> None:
    """After delivery a title change is PATCHed on Pinterest; media or time changes are refused."""
    await api.create_account()
    job = await api.jobs.SchedulePin(api.pin_request(at=soon(), title="before"))
    await wait_states(api, [job.id], {J.STATE_DELIVERED})
    got = await api.jobs.UpdateJob(
        update(
            job.id,
            ["pin.title", "pin.description"],
            pin=job_pb2.Pin(title="after", description="d2"),
        )
    )
    assert got.state == J.STATE_DELIVERED
    assert got.remote_update.state in (
        job_pb2.RemoteUpdate.STATE_PENDING,
        job_pb2.RemoteUpdate.STATE_APPLIED,
    )
    call = api.jobs.WatchJobs(scheduler_pb2.WatchJobsRequest(job_ids=[job.id], since_sequence=0))
    while True:
        event = await asyncio.wait_for(call.read(), 10)
        if event.reason == "pin updated on Pinterest":
            break
    call.cancel()
    (pin,) = sandbox.pins()
    assert (pin["title"], pin["description"]) == ("after", "d2")
    got = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
    assert got.remote_update.state == job_pb2.RemoteUpdate.STATE_APPLIED
    for paths in (["pin.media_source"], ["scheduled_at"]):
        req = update(
            job.id,
            paths,
            pin=job_pb2.Pin(
                media_source=job_pb2.MediaSource(
                    image_url=job_pb2.ImageUrl(url="https://example.com/b.jpg")
                )
            ),
        )
        req.job.scheduled_at.FromDatetime(soon(3600))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await api.jobs.UpdateJob(req)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "cancel" in (err.value.details() or "")


async def test_cancel_delivered_deletes_the_pin(api: Api, sandbox: Sandbox) -> None:
    """Cancelling a delivered job goes CANCELLING → CANCELLED and the pin is gone."""
    await api.create_account()
    job = await api.jobs.SchedulePin(api.pin_request(at=soon()))
    await wait_states(api, [job.id], {J.STATE_DELIVERED})
    assert len(sandbox.pins()) == 1
    got = await api.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=job.id))
    assert got.state in (J.STATE_CANCELLING, J.STATE_CANCELLED)
    await wait_states(api, [job.id], {J.STATE_CANCELLED})
    assert sandbox.pins() == []


async def test_cancel_while_submitted_deletes_the_pin_that_lands(
    api: Api, sandbox: Sandbox
) -> None:
    """A cancel recorded while SUBMITTED is carried out when the pin lands: it is deleted."""
    await api.create_account()
    sandbox.add_fault(FaultRule(kind="latency", latency_ms=800, times=1))
    job = await api.jobs.SchedulePin(api.pin_request(at=soon()))
    await wait_states(api, [job.id], {J.STATE_SUBMITTED})
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.UpdateJob(update(job.id, ["pin.title"], pin=job_pb2.Pin(title="x")))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    got = await api.jobs.CancelJob(scheduler_pb2.CancelJobRequest(job_id=job.id))
    assert got.state == J.STATE_SUBMITTED
    assert got.cancel_requested
    events = await wait_states(api, [job.id], {J.STATE_CANCELLED})
    assert [e.to_state for e in events][-2:] == [J.STATE_CANCELLING, J.STATE_CANCELLED]
    assert sandbox.pins() == []


async def test_update_queued_time_sends_it_back_to_pending(api: Api, sandbox: Sandbox) -> None:
    """Moving the time of a job held in the dispatcher's queue returns it to PENDING and it is
    published at the new time only."""
    await api.create_account(min_spacing=job_pb2.Job().delivery_window.__class__(seconds=3600))
    first = await api.jobs.SchedulePin(api.pin_request(at=soon(), title="first"))
    second = await api.jobs.SchedulePin(api.pin_request(at=soon(), title="second"))
    await wait_states(api, [first.id], {J.STATE_DELIVERED})
    await wait_states(api, [second.id], {J.STATE_QUEUED})
    req = update(second.id, ["scheduled_at"])
    req.job.scheduled_at.FromDatetime(soon(timedelta(days=1).total_seconds()))
    got = await api.jobs.UpdateJob(req)
    assert got.state == J.STATE_PENDING
    assert [p["title"] for p in sandbox.pins()] == ["first"]
