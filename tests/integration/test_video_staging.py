"""Video staging end to end on a FakeClock: a real daemon (SQLite file, gRPC on loopback), the
sandbox standing in for Pinterest (its media processing on the same clock) and a loopback
server the `video_url` is downloaded from."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from google.protobuf import field_mask_pb2

from pinsched.app import Daemon
from pinsched.sandbox import FaultRule, Sandbox
from pinsched.testing import FakeClock
from pinsched.v1 import job_pb2, media_pb2, media_pb2_grpc, scheduler_pb2
from tests.conftest import Api, start_sandbox

J = job_pb2.Job
M = job_pb2.JobMedia
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64


@pytest.fixture
async def video_server() -> AsyncIterator[str]:
    """A loopback server: /v.mp4 is a video, /page.html is not, /gone is a 404."""

    async def video(request: web.Request) -> web.Response:
        return web.Response(body=VIDEO, content_type="video/mp4")

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/v.mp4", video)
    app.router.add_get("/page.html", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))


@pytest.fixture
async def sb(clock: FakeClock) -> AsyncIterator[Sandbox]:
    """A sandbox on *clock* whose video processing takes 5 minutes."""
    sandbox = await start_sandbox(clock)
    sandbox.state.media.configure(processing_s=300)
    try:
        yield sandbox
    finally:
        await sandbox.stop()


@pytest.fixture
def new_daemon(
    make_daemon: Callable[..., Daemon], clock: FakeClock, sb: Sandbox
) -> Callable[..., Daemon]:
    """conftest's `make_daemon` on *clock* and the video sandbox `sb`."""

    def make(**overrides: Any) -> Daemon:
        settings: dict[str, Any] = {
            "http_listen": None,
            "request_timeout_s": 5.0,
            "shutdown_grace_s": 1.0,
            "token_keeper": False,
        }
        return make_daemon(clock, base_url=sb.base_url, **{**settings, **overrides})

    return make


async def drive(clock: FakeClock, api: Api, until: datetime) -> None:
    """Let the daemon work, moving the clock sleeper by sleeper up to *until*."""
    while True:
        await api.daemon.activity.idle.wait()
        for _ in range(5):  # a sleep handed to a new task registers when that task first runs
            await asyncio.sleep(0)
        if not api.daemon.activity.idle.is_set():
            continue  # woken meanwhile (a task resumed by an event, not by the clock)
        nxt = clock.next_deadline()
        left = (until - clock.now()).total_seconds()
        if nxt is None or nxt > left:
            await clock.advance(max(0.0, left))
            await api.daemon.activity.idle.wait()
            return
        await clock.advance(nxt)


def video_request(
    api: Api, at: datetime, *, url: str = "", asset_id: str = ""
) -> scheduler_pb2.SchedulePinRequest:
    req = api.pin_request(at=at)
    source = job_pb2.MediaSource()
    if asset_id:
        source.video_asset.asset_id = asset_id
        source.video_asset.cover_image_key_frame_time = 2
    else:
        source.video_url.url = url
        source.video_url.cover_image_url = "https://example.com/cover.jpg"
    req.pin.media_source.CopyFrom(source)
    return req


async def get(api: Api, job_id: str) -> job_pb2.Job:
    return await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job_id))


def registrations(sb: Sandbox) -> list[int]:
    return [r.status for r in sb.requests if r.method == "POST" and r.path == "/v5/media"]


