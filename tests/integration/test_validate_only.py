"""`validate_only` on SchedulePin, BatchSchedulePins and UpdateJob: every remote check against
the sandbox and an image server on 127.0.0.1, one test per failing check, nothing persisted."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import grpc
import pytest
from google.protobuf import field_mask_pb2

from pinsched.app import Daemon
from pinsched.sandbox import Sandbox
from pinsched.sandbox.faults import FaultRule
from pinsched.v1 import job_pb2, scheduler_pb2
from tests.conftest import ACCESS, Api, soon
from tests.integration.imageserver import serve_images


@pytest.fixture
async def images() -> AsyncIterator[str]:
    """An image server on 127.0.0.1 (see `tests.integration.imageserver`)."""
    async with serve_images() as base:
        yield base


def _request(
    api: Api, images: str, *, image: str = "/a.jpg", **pin: Any
) -> scheduler_pb2.SchedulePinRequest:
    req = api.pin_request(at=soon(3600), **pin)
    req.pin.media_source.image_url.url = images + image
    req.validate_only = True
    return req


async def _refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value


async def _nothing_persisted(api: Api, sandbox: Sandbox) -> None:
    listed = await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest())
    assert list(listed.jobs) == []
    assert sandbox.pins() == []


async def test_a_valid_request_answers_the_job_and_persists_nothing(
    api: Api, sandbox: Sandbox, images: str
) -> None:
    """Every check passes: the answer is the job that would be created (no id, its planned
    time), over gRPC and HTTP, and no job exists afterwards."""
    await api.create_account()
    sandbox.add_section("1001", "55")
    req = _request(api, images, board_section_id="55")
    job = await api.jobs.SchedulePin(req)
    assert job.id == ""
    assert job.state == job_pb2.Job.STATE_PENDING
    assert job.planned_at == req.scheduled_at
    body = {
        "account_id": "acme",
        "validate_only": True,
        "scheduled_at": req.scheduled_at.ToJsonString(),
        "pin": {"board_id": "1001", "media_source": {"image_url": {"url": images + "/a.jpg"}}},
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{api.daemon.http_port}/v1/jobs", json=body) as resp,
    ):
        assert resp.status == 200
        assert (await resp.json())["id"] == ""
    await _nothing_persisted(api, sandbox)


CASES = [
    (
        {"board_id": "999"},
        "/a.jpg",
        "pin.board_id",
        "Pinterest answered HTTP 404, code 40: Board not found.",
    ),
    ({"board_section_id": "77"}, "/a.jpg", "pin.board_section_id", "has no section 77"),
    ({}, "/nope.jpg", "pin.media_source.image_url.url", "answers HTTP 404"),
    ({}, "/page.html", "pin.media_source.image_url.url", "is text/html, not an image"),
    ({}, "/big.jpg", "pin.media_source.image_url.url", "over Pinterest's limit"),
    ({}, "/hop", "pin.media_source.image_url.url", "169.254.169.254 is a cloud metadata"),
]


@pytest.mark.parametrize(
    ("pin", "image", "field", "words"),
    CASES,
    ids=["board", "section", "image-404", "not-image", "too-big", "metadata-redirect"],
)
async def test_each_failing_check_names_its_field(
    api: Api, sandbox: Sandbox, images: str, pin: dict[str, str], image: str, field: str, words: str
) -> None:
    """A failing remote check is INVALID_ARGUMENT naming the field with Pinterest's or the
    host's answer, and nothing is persisted."""
    await api.create_account()
    err = await _refused(api.jobs.SchedulePin(_request(api, images, image=image, **pin)))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert f"{field}: " in (err.details() or "")
    assert words in (err.details() or "")
    await _nothing_persisted(api, sandbox)


async def test_a_link_local_image_host_is_never_fetched(api: Api, images: str) -> None:
    """An image URL naming a link-local address is refused without a connection."""
    await api.create_account()
    req = _request(api, images)
    req.pin.media_source.image_url.url = "http://169.254.10.1/a.jpg"
    err = await _refused(api.jobs.SchedulePin(req))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "link-local" in (err.details() or "")


async def test_refused_credentials_are_a_failed_precondition(
    make_daemon: Callable[..., Daemon], sandbox: Sandbox, images: str
) -> None:
    """A token Pinterest refuses is FAILED_PRECONDITION naming account_id and quoting it. (No
    token keeper: its first look at a new account, answered 401 after the token expired,
    would refresh the token before the check is made.)"""
    api = await Api.open(make_daemon(token_keeper=False))
    try:
        await api.create_account()
        sandbox.expire_access_token(ACCESS)
        err = await _refused(api.jobs.SchedulePin(_request(api, images)))
        assert err.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "account_id: Pinterest refuses the account's access token" in (err.details() or "")
        assert "HTTP 401" in (err.details() or "")
    finally:
        await api.close()


