"""`validate_only` checks a `video_id` media id with `GET /v5/media/{media_id}`: the account's
own media, processed or processing; anything else names the field and Pinterest's answer."""

from __future__ import annotations

import grpc
import pytest

from pinsched.sandbox import Sandbox
from pinsched.v1 import job_pb2, scheduler_pb2
from tests.conftest import Api, soon


def _video_request(api: Api, media_id: str) -> scheduler_pb2.SchedulePinRequest:
    req = api.pin_request(at=soon(3600))
    req.pin.media_source.CopyFrom(
        job_pb2.MediaSource(
            video_id=job_pb2.VideoId(media_id=media_id, cover_image_key_frame_time=1)
        )
    )
    req.validate_only = True
    return req


@pytest.mark.parametrize("status", ["succeeded", "processing"])
async def test_a_usable_media_id_passes(api: Api, sandbox: Sandbox, status: str) -> None:
    """The account's media that Pinterest processed (or is processing) passes the checks."""
    await api.create_account()
    sandbox.state.media.add("acme", "71", sandbox.now(), status=status)
    job = await api.jobs.SchedulePin(_video_request(api, "71"))
    assert (job.id, job.pin.media_source.video_id.media_id) == ("", "71")


CASES = [
    ("failed", "acme", "failed Pinterest's processing: Pinterest answered status 'failed'"),
    ("registered", "acme", "was never uploaded: Pinterest answered status 'registered'"),
    ("succeeded", "someone_else", "Pinterest answered HTTP 404, code 404: Media not found."),
    (None, "", "Pinterest answered HTTP 404, code 404: Media not found."),
]


@pytest.mark.parametrize(
    ("status", "owner", "words"), CASES, ids=["failed", "registered", "not-theirs", "unknown"]
)
async def test_an_unusable_media_id_names_the_field_and_the_answer(
    api: Api, sandbox: Sandbox, status: str | None, owner: str, words: str
) -> None:
    """A failed, never uploaded, another user's or unknown media id is INVALID_ARGUMENT naming
    pin.media_source.video_id.media_id with Pinterest's answer; nothing is stored."""
    await api.create_account()
    if status is not None:
        sandbox.state.media.add(owner, "72", sandbox.now(), status=status)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.SchedulePin(_video_request(api, "72"))
    details = err.value.details() or ""
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "pin.media_source.video_id.media_id: media 72 " in details
    assert words in details
    listed = await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest())
    assert list(listed.jobs) == []