async def test_video_url_is_staged_ahead_and_published_on_time(
    new_daemon: Callable[..., Daemon],
    sb: Sandbox,
    clock: FakeClock,
    video_server: str,
) -> None:
    """A video_url pin is staged 2 h ahead (processing takes 5 min of clock time), is READY
    well before planned_at, and is published at planned_at with late_by under a second, as a
    video_id pin with the staged media id."""
    api = await Api.open(new_daemon())
    try:
        await api.create_account()
        planned = clock.now() + timedelta(hours=3)
        job = await api.jobs.SchedulePin(video_request(api, planned, url=f"{video_server}/v.mp4"))
        assert not job.HasField("media")
        await drive(clock, api, planned - timedelta(hours=2, seconds=1))
        assert registrations(sb) == []  # not before planned_at - media_lead_time_s
        await drive(clock, api, planned - timedelta(hours=1))
        staged = await api.get(job.id)
        assert staged.state == J.STATE_PENDING
        assert staged.media.state == M.STATE_READY
        media_id = staged.media.pinterest_media_id
        assert registrations(sb) == [201]
        assert sb.state.media.uploads == [media_id]
        assert (
            sb.state.media.items[media_id].sha256 == __import__("hashlib").sha256(VIDEO).hexdigest()
        )
        reasons = [h.reason for h in staged.history]
        assert any(r.startswith("media ready:") for r in reasons)
        await drive(clock, api, planned + timedelta(seconds=5))
        done = await api.get(job.id)
        assert done.state == J.STATE_DELIVERED
        assert done.late_by.ToTimedelta() < timedelta(seconds=1)
        (pin,) = sb.pins()
        assert pin["media"]["media_type"] == "video"
        assert done.pin.media_source.video_url.url == f"{video_server}/v.mp4"
    finally:
        await api.close()


async def test_failed_processing_fails_the_job_before_planned_at(
    new_daemon: Callable[..., Daemon],
    sb: Sandbox,
    clock: FakeClock,
    video_server: str,
) -> None:
    """When Pinterest's processing fails, the job is PERMANENTLY_FAILED (category MEDIA) with
    the reason, long before planned_at, and no pin is attempted."""
    sb.state.media.configure(fail=True)
    api = await Api.open(new_daemon())
    try:
        await api.create_account()
        planned = clock.now() + timedelta(hours=3)
        job = await api.jobs.SchedulePin(video_request(api, planned, url=f"{video_server}/v.mp4"))
        await drive(clock, api, planned - timedelta(hours=1))
        failed = await api.get(job.id)
        assert failed.state == J.STATE_PERMANENTLY_FAILED
        assert failed.last_error.category == job_pb2.JobError.CATEGORY_MEDIA
        assert "processing" in failed.last_error.message
        assert failed.media.state == M.STATE_FAILED
        assert failed.update_time.ToDatetime(tzinfo=UTC) < planned
        await drive(clock, api, planned + timedelta(minutes=1))
        assert sb.pins() == []
    finally:
        await api.close()


async def test_a_refused_video_url_fails_the_job(
    new_daemon: Callable[..., Daemon],
    sb: Sandbox,
    clock: FakeClock,
    video_server: str,
) -> None:
    """A video URL that answers something other than a video fails the job (category MEDIA)
    at staging time, saying why, without registering anything with Pinterest."""
    api = await Api.open(new_daemon(media_lead_time_s=0))
    try:
        await api.create_account()
        planned = clock.now() + timedelta(minutes=1)
        job = await api.jobs.SchedulePin(
            video_request(api, planned, url=f"{video_server}/page.html")
        )
        await drive(clock, api, planned + timedelta(seconds=30))
        failed = await api.get(job.id)
        assert failed.state == J.STATE_PERMANENTLY_FAILED
        assert "content_type" in failed.last_error.message
        assert registrations(sb) == []
    finally:
        await api.close()