async def test_pinterest_unreachable_is_unavailable(
    api: Api, sandbox: Sandbox, images: str
) -> None:
    """When Pinterest cannot be asked the checks are UNAVAILABLE, not a verdict on the pin."""
    await api.create_account()
    sandbox.add_fault(
        FaultRule(kind="status", status=503, method="GET", path_prefix="/v5/user_account")
    )
    err = await _refused(api.jobs.SchedulePin(_request(api, images)))
    assert err.code() is grpc.StatusCode.UNAVAILABLE
    assert "could not check the credentials" in (err.details() or "")


async def test_batch_names_the_item_and_the_extra_boards(
    api: Api, sandbox: Sandbox, images: str
) -> None:
    """In a batch every failing check of every item is reported under `requests[i]`, an extra
    board under `also_boards[k]`; a valid batch answers its jobs, created none."""
    await api.create_account()
    good = _request(api, images)
    bad = _request(api, images, image="/page.html")
    group = _request(api, images)
    group.also_boards.append("4242")
    group.board_interval.seconds = 7 * 86400
    err = await _refused(
        api.jobs.BatchSchedulePins(
            scheduler_pb2.BatchSchedulePinsRequest(requests=[good, bad, group], validate_only=True)
        )
    )
    details = err.details() or ""
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "requests[1].pin.media_source.image_url.url: " in details
    assert "requests[2].also_boards[0]: board 4242" in details
    assert "requests[0]" not in details
    ok = await api.jobs.BatchSchedulePins(
        scheduler_pb2.BatchSchedulePinsRequest(requests=[good, good], validate_only=True)
    )
    assert [j.id for j in ok.jobs] == ["", ""]
    assert list(ok.created) == [False, False]
    await _nothing_persisted(api, sandbox)


async def test_update_job_validate_only_changes_nothing(
    api: Api, sandbox: Sandbox, images: str
) -> None:
    """UpdateJob with validate_only answers the updated job without storing it, and names a
    board that is not the account's under job.pin.board_id."""
    await api.create_account()
    req = _request(api, images)
    req.validate_only = False
    job = await api.jobs.SchedulePin(req)

    def update(**fields: str) -> scheduler_pb2.UpdateJobRequest:
        pin = job_pb2.Pin()
        for name, value in fields.items():
            setattr(pin, name, value)
        return scheduler_pb2.UpdateJobRequest(
            job=job_pb2.Job(id=job.id, pin=pin),
            validate_only=True,
            update_mask=field_mask_pb2.FieldMask(paths=[f"pin.{k}" for k in fields]),
        )

    answered = await api.jobs.UpdateJob(update(title="New"))
    assert answered.pin.title == "New"
    stored = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
    assert (stored.pin.title, stored.version) == (job.pin.title, job.version)
    err = await _refused(api.jobs.UpdateJob(update(board_id="999")))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "job.pin.board_id: board 999" in (err.details() or "")


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


async def test_the_command_line_checks_without_scheduling(
    api: Api, sandbox: Sandbox, images: str
) -> None:
    """`pinsched schedule --validate-only` says the checks passed and schedules nothing; a
    board that is not the account's fails naming --board with Pinterest's answer;
    `update --validate-only` changes nothing."""
    await api.create_account()
    base = [
        "--account",
        "acme",
        "--image-url",
        f"{images}/a.jpg",
        "--at",
        soon(3600).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "--validate-only",
    ]
    code, out, err = await _cli(api, "schedule", "--board", "1001", *base)
    assert code == 0, err
    assert "every check passed" in out
    await _nothing_persisted(api, sandbox)
    code, out, err = await _cli(api, "schedule", "--board", "999", *base)
    assert code != 0
    assert "INVALID_ARGUMENT: --board: board 999 is not one of the account's boards" in err
    assert "Board not found" in err
    req = _request(api, images)
    req.validate_only = False
    job = await api.jobs.SchedulePin(req)
    code, out, err = await _cli(api, "update", job.id, "--title", "Other", "--validate-only")
    assert code == 0, err
    assert "Other" in out
    stored = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
    assert stored.pin.title == job.pin.title
