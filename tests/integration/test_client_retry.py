"""AsyncClient against a scripted gRPC server on loopback: retries, watch resumption, metadata
and error details, with failures injected exactly where each test needs them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from pinsched.v1 import job_pb2, scheduler_pb2, scheduler_pb2_grpc
from pinsched_client import AsyncClient, Client, error_details, pin
from pinsched_client.errors import DETAILS_KEY

J = job_pb2.Job


class ScriptedScheduler(scheduler_pb2_grpc.PinSchedulerServicer):
    """A PinScheduler that records every call and fails as the test scripts it."""

    def __init__(self) -> None:
        self.schedule_calls: list[tuple[scheduler_pb2.SchedulePinRequest, dict[str, Any]]] = []
        self.schedule_failures: list[grpc.StatusCode] = []
        self.watch_calls: list[scheduler_pb2.WatchJobsRequest] = []
        self.watch_scripts: list[tuple[list[int], grpc.StatusCode | None]] = []

    async def SchedulePin(
        self, request: scheduler_pb2.SchedulePinRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> job_pb2.Job:
        self.schedule_calls.append((request, dict(context.invocation_metadata() or ())))
        if self.schedule_failures:
            await context.abort(self.schedule_failures.pop(0), "scripted failure")
        if not request.pin.board_id.isdigit():
            status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="1 bad field")
            bad = error_details_pb2.BadRequest()
            bad.field_violations.add(field="pin.board_id", description="digits only")
            detail = any_pb2.Any()
            detail.Pack(bad)
            status.details.append(detail)
            context.set_trailing_metadata(((DETAILS_KEY, status.SerializeToString()),))
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "1 bad field")
        return job_pb2.Job(id="J1", request_id=request.request_id, state=J.STATE_PENDING)

    async def WatchJobs(
        self, request: scheduler_pb2.WatchJobsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[scheduler_pb2.WatchJobsResponse]:
        self.watch_calls.append(request)
        sequences, failure = self.watch_scripts.pop(0)
        for i in range(0, len(sequences), 2):  # batches of two: the client unpacks them
            yield scheduler_pb2.WatchJobsResponse(
                events=[
                    job_pb2.JobEvent(sequence=seq, job_id="J1", to_state=J.STATE_QUEUED)
                    for seq in sequences[i : i + 2]
                ]
            )
        if failure is not None:
            await context.abort(failure, "scripted stream end")


@pytest.fixture
async def server() -> AsyncIterator[tuple[ScriptedScheduler, str]]:
    # Only the RPCs under test are written; the rest answer UNIMPLEMENTED as the base does.
    servicer = ScriptedScheduler()  # type: ignore[abstract]
    srv = grpc.aio.server()
    scheduler_pb2_grpc.add_PinSchedulerServicer_to_server(servicer, srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    await srv.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        await srv.stop(None)


def _request() -> scheduler_pb2.SchedulePinRequest:
    """A request without request_id, so that the client has to fill one."""
    out = scheduler_pb2.SchedulePinRequest(account_id="acme", pin=pin("123", title="t"))
    out.scheduled_at.GetCurrentTime()
    return out


async def test_schedule_retries_unavailable_with_the_same_request_id(
    server: tuple[ScriptedScheduler, str],
) -> None:
    """UNAVAILABLE and DEADLINE_EXCEEDED are retried with one generated uuid4 request_id."""
    servicer, target = server
    servicer.schedule_failures = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED]
    async with AsyncClient(target, api_token="tok-1") as client:
        job = await client.schedule_pin(_request())
    ids = {req.request_id for req, _ in servicer.schedule_calls}
    assert len(servicer.schedule_calls) == 3
    assert len(ids) == 1
    assert len(ids.pop()) == 36  # a uuid4
    assert job.request_id == servicer.schedule_calls[0][0].request_id
    assert all(md.get("authorization") == "Bearer tok-1" for _, md in servicer.schedule_calls)


async def test_schedule_gives_up_after_the_retry_budget(
    server: tuple[ScriptedScheduler, str],
) -> None:
    """After `retries` retries the last UNAVAILABLE is raised to the caller."""
    servicer, target = server
    servicer.schedule_failures = [grpc.StatusCode.UNAVAILABLE] * 3
    async with AsyncClient(target, retries=2) as client:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.schedule_pin(_request())
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len(servicer.schedule_calls) == 3


async def test_caller_request_id_is_kept_and_request_not_mutated(
    server: tuple[ScriptedScheduler, str],
) -> None:
    """A request_id given by the caller is sent as is; the caller's message is left unchanged."""
    servicer, target = server
    request = _request()
    async with AsyncClient(target) as client:
        await client.schedule_pin(request)
        request.request_id = "mine"
        await client.schedule_pin(request)
    assert [req.request_id for req, _ in servicer.schedule_calls][1] == "mine"
    assert "authorization" not in servicer.schedule_calls[0][1]