async def test_a_video_that_stays_unreachable_fails_at_the_retry_deadline(
    new_daemon: Callable[..., Daemon],
    sb: Sandbox,
    clock: FakeClock,
    video_server: str,
) -> None:
    """Pinterest's media registration answers 503 for good: staging retries with backoff until
    the job's retry deadline (`retry_until`), then the job is PERMANENTLY_FAILED saying why,
    instead of waiting for its video forever."""
    sb.add_fault(FaultRule(kind="status", status=503, method="POST", path_prefix="/v5/media"))
    api = await Api.open(new_daemon(media_lead_time_s=0))
    try:
        await api.create_account()
        planned = clock.now() + timedelta(minutes=1)
        job = await api.jobs.SchedulePin(video_request(api, planned, url=f"{video_server}/v.mp4"))
        until = job.retry_until.ToDatetime(tzinfo=UTC)
        await drive(clock, api, until - timedelta(minutes=5))
        waiting = await api.get(job.id)
        assert waiting.state == J.STATE_PENDING
        assert len(registrations(sb)) > 10  # retried all along, with backoff
        why = await api.jobs.ExplainJob(scheduler_pb2.ExplainJobRequest(job_id=job.id))
        assert why.phase == scheduler_pb2.JobExplanation.PHASE_STAGING_MEDIA
        assert why.summary.startswith("Staging its video on Pinterest since ")
        assert "its planned time has passed" in why.summary
        await drive(clock, api, until + timedelta(hours=1))
        failed = await api.get(job.id)
        assert failed.state == J.STATE_PERMANENTLY_FAILED
        assert failed.media.state == M.STATE_FAILED
        assert sb.pins() == []
    finally:
        await api.close()


async def test_restart_at_each_step_never_registers_or_uploads_twice(
    new_daemon: Callable[..., Daemon],
    sb: Sandbox,
    clock: FakeClock,
    video_server: str,
) -> None:
    """Stopped after staging started, after the registration, and after the upload, the
    daemon resumes each time where it was: one registration, one upload, a pin on time."""
    api = await Api.open(new_daemon())
    planned = clock.now() + timedelta(hours=3)
    start = planned - timedelta(hours=2)
    try:
        await api.create_account()
        job = await api.jobs.SchedulePin(video_request(api, planned, url=f"{video_server}/v.mp4"))
        sb.add_fault(
            FaultRule(kind="status", status=503, method="POST", path_prefix="/v5/media", times=1)
        )
        await drive(clock, api, start + timedelta(seconds=1))
        staged = await api.get(job.id)
        assert (staged.media.state, staged.media.pinterest_media_id) == (M.STATE_STAGING, "")
    finally:
        await api.close()
    sb.add_fault(
        FaultRule(kind="status", status=503, method="GET", path_prefix="/v5/media/", times=1)
    )
    api = await Api.open(new_daemon())
    try:
        await drive(clock, api, clock.now() + timedelta(seconds=1))  # before the retry
        staged = await api.get(job.id)
        assert staged.media.pinterest_media_id
        assert sb.state.media.uploads == []
    finally:
        await api.close()
    api = await Api.open(new_daemon())
    try:
        await drive(clock, api, clock.now() + timedelta(seconds=60))
        assert sb.state.media.uploads == [staged.media.pinterest_media_id]
    finally:
        await api.close()
    api = await Api.open(new_daemon())
    try:
        await drive(clock, api, planned + timedelta(seconds=5))
        done = await api.get(job.id)
        assert done.state == J.STATE_DELIVERED
        assert done.late_by.ToTimedelta() < timedelta(seconds=1)
        assert registrations(sb) == [503, 201]
        assert sb.state.media.uploads == [staged.media.pinterest_media_id]
    finally:
        await api.close()


