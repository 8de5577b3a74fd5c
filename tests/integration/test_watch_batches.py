"""WatchJobs messages are batches: one event per message for a watcher that keeps up, everything
pending (at most 256) for one that is behind, in sequence order, with no gap and no duplicate."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from pinsched.events import MAX_BATCH
from pinsched.v1 import scheduler_pb2
from tests.conftest import Api, soon


async def batch_schedule(api: Api, n: int) -> list[str]:
    """Schedule *n* pins an hour ahead in one BatchSchedulePins (one commit); their job ids."""
    reply = await api.jobs.BatchSchedulePins(
        scheduler_pb2.BatchSchedulePinsRequest(
            requests=[api.pin_request(at=soon(3600), title=f"p{i}") for i in range(n)]
        )
    )
    return [job.id for job in reply.jobs]


async def read_message(
    call: grpc.aio.UnaryStreamCall[Any, Any],
) -> scheduler_pb2.WatchJobsResponse:
    message = await asyncio.wait_for(call.read(), 10)
    assert isinstance(message, scheduler_pb2.WatchJobsResponse), message
    return message


async def test_a_watcher_behind_gets_batches_and_one_keeping_up_single_events(api: Api) -> None:
    """300 events committed at once reach a live watcher as 256 + 44 events; then, one pin at a
    time, each message carries exactly the one new event."""
    await api.create_account()
    call = api.jobs.WatchJobs(scheduler_pb2.WatchJobsRequest()).call
    await call.initial_metadata()
    ids = await batch_schedule(api, 300)
    first, second = await read_message(call), await read_message(call)
    assert [len(first.events), len(second.events)] == [MAX_BATCH, 300 - MAX_BATCH]
    got = [e.job_id for e in [*first.events, *second.events]]
    assert got == ids
    sequences = [e.sequence for e in [*first.events, *second.events]]
    assert sequences == sorted(set(sequences))
    for i in range(3):
        job = await api.jobs.SchedulePin(api.pin_request(at=soon(3600), title=f"one {i}"))
        message = await read_message(call)
        assert [e.job_id for e in message.events] == [job.id]
    call.cancel()


async def test_a_replay_comes_in_bounded_batches_then_live(api: Api) -> None:
    """`since_sequence=0` replays the log in messages of at most 256 events, in order, then
    continues live without a gap or a duplicate."""
    await api.create_account()
    ids = await batch_schedule(api, 600)
    call = api.jobs.WatchJobs(scheduler_pb2.WatchJobsRequest(since_sequence=0)).call
    replayed: list[str] = []
    sizes = []
    while len(replayed) < 600:
        message = await read_message(call)
        sizes.append(len(message.events))
        replayed += [e.job_id for e in message.events]
    assert replayed == ids
    assert max(sizes) == MAX_BATCH
    assert len(sizes) < 600 // 2
    job = await api.jobs.SchedulePin(api.pin_request(at=soon(3600), title="live"))
    message = await read_message(call)
    assert [e.job_id for e in message.events] == [job.id]
    call.cancel()
