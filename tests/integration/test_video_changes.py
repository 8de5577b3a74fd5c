"""UpdateJob away from a staged video: the staging record (media id, upload target and its
parameters) goes with it, nothing of it is used afterwards, and the pin goes out as changed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from google.protobuf import field_mask_pb2

from pinsched.app import Daemon
from pinsched.core.video import MediaStage
from pinsched.sandbox import FaultRule, Sandbox
from pinsched.testing import FakeClock
from pinsched.v1 import job_pb2, scheduler_pb2
from tests.conftest import Api
from tests.integration import test_video_staging as staging
from tests.integration.test_video_staging import drive, get, video_request

# The staging tests' fixtures: a FakeClock, a sandbox on it, a daemon factory, a video server.
clock, sb, new_daemon, video_server = (
    staging.clock,
    staging.sb,
    staging.new_daemon,
    staging.video_server,
)

J = job_pb2.Job
M = job_pb2.JobMedia


async def _stored_stage(api: Api, job_id: str) -> MediaStage | None:
    """The job's staging record as the store reads it back from its database."""
    return (await api.daemon.store.get_job(job_id)).media


async def test_a_video_changed_to_an_image_leaves_no_staging_record(
    new_daemon: Callable[..., Daemon],
    sb: Sandbox,
    clock: FakeClock,
    video_server: str,
) -> None:
    """A video registered with Pinterest (upload target stored, bytes not sent) updated to an
    image: the job's media record is gone at once, in the database too, the registered media
    is never uploaded, and the image pin is published on time."""
    api = await Api.open(new_daemon())
    planned = clock.now() + timedelta(hours=3)
    try:
        await api.create_account()
        job = await api.jobs.SchedulePin(video_request(api, planned, url=f"{video_server}/v.mp4"))
        sb.add_fault(
            FaultRule(kind="status", status=503, method="GET", path_prefix="/v5/media/", times=1)
        )
        await drive(clock, api, planned - timedelta(hours=2) + timedelta(seconds=1))
        registered = await get(api, job.id)
        assert registered.media.pinterest_media_id
        assert await _stored_stage(api, job.id) is not None
        change = job_pb2.Job(id=job.id)
        change.pin.media_source.image_url.url = "https://example.com/a.jpg"
        updated = await api.jobs.UpdateJob(
            scheduler_pb2.UpdateJobRequest(
                job=change, update_mask=field_mask_pb2.FieldMask(paths=["pin.media_source"])
            )
        )
        assert not updated.HasField("media")
        assert await _stored_stage(api, job.id) is None
        await drive(clock, api, planned + timedelta(seconds=5))
        done = await get(api, job.id)
        assert done.state == J.STATE_DELIVERED
        assert not done.HasField("media")
        assert done.late_by.ToTimedelta() < timedelta(seconds=1)
        assert sb.state.media.uploads == []  # the old registration was dropped, not finished
    finally:
        await api.close()


async def test_a_cover_change_keeps_the_staged_video(
    new_daemon: Callable[..., Daemon],
    sb: Sandbox,
    clock: FakeClock,
    video_server: str,
) -> None:
    """Changing only the cover of a READY video keeps its staging: no second registration."""
    api = await Api.open(new_daemon())
    planned = clock.now() + timedelta(hours=3)
    try:
        await api.create_account()
        url = f"{video_server}/v.mp4"
        job = await api.jobs.SchedulePin(video_request(api, planned, url=url))
        await drive(clock, api, planned - timedelta(hours=1))
        ready = await get(api, job.id)
        assert ready.media.state == M.STATE_READY
        change = job_pb2.Job(id=job.id)
        change.pin.media_source.video_url.url = url
        change.pin.media_source.video_url.cover_image_key_frame_time = 7
        updated = await api.jobs.UpdateJob(
            scheduler_pb2.UpdateJobRequest(
                job=change, update_mask=field_mask_pb2.FieldMask(paths=["pin.media_source"])
            )
        )
        assert updated.media.pinterest_media_id == ready.media.pinterest_media_id
        await drive(clock, api, planned + timedelta(seconds=5))
        assert (await get(api, job.id)).state == J.STATE_DELIVERED
        assert len(sb.state.media.uploads) == 1
    finally:
        await api.close()
