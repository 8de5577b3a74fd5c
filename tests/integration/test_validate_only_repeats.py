"""`validate_only` with a `request_id` that already names a job answers as the real call would:
the existing job (`created` false), or ALREADY_EXISTS for other content; nothing is persisted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from pinsched.sandbox import Sandbox
from pinsched.v1 import scheduler_pb2
from tests.conftest import Api, soon
from tests.integration.imageserver import serve_images


@pytest.fixture
async def images() -> AsyncIterator[str]:
    """An image server on 127.0.0.1 (see `tests.integration.imageserver`)."""
    async with serve_images() as base:
        yield base


AT = soon(3 * 86400)  # one instant for every request: the same content hashes the same


def _request(
    api: Api, images: str, rid: str, title: str = "Hello"
) -> scheduler_pb2.SchedulePinRequest:
    req = api.pin_request(at=AT, request_id=rid, title=title)
    req.pin.media_source.image_url.url = images + "/a.jpg"
    return req


async def _job_count(api: Api) -> int:
    return len((await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest())).jobs)


async def test_a_known_request_id_answers_the_existing_job(
    api: Api, sandbox: Sandbox, images: str
) -> None:
    """SchedulePin validate_only repeating a scheduled request answers that job itself (its id
    and version), and creates no second job."""
    await api.create_account()
    real = await api.jobs.SchedulePin(_request(api, images, "r-1"))
    check = _request(api, images, "r-1")
    check.validate_only = True
    answered = await api.jobs.SchedulePin(check)
    assert (answered.id, answered.version) == (real.id, real.version)
    again = await api.jobs.SchedulePin(_request(api, images, "r-1"))  # the real repeat agrees
    assert again.id == answered.id
    assert await _job_count(api) == 1


async def test_a_known_request_id_with_other_content_is_already_exists(
    api: Api, images: str
) -> None:
    """validate_only reusing a request_id with other content is ALREADY_EXISTS naming the job,
    exactly as the real call, and nothing is stored."""
    await api.create_account()
    real = await api.jobs.SchedulePin(_request(api, images, "r-2"))
    check = _request(api, images, "r-2", title="Other")
    check.validate_only = True
    with pytest.raises(grpc.aio.AioRpcError) as dry:
        await api.jobs.SchedulePin(check)
    check.validate_only = False
    with pytest.raises(grpc.aio.AioRpcError) as wet:
        await api.jobs.SchedulePin(check)
    assert dry.value.code() is grpc.StatusCode.ALREADY_EXISTS
    assert (dry.value.code(), dry.value.details()) == (wet.value.code(), wet.value.details())
    assert real.id in (dry.value.details() or "")
    assert await _job_count(api) == 1


async def test_a_batch_answers_known_items_and_names_a_reused_id(api: Api, images: str) -> None:
    """BatchSchedulePins validate_only answers a known item with its job (created false) beside
    a new one (no id), and names `requests[i].request_id` for a reused id with other content."""
    await api.create_account()
    real = await api.jobs.SchedulePin(_request(api, images, "r-3"))
    batch = scheduler_pb2.BatchSchedulePinsRequest(
        requests=[_request(api, images, "r-new"), _request(api, images, "r-3")],
        validate_only=True,
    )
    ok = await api.jobs.BatchSchedulePins(batch)
    assert [j.id for j in ok.jobs] == ["", real.id]
    assert list(ok.created) == [False, False]
    bad = scheduler_pb2.BatchSchedulePinsRequest(
        requests=[_request(api, images, "r-new"), _request(api, images, "r-3", title="X")],
        validate_only=True,
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.BatchSchedulePins(bad)
    assert err.value.code() is grpc.StatusCode.ALREADY_EXISTS
    assert "requests[1].request_id 'r-3' was already used for job " + real.id in (
        err.value.details() or ""
    )
    assert await _job_count(api) == 1