async def test_uploaded_video_is_staged_and_a_changed_video_is_staged_again(
    new_daemon: Callable[..., Daemon],
    sb: Sandbox,
    clock: FakeClock,
    video_server: str,
) -> None:
    """A video_asset pin is staged from the uploaded bytes; UpdateJob changing the video to a
    URL after it was READY stages the new one (a second registration and upload), and the pin
    goes out on time with the new media id."""
    api = await Api.open(new_daemon())
    try:
        await api.create_account()
        stub = media_pb2_grpc.MediaServiceStub(api.channel)

        async def gen() -> AsyncIterator[media_pb2.UploadMediaRequest]:
            yield media_pb2.UploadMediaRequest(content_type="video/quicktime", data=VIDEO)

        asset = await stub.UploadMedia(gen())
        planned = clock.now() + timedelta(hours=3)
        job = await api.jobs.SchedulePin(video_request(api, planned, asset_id=asset.asset_id))
        await drive(clock, api, planned - timedelta(hours=1, minutes=30))
        first = await api.get(job.id)
        assert first.media.state == M.STATE_READY
        assert sb.state.media.items[first.media.pinterest_media_id].content_type == (
            "video/quicktime"
        )
        change = job_pb2.Job(id=job.id)
        change.pin.media_source.video_url.url = f"{video_server}/v.mp4"
        change.pin.media_source.video_url.cover_image_key_frame_time = 3
        updated = await api.jobs.UpdateJob(
            scheduler_pb2.UpdateJobRequest(
                job=change, update_mask=field_mask_pb2.FieldMask(paths=["pin.media_source"])
            )
        )
        assert not updated.HasField("media")  # the old video's record is gone with it
        await drive(clock, api, planned - timedelta(hours=1))
        second = await api.get(job.id)
        assert second.media.state == M.STATE_READY
        assert second.media.pinterest_media_id != first.media.pinterest_media_id
        assert registrations(sb) == [201, 201]
        await drive(clock, api, planned + timedelta(seconds=5))
        done = await api.get(job.id)
        assert done.state == J.STATE_DELIVERED
        assert done.late_by.ToTimedelta() < timedelta(seconds=1)
        assert len(sb.state.media.uploads) == 2
    finally:
        await api.close()


async def test_a_job_whose_video_is_late_waits_for_it(
    new_daemon: Callable[..., Daemon],
    sb: Sandbox,
    clock: FakeClock,
    video_server: str,
) -> None:
    """With staging starting only at planned_at (lead time 0), the job waits PENDING for its
    video ("waiting for its video") and is published as soon as processing is done."""
    api = await Api.open(new_daemon(media_lead_time_s=0))
    try:
        await api.create_account()
        planned = clock.now() + timedelta(minutes=10)
        job = await api.jobs.SchedulePin(video_request(api, planned, url=f"{video_server}/v.mp4"))
        await drive(clock, api, planned + timedelta(seconds=60))
        waiting = await api.get(job.id)
        assert waiting.state == J.STATE_PENDING
        assert any(h.reason.startswith("waiting for its video") for h in waiting.history)
        await drive(clock, api, planned + timedelta(minutes=10))
        done = await api.get(job.id)
        assert done.state == J.STATE_DELIVERED
        assert timedelta(minutes=5) <= done.late_by.ToTimedelta() < timedelta(minutes=7)
    finally:
        await api.close()


async def test_restart_after_the_bytes_arrived_does_not_upload_again(
    new_daemon: Callable[..., Daemon],
    sb: Sandbox,
    clock: FakeClock,
    video_server: str,
) -> None:
    """When the upload reached Pinterest but the daemon stopped before recording it, the
    restarted daemon sees the media is no longer `registered` and goes on to poll: the
    bytes are sent once."""
    api = await Api.open(new_daemon())
    planned = clock.now() + timedelta(hours=3)
    try:
        await api.create_account()
        job = await api.jobs.SchedulePin(video_request(api, planned, url=f"{video_server}/v.mp4"))
        sb.add_fault(
            FaultRule(kind="status", status=503, method="GET", path_prefix="/v5/media/", times=1)
        )
        await drive(clock, api, planned - timedelta(hours=2) + timedelta(seconds=1))
        registered = await api.get(job.id)
        media_id = registered.media.pinterest_media_id
        assert media_id
        assert sb.state.media.uploads == []
    finally:
        await api.close()
    item = sb.state.media.items[media_id]  # the upload the stopped daemon had in flight lands
    sb.state.media.upload({"key": item.key, "policy": item.policy}, VIDEO, "video/mp4", clock.now())
    api = await Api.open(new_daemon())
    try:
        await drive(clock, api, planned + timedelta(seconds=5))
        done = await api.get(job.id)
        assert done.state == J.STATE_DELIVERED
        assert done.media.pinterest_media_id == media_id
        assert sb.state.media.uploads == [media_id]
        assert registrations(sb) == [201]
    finally:
        await api.close()