async def test_invalid_argument_is_not_retried_and_details_decode(
    server: tuple[ScriptedScheduler, str],
) -> None:
    """INVALID_ARGUMENT is raised at once; error_details exposes its BadRequest violations."""
    servicer, target = server
    request = _request()
    request.pin.board_id = "abc"
    async with AsyncClient(target) as client:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.schedule_pin(request)
    assert len(servicer.schedule_calls) == 1
    details = error_details(caught.value)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.exit_code == 3
    assert [(v.field, v.description) for v in details.field_violations] == [
        ("pin.board_id", "digits only")
    ]
    assert details.lines() == ["INVALID_ARGUMENT: 1 bad field", "  pin.board_id: digits only"]


async def test_watch_resumes_after_unavailable_without_gap_or_duplicate(
    server: tuple[ScriptedScheduler, str],
) -> None:
    """A stream cut by UNAVAILABLE is reopened from the last sequence; repeats are dropped."""
    servicer, target = server
    servicer.watch_scripts = [
        ([1, 2], grpc.StatusCode.UNAVAILABLE),
        ([2, 3], grpc.StatusCode.UNAVAILABLE),  # a server that replays one event too many
        ([4], None),
    ]
    async with AsyncClient(target) as client:
        seen = [e.sequence async for e in client.watch("acme", since_sequence=0)]
    assert seen == [1, 2, 3, 4]
    assert [c.since_sequence for c in servicer.watch_calls] == [0, 2, 3]
    assert all(c.account_id == "acme" for c in servicer.watch_calls)


async def test_watch_live_only_sends_no_sequence(server: tuple[ScriptedScheduler, str]) -> None:
    """Without since_sequence the request leaves the field unset (live events only)."""
    servicer, target = server
    servicer.watch_scripts = [([7], None)]
    async with AsyncClient(target) as client:
        seen = [e.sequence async for e in client.watch(states=[J.STATE_QUEUED])]
    assert seen == [7]
    assert not servicer.watch_calls[0].HasField("since_sequence")
    assert list(servicer.watch_calls[0].states) == [J.STATE_QUEUED]


async def test_watch_without_resume_raises(server: tuple[ScriptedScheduler, str]) -> None:
    """With resume=False an UNAVAILABLE stream end is raised after the events received."""
    servicer, target = server
    servicer.watch_scripts = [([1], grpc.StatusCode.UNAVAILABLE)]
    seen: list[int] = []

    async def follow(client: AsyncClient) -> None:
        async for event in client.watch(since_sequence=0, resume=False):
            seen.append(event.sequence)

    async with AsyncClient(target) as client:
        with pytest.raises(grpc.aio.AioRpcError):
            await follow(client)
    assert seen == [1]


async def test_sync_client_runs_on_its_own_loop(server: tuple[ScriptedScheduler, str]) -> None:
    """The blocking Client schedules and watches from a plain thread."""
    servicer, target = server
    servicer.watch_scripts = [([1, 2], None)]

    def use_sync_client() -> tuple[str, list[int]]:
        with Client(target) as client:
            job = client.schedule_pin(_request())
            return job.id, [e.sequence for e in client.watch(since_sequence=0)]

    job_id, seen = await asyncio.to_thread(use_sync_client)
    assert job_id == "J1"
    assert seen == [1, 2]
